//! `kestrel psd eval`: a trained encoder against converged FISTA on held-out patches, on the
//! trainer's float path.

use std::path::Path;

use serde::Serialize;

use super::encoder::{Encoder, Trace};
use super::model::PsdModel;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::patches::{Dataset, Part, PatchOptions};
use crate::sparse::{energy, fista, Problem, SolveOptions};

/// Default held-out patches.
pub const DEFAULT_EVAL_PATCHES: usize = 5000;
/// Seed of the held-out sample (fixed, so every checkpoint is measured on the same patches).
pub const EVAL_SEED: u64 = 0xE7A1;
/// Converged FISTA: stop when a step moves every code by less than this, relatively.
pub const FISTA_TOL: f32 = 1e-5;
/// Converged FISTA's iteration cap.
pub const FISTA_MAX_ITER: usize = 5000;

/// Per-patch means over the held-out patches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PsdEval {
    /// Patches measured.
    pub n: usize,
    /// The encoder, `lista:3`, ….
    pub encoder: String,
    /// Mean `E(x, g(x))`.
    pub encoder_energy: f64,
    /// Mean `E(x, h*)` of converged FISTA (cold start from zero).
    pub fista_energy: f64,
    /// `encoder_energy / fista_energy`.
    pub ratio: f64,
    /// Mean `‖x − D g(x)‖² / ‖x‖²` (patches with `x ≠ 0`).
    pub reconstruction_error: f64,
    /// The same for FISTA's codes.
    pub fista_reconstruction_error: f64,
    /// Fraction of non-zero entries of the encoder's codes.
    pub nonzero_fraction: f64,
    /// Fraction of non-zero entries of FISTA's codes.
    pub fista_nonzero_fraction: f64,
    /// FISTA iterations run.
    pub fista_iterations: usize,
    /// Whether FISTA met [`FISTA_TOL`] on every patch.
    pub fista_converged: bool,
}

fn mean(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

/// Relative reconstruction errors `‖x − D h‖² / ‖x‖²`, averaged over patches with `x ≠ 0`.
fn reconstruction(model: &PsdModel, x: &[f32], h: &[f32]) -> f64 {
    let (k, n) = (model.inputs(), model.meta.atoms);
    let (mut sum, mut count) = (0.0f64, 0usize);
    for (xs, hs) in x.chunks(k).zip(h.chunks(n)) {
        let norm: f64 = xs.iter().map(|&v| v as f64 * v as f64).sum();
        if norm == 0.0 {
            continue;
        }
        let mut err = 0.0f64;
        for (row, &xr) in model.dictionary.chunks_exact(n).zip(xs) {
            let rec: f64 = row.iter().zip(hs).map(|(&d, &c)| d as f64 * c as f64).sum();
            err += (xr as f64 - rec).powi(2);
        }
        sum += err / norm;
        count += 1;
    }
    sum / count.max(1) as f64
}

/// Measures `model` on `n` held-out patches of `data` (default: the directory it was
/// trained on), drawn with [`EVAL_SEED`] and normalized as in training.
pub fn evaluate<B: Backend>(
    be: &B,
    model: &PsdModel,
    data: Option<&Path>,
    n: usize,
) -> Result<PsdEval> {
    let meta = &model.meta;
    if meta.conv {
        return Err(Error::Other(
            "kestrel psd eval measures dense (patch) encoders; this checkpoint is convolutional"
                .into(),
        ));
    }
    if n == 0 {
        return Err(Error::Config {
            path: "--n".into(),
            message: "0: must be at least 1".into(),
        });
    }
    let dir = data.unwrap_or(&meta.data_dir);
    let ds = Dataset::open(dir)?;
    let popts = PatchOptions {
        size: meta.patch,
        contrast: meta.contrast,
    };
    let patches = ds.sample(Part::HeldOut, n, &popts, EVAL_SEED)?;
    let (k, atoms) = (model.inputs(), meta.atoms);
    let mut values = vec![model.weight.clone(), model.bias.clone()];
    values.extend(model.gain.clone());
    values.extend(model.theta.clone());
    values.extend(model.lateral.clone());
    let enc = Encoder::new(be, meta.encoder, k, atoms, &values)?;
    let x = be.upload(&patches.data)?;
    let mut trace = Trace::new(be, &enc, n)?;
    enc.forward(be, &x, &mut trace)?;
    let p = Problem::new(be, &model.dictionary, k, atoms, meta.lambda)?;
    let mut h = be.zeros(n * atoms)?;
    let stats = fista(
        be,
        &p,
        &x,
        &mut h,
        n,
        &SolveOptions {
            max_iter: FISTA_MAX_ITER,
            tol: FISTA_TOL,
        },
    )?;
    let eg = mean(&energy(be, &p, &x, trace.code(), n)?);
    let eh = mean(&energy(be, &p, &x, &h, n)?);
    let (g, hh) = (be.download(trace.code())?, be.download(&h)?);
    let nz = |v: &[f32]| v.iter().filter(|&&c| c != 0.0).count() as f64 / v.len() as f64;
    Ok(PsdEval {
        n,
        encoder: meta.encoder.to_string(),
        encoder_energy: eg,
        fista_energy: eh,
        ratio: eg / eh,
        reconstruction_error: reconstruction(model, &patches.data, &g),
        fista_reconstruction_error: reconstruction(model, &patches.data, &hh),
        nonzero_fraction: nz(&g),
        fista_nonzero_fraction: nz(&hh),
        fista_iterations: stats.iterations,
        fista_converged: stats.converged,
    })
}
