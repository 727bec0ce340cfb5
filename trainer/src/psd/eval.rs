//! `kestrel psd eval`: a trained encoder against converged FISTA on held-out patches, on the
//! trainer's float path. Convolutional checkpoints (`meta.conv`) are measured on whole
//! held-out images (the first `n` of the held-out part, normalized with the training part's
//! pixel statistics as in training) against converged convolutional FISTA; every figure is
//! then a mean per image.

use std::path::Path;

use serde::Serialize;

use super::conv::{
    conv_fista, encode_images, ConvDict, ConvEncoderParams, ConvFistaOptions, ConvNonlin,
};
use super::encoder::{values_of, Encoder, Trace};
use super::model::EncoderKind;
use super::model::PsdModel;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::patches::{Dataset, Part, PatchOptions};
use crate::sparse::{energy, fista, Problem, SolveOptions};

/// Default held-out patches.
pub const DEFAULT_EVAL_PATCHES: usize = 5000;
/// Default held-out whole images for convolutional checkpoints (each is many patches' work).
pub const DEFAULT_EVAL_IMAGES: usize = 100;
/// Held-out images solved together by convolutional FISTA (of one size).
const CONV_EVAL_BATCH: usize = 25;
/// Seed of the held-out sample (fixed, so every checkpoint is measured on the same patches).
pub const EVAL_SEED: u64 = 0xE7A1;
/// Converged FISTA: stop when a step moves every code by less than this, relatively.
pub const FISTA_TOL: f32 = 1e-5;
/// Converged FISTA's iteration cap.
pub const FISTA_MAX_ITER: usize = 5000;

/// Per-patch means over the held-out patches (per-image means for convolutional
/// checkpoints).
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
/// trained on), drawn with [`EVAL_SEED`] and normalized as in training; a convolutional
/// checkpoint on the first `n` whole held-out images (see the module docs).
pub fn evaluate<B: Backend>(
    be: &B,
    model: &PsdModel,
    data: Option<&Path>,
    n: usize,
) -> Result<PsdEval> {
    let meta = &model.meta;
    if n == 0 {
        return Err(Error::Config {
            path: "--n".into(),
            message: "0: must be at least 1".into(),
        });
    }
    if meta.conv {
        return evaluate_conv(be, model, data, n);
    }
    let dir = data.unwrap_or(&meta.data_dir);
    let ds = Dataset::open(dir)?;
    let popts = PatchOptions {
        size: meta.patch,
        contrast: meta.contrast,
    };
    let patches = ds.sample(Part::HeldOut, n, &popts, EVAL_SEED)?;
    let (k, atoms) = (model.inputs(), meta.atoms);
    let enc = Encoder::new(be, meta.encoder, k, atoms, &values_of(model))?;
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

/// [`evaluate`] of a convolutional checkpoint on the first `n` held-out images.
fn evaluate_conv<B: Backend>(
    be: &B,
    model: &PsdModel,
    data: Option<&Path>,
    n: usize,
) -> Result<PsdEval> {
    let meta = &model.meta;
    let bad = |field: &str, message: String| Error::PsdCheckpoint {
        field: field.into(),
        message,
    };
    let (nonlin, scale) =
        match meta.encoder {
            EncoderKind::Tanh => (
                ConvNonlin::Tanh,
                model.gain.clone().ok_or_else(|| {
                    bad("gain", "missing (tanh encoders need one per map)".into())
                })?,
            ),
            EncoderKind::Shrink => (
                ConvNonlin::Shrink,
                model.theta.clone().ok_or_else(|| {
                    bad("theta", "missing (shrink encoders need one per map)".into())
                })?,
            ),
            EncoderKind::Lista { .. } => {
                return Err(bad(
                    "encoder",
                    format!("{}: LISTA has no convolutional form", meta.encoder),
                ))
            }
        };
    if !(meta.lambda.is_finite() && meta.lambda > 0.0) {
        return Err(bad(
            "lambda",
            format!("{} (must be finite and > 0)", meta.lambda),
        ));
    }
    let params = ConvEncoderParams {
        nonlin,
        channels: meta.channels,
        kernel: meta.patch,
        atoms: meta.atoms,
        weight: model.weight.clone(),
        bias: model.bias.clone(),
        scale,
    };
    let dir = data.unwrap_or(&meta.data_dir);
    let ds = Dataset::open(dir)?;
    let norm = ds.pixel_stats(Part::Train);
    let mut images = ds.images(Part::HeldOut, &norm);
    images.truncate(n);
    if images.is_empty() {
        return Err(Error::Config {
            path: dir.to_path_buf(),
            message: "no held-out images".into(),
        });
    }
    let opts = ConvFistaOptions {
        max_iter: FISTA_MAX_ITER,
        tol: FISTA_TOL,
    };
    let (mut eg, mut eh, mut rg, mut rh) = (0f64, 0f64, 0f64, 0f64);
    let (mut counted, mut nz_g, mut nz_h, mut total) = (0usize, 0usize, 0usize, 0usize);
    let (mut iterations, mut converged) = (0usize, true);
    let mut i = 0;
    while i < images.len() {
        let (rows, cols) = (images[i].rows, images[i].cols);
        let mut j = i;
        while j < images.len()
            && j - i < CONV_EVAL_BATCH
            && (images[j].rows, images[j].cols) == (rows, cols)
        {
            j += 1;
        }
        let batch = &images[i..j];
        i = j;
        let b = batch.len();
        let host_x: Vec<f32> = batch
            .iter()
            .flat_map(|im| im.data.iter().copied())
            .collect();
        let g_host = encode_images(be, &params, rows, cols, b, &host_x)?;
        let p = ConvDict::new(
            be,
            &model.dictionary,
            meta.channels,
            meta.atoms,
            meta.patch,
            rows,
            cols,
            EVAL_SEED,
        )?;
        let x = be.upload(&host_x)?;
        let g = be.upload(&g_host)?;
        let mut z = be.zeros(g_host.len())?;
        let stats = conv_fista(be, &p, b, meta.lambda, &x, &mut z, None, &opts)?;
        iterations = iterations.max(stats.iterations);
        converged &= stats.converged;
        eg += p
            .energy(be, b, meta.lambda, &x, &g)?
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>();
        eh += p
            .energy(be, b, meta.lambda, &x, &z)?
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>();
        let z_host = be.download(&z)?;
        // Relative reconstruction errors of both codes.
        let ilen = p.image_len();
        let mut rec = be.zeros(b * ilen)?;
        let mut errs = [Vec::new(), Vec::new()];
        for (e, codes) in errs.iter_mut().zip([&g, &z]) {
            p.reconstruct(be, b, codes, &mut rec)?;
            *e = be.download(&rec)?;
        }
        for (im, xs) in host_x.chunks(ilen).enumerate() {
            let norm2: f64 = xs.iter().map(|&v| v as f64 * v as f64).sum();
            if norm2 == 0.0 {
                continue;
            }
            let err = |r: &[f32]| -> f64 {
                xs.iter()
                    .zip(&r[im * ilen..(im + 1) * ilen])
                    .map(|(&a, &c)| (a as f64 - c as f64).powi(2))
                    .sum::<f64>()
                    / norm2
            };
            rg += err(&errs[0]);
            rh += err(&errs[1]);
            counted += 1;
        }
        nz_g += g_host.iter().filter(|&&c| c != 0.0).count();
        nz_h += z_host.iter().filter(|&&c| c != 0.0).count();
        total += g_host.len();
    }
    let count = images.len() as f64;
    let (eg, eh) = (eg / count, eh / count);
    Ok(PsdEval {
        n: images.len(),
        encoder: meta.encoder.to_string(),
        encoder_energy: eg,
        fista_energy: eh,
        ratio: eg / eh,
        reconstruction_error: rg / counted.max(1) as f64,
        fista_reconstruction_error: rh / counted.max(1) as f64,
        nonzero_fraction: nz_g as f64 / total.max(1) as f64,
        fista_nonzero_fraction: nz_h as f64 / total.max(1) as f64,
        fista_iterations: iterations,
        fista_converged: converged,
    })
}
