//! `kestrel encode`: an exported encoder model on held-out patches, on the **runtime**,
//! against the exact sparse codes that on-device FISTA computes for the same problem.
//!
//! For `n` held-out patches (the test split of an IDX directory, or the held-out pictures of
//! an image folder: never a training patch), per patch on average:
//! - `encoder_energy`: `E(x, g(x)) = ½‖x − D g(x)‖² + λ‖g(x)‖₁` of the encoder's codes (int8
//!   codes dequantized), `x` the model's own preprocessing of the patch;
//! - `fista_energy`: `E` at converged FISTA's codes (the optimum, up to the tolerance);
//! - `reconstruction_error`: `‖x − D g(x)‖² / ‖x‖²` (patches with `x = 0` count as 0);
//! - `nonzero_fraction`: non-zero codes / atoms;
//! - `encoder_us`: the encoder's time per patch (the whole model: preprocessing included);
//! - `fista_iterations_to_match`: the fewest FISTA iterations (from `h = 0`, the same count for
//!   every patch) whose mean energy is at most `encoder_energy`, and `fista_us_to_match` the
//!   time of that many iterations per patch (its preprocessing and `Dᵀx/L` included);
//! - `speedup = fista_us_to_match / encoder_us`.
//!
//! Times are medians over [`REPEATS`] passes over all patches, one thread. Both run the
//! runtime's kernels of this build (the same step kernel: `Lista` and FISTA share it).

use std::path::Path;
use std::time::Instant;

use kestrel_format::Model;
use kestrel_runtime::sparse::{FistaOptions, Problem};
use kestrel_runtime::{Input, Plan};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::patches::{Dataset, Part, PatchOptions};

/// Timed passes over the patches; the median is reported.
pub const REPEATS: usize = 5;
/// Seed of the held-out patch sample.
pub const SEED: u64 = 7;
/// FISTA's iteration cap for the converged reference.
pub const CONVERGED_ITERATIONS: usize = 2000;
/// FISTA's relative tolerance for the converged reference.
pub const CONVERGED_TOL: f32 = 1e-6;

/// What `kestrel encode` reports (means per patch).
#[derive(Debug, Clone, Serialize)]
pub struct EncodeReport {
    /// The model's name (`psd lista:3`, …).
    pub model: String,
    /// `f32`, `f16` or `int8`.
    pub precision: String,
    /// Patches measured.
    pub n: usize,
    /// Atoms (code length).
    pub atoms: usize,
    /// Mean energy of the encoder's codes.
    pub encoder_energy: f64,
    /// Mean energy of converged FISTA's codes.
    pub fista_energy: f64,
    /// `encoder_energy / fista_energy`.
    pub energy_ratio: f64,
    /// Mean `‖x − D g(x)‖² / ‖x‖²`.
    pub reconstruction_error: f64,
    /// Mean fraction of non-zero codes.
    pub nonzero_fraction: f64,
    /// Encoder time per patch, µs (median of the passes).
    pub encoder_us: f64,
    /// FISTA iterations whose mean energy reaches `encoder_energy` (`None`: not within
    /// [`CONVERGED_ITERATIONS`]).
    pub fista_iterations_to_match: Option<usize>,
    /// FISTA time per patch for that many iterations, µs (median of the passes).
    pub fista_us_to_match: Option<f64>,
    /// `fista_us_to_match / encoder_us`.
    pub speedup: Option<f64>,
}

impl EncodeReport {
    /// The human-readable summary.
    pub fn table(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| match v {
            Some(v) => format!("{v:.2}{unit}"),
            None => "not reached".into(),
        };
        format!(
            "model {} ({}), {} held-out patches, {} atoms\n\
             energy per patch: encoder {:.5}, converged FISTA {:.5} (ratio {:.4})\n\
             reconstruction error {:.4} (relative), non-zeros {:.1}%\n\
             encoder {:.2} µs/patch; FISTA to the encoder's energy: {} iterations, {} → speedup {}",
            self.model,
            self.precision,
            self.n,
            self.atoms,
            self.encoder_energy,
            self.fista_energy,
            self.energy_ratio,
            self.reconstruction_error,
            100.0 * self.nonzero_fraction,
            self.encoder_us,
            self.fista_iterations_to_match
                .map_or("more than the cap".into(), |i| i.to_string()),
            opt(self.fista_us_to_match, " µs/patch"),
            opt(self.speedup, "×"),
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The runtime model, its plan, FISTA problem and buffers, for one patch at a time.
struct Bench<'m> {
    plan: Plan<'m, 'm>,
    problem: Problem<'m>,
    arena: Vec<u128>,
    scratch: Vec<f32>,
    x: Vec<f32>,
    h: Vec<f32>,
}

impl<'m> Bench<'m> {
    fn new(model: &'m Model<'m>) -> Result<Bench<'m>> {
        let plan = crate::eval::plan(model)?;
        let problem = Problem::new(model).map_err(Error::Runtime)?;
        Ok(Bench {
            arena: vec![0u128; plan.arena_bytes().div_ceil(16)],
            scratch: vec![0f32; problem.scratch_len()],
            x: vec![0f32; problem.input_len()],
            h: vec![0f32; problem.atoms()],
            plan,
            problem,
        })
    }

    /// The encoder's codes for `raw` into `self.h`.
    fn encode(&mut self, raw: &[u8]) -> Result<()> {
        let arena: &mut [u8] = bytemuck::cast_slice_mut(&mut self.arena);
        self.plan
            .run_f32(arena, Input::Pixels(raw), &mut self.h)
            .map_err(Error::Runtime)
    }

    /// The model's preprocessing of `raw` into `self.x`.
    fn preprocess(&mut self, raw: &[u8]) -> Result<()> {
        self.problem
            .preprocess(raw, &mut self.x)
            .map_err(Error::Runtime)
    }

    /// `iterations` of FISTA from `h = 0` on `self.x`, codes into `self.h`; the energy.
    fn fista(&mut self, max_iter: usize, tol: f32) -> Result<f64> {
        self.h.fill(0.0);
        let opts = FistaOptions {
            max_iter,
            tol,
            target_energy: None,
        };
        let stats = self
            .problem
            .fista(&self.x, &mut self.h, &opts, &mut self.scratch)
            .map_err(Error::Runtime)?;
        Ok(stats.energy as f64)
    }

    fn energy(&mut self) -> Result<f64> {
        let e = self
            .problem
            .energy(&self.x, &self.h, &mut self.scratch)
            .map_err(Error::Runtime)?;
        Ok(e as f64)
    }
}

/// Held-out patches' raw pixels for `model` from `dir`.
pub fn held_out_patches(model: &Model<'_>, dir: &Path, n: usize) -> Result<Vec<Vec<u8>>> {
    let s = model.input_shape();
    if s.c != 1 || s.h != s.w {
        return Err(Error::Other(format!(
            "model input is {:?}: `encode` feeds square grayscale patches [1, K, K]",
            s.dims()
        )));
    }
    let k = s.h as usize;
    let set = Dataset::open(dir)?;
    let opts = PatchOptions {
        size: k,
        contrast: None,
    };
    let patches = set.sample(Part::HeldOut, n, &opts, SEED)?;
    Ok(patches.origins.iter().map(|o| set.pixels(o, k)).collect())
}

/// Mean FISTA energy over `patches` after `iters` iterations from zero.
fn fista_mean(b: &mut Bench, patches: &[Vec<u8>], iters: usize) -> Result<f64> {
    let mut sum = 0.0;
    for raw in patches {
        b.preprocess(raw)?;
        sum += b.fista(iters, 0.0)?;
    }
    Ok(sum / patches.len() as f64)
}

/// Median per-patch time of `f` over [`REPEATS`] passes.
fn time_per_patch(patches: &[Vec<u8>], mut f: impl FnMut(&[u8]) -> Result<()>) -> Result<f64> {
    let mut runs = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let t = Instant::now();
        for raw in patches {
            f(raw)?;
        }
        runs.push(t.elapsed().as_secs_f64() * 1e6 / patches.len() as f64);
    }
    Ok(median(runs))
}

/// Measures `model` (an exported encoder) on `patches` (raw pixels, see
/// [`held_out_patches`]).
pub fn measure(model: &Model<'_>, patches: &[Vec<u8>]) -> Result<EncodeReport> {
    if patches.is_empty() {
        return Err(Error::Other("encode: no patches to measure".into()));
    }
    let mut b = Bench::new(model)?;
    let atoms = b.h.len();
    let (mut enc, mut fista, mut rec, mut nz) = (0.0, 0.0, 0.0, 0.0);
    for raw in patches {
        b.preprocess(raw)?;
        b.encode(raw)?;
        enc += b.energy()?;
        nz += b.h.iter().filter(|&&v| v != 0.0).count() as f64 / atoms as f64;
        let xx: f64 = b.x.iter().map(|&v| v as f64 * v as f64).sum();
        if xx > 0.0 {
            let r = b
                .problem
                .residual_sq(&b.x, &b.h, &mut b.scratch)
                .map_err(Error::Runtime)?;
            rec += r as f64 / xx;
        }
        fista += b.fista(CONVERGED_ITERATIONS, CONVERGED_TOL)?;
    }
    let count = patches.len() as f64;
    let (enc, fista, rec, nz) = (enc / count, fista / count, rec / count, nz / count);

    let iters = iterations_to_reach(&mut b, patches, enc)?;

    let encoder_us = time_per_patch(patches, |raw| b.encode(raw))?;
    let fista_us = match iters {
        None => None,
        Some(it) => Some(time_per_patch(patches, |raw| {
            b.preprocess(raw)?;
            b.fista(it, 0.0).map(|_| ())
        })?),
    };
    Ok(EncodeReport {
        model: model.desc.name.to_string(),
        precision: crate::eval::precision_name(model.desc.precision).into(),
        n: patches.len(),
        atoms,
        encoder_energy: enc,
        fista_energy: fista,
        energy_ratio: enc / fista,
        reconstruction_error: rec,
        nonzero_fraction: nz,
        encoder_us,
        fista_iterations_to_match: iters,
        fista_us_to_match: fista_us,
        speedup: fista_us.map(|f| f / encoder_us),
    })
}

/// The fewest FISTA iterations from zero (one count for every patch) whose mean energy over
/// `patches` is at most `target`; `None` if [`CONVERGED_ITERATIONS`] do not reach it.
/// Doubling, then bisection (FISTA's energy is not monotone in theory, nearly so in
/// practice; bisection finds a crossing).
fn iterations_to_reach(b: &mut Bench, patches: &[Vec<u8>], target: f64) -> Result<Option<usize>> {
    let mut hi = 1;
    while fista_mean(b, patches, hi)? > target {
        if hi >= CONVERGED_ITERATIONS {
            return Ok(None);
        }
        hi = (hi * 2).min(CONVERGED_ITERATIONS);
    }
    let mut lo = hi / 2; // energy(lo) > target, or lo = 0
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fista_mean(b, patches, mid)? > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(Some(hi))
}

/// For `kestrel firmware run`: the encoder's mean energy on `patches`, the FISTA iterations
/// that reach it (capped at [`CONVERGED_ITERATIONS`]), and FISTA's codes after that many
/// iterations from zero for each patch, computed by this build's runtime.
pub fn fista_to_match(model: &Model<'_>, patches: &[Vec<u8>]) -> Result<(usize, Vec<Vec<f32>>)> {
    if patches.is_empty() {
        return Err(Error::Other("no patches".into()));
    }
    let mut b = Bench::new(model)?;
    let mut enc = 0.0;
    for raw in patches {
        b.preprocess(raw)?;
        b.encode(raw)?;
        enc += b.energy()?;
    }
    let target = enc / patches.len() as f64;
    let iters = iterations_to_reach(&mut b, patches, target)?.unwrap_or(CONVERGED_ITERATIONS);
    let mut codes = Vec::with_capacity(patches.len());
    for raw in patches {
        b.preprocess(raw)?;
        b.fista(iters, 0.0)?;
        codes.push(b.h.clone());
    }
    Ok((iters, codes))
}
