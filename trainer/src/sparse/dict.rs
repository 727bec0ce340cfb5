//! Dictionary learning by alternating minimization of the mean energy over patches.
//!
//! - Start: `n` distinct training patches (a seeded draw; with fewer patches than atoms,
//!   repeats), plus uniform noise of 1% of their RMS so no two atoms coincide, as columns of
//!   `D`, normalized to unit norm.
//! - Each epoch visits the patches in a seeded random order, in mini-batches. Per batch:
//!   inference of the codes with the chosen solver, warm-started from the batch's codes of
//!   the previous epoch (zeros in the first), then one gradient step on the decoder,
//!   `D ← D + (lr/batch)·(X − H Dᵀ)ᵀ H` (`∂/∂D` of the batch's mean `½‖x − D h‖²`), and
//!   every column renormalized to unit norm (`normalize_columns`), which also rebuilds
//!   `DᵀD` and `L`.
//!
//! Reproducible: the same seed, data and options give the same dictionary bits for any
//! number of threads (the backend's ops do not depend on scheduling).

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{check_lambda, cod, energy, fista, ista, Problem, SolveOptions};
use crate::backend::Backend;
use crate::error::{Error, Result};

/// A typed [`Error::Sparse`] naming the field, what it must be and what it was.
fn bad(
    field: impl Into<String>,
    expected: impl std::fmt::Display,
    got: impl std::fmt::Display,
) -> Error {
    super::bad(field, format!("expected {expected}, got {got}"))
}

/// Which solver infers the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Solver {
    /// [`ista`](super::ista).
    Ista,
    /// [`fista`](super::fista): backend primitives only (a GPU backend runs it all).
    Fista,
    /// [`cod`](super::cod): the fastest on the CPU.
    #[default]
    Cod,
}

/// Options of [`learn_dictionary`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DictOptions {
    /// Passes over the patches.
    pub epochs: usize,
    /// Patches per mini-batch (the last one of an epoch may be smaller).
    pub batch: usize,
    /// Decoder step size (per unit of mean gradient over the batch).
    pub lr: f32,
    /// Seed of the initial atoms and of the visiting order.
    pub seed: u64,
    /// The inference's stopping rule.
    pub solve: SolveOptions,
    /// The inference's solver.
    pub solver: Solver,
}

impl Default for DictOptions {
    /// 10 epochs of batches of 256, `lr = 1`, seed 0, coordinate descent with
    /// `tol = 1e-3` (decoder steps do not need fully converged codes).
    fn default() -> Self {
        DictOptions {
            epochs: 10,
            batch: 256,
            lr: 1.0,
            seed: 0,
            solve: SolveOptions {
                max_iter: 200,
                tol: 1e-3,
            },
            solver: Solver::Cod,
        }
    }
}

/// What one epoch of [`learn_dictionary`] did.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DictEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean energy of the epoch's patches after inference, before each batch's update.
    pub energy: f32,
    /// Fraction of non-zero codes.
    pub nonzero_fraction: f32,
    /// Mean solver iterations per batch.
    pub iterations: f32,
    /// Wall-clock seconds of the epoch.
    pub seconds: f32,
}

/// Learns a dictionary `D [k, n]` (unit-norm columns) for `patches` (rows of `k` floats)
/// with ℓ1 weight `lambda`; returns it with per-epoch logs.
///
/// Errors ([`crate::Error::BadArgument`]): `k` or `n` zero, no patches or a length that is
/// not a multiple of `k`, non-finite patch values, `λ ≤ 0` or not finite, `batch = 0`,
/// `lr ≤ 0` or not finite, a bad tolerance.
pub fn learn_dictionary<B: Backend>(
    be: &B,
    patches: &[f32],
    k: usize,
    n: usize,
    lambda: f32,
    opts: &DictOptions,
) -> Result<(Vec<f32>, Vec<DictEpoch>)> {
    check_args(patches, k, n, lambda, opts)?;
    let count = patches.len() / k;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut d = initial_atoms(patches, k, n, &mut rng);
    let mut problem = Problem::new(be, &d, k, n, lambda)?;
    let mut codes = vec![0f32; count * n];
    let mut order: Vec<usize> = (0..count).collect();
    let mut log = Vec::with_capacity(opts.epochs);
    let (mut xb, mut hb) = (Vec::new(), Vec::new());
    for epoch in 1..=opts.epochs {
        let start = Instant::now();
        order.shuffle(&mut rng);
        let (mut e_sum, mut nnz, mut iters, mut batches) = (0f64, 0usize, 0usize, 0usize);
        for idx in order.chunks(opts.batch) {
            let m = idx.len();
            xb.clear();
            hb.clear();
            for &i in idx {
                xb.extend_from_slice(&patches[i * k..(i + 1) * k]);
                hb.extend_from_slice(&codes[i * n..(i + 1) * n]);
            }
            let x = be.upload(&xb)?;
            let mut h = be.upload(&hb)?;
            let stats = match opts.solver {
                Solver::Ista => ista(be, &problem, &x, &mut h, m, &opts.solve)?,
                Solver::Fista => fista(be, &problem, &x, &mut h, m, &opts.solve)?,
                Solver::Cod => cod(be, &problem, &x, &mut h, m, &opts.solve)?,
            };
            iters += stats.iterations;
            batches += 1;
            e_sum += energy(be, &problem, &x, &h, m)?
                .iter()
                .map(|&e| e as f64)
                .sum::<f64>();
            let hh = be.download(&h)?;
            nnz += hh.iter().filter(|&&v| v != 0.0).count();
            for (j, &i) in idx.iter().enumerate() {
                codes[i * n..(i + 1) * n].copy_from_slice(&hh[j * n..(j + 1) * n]);
            }
            // r = x − h Dᵀ; D ← D + (lr/m)·rᵀ h; unit columns.
            let mut r = x;
            be.gemm(false, true, m, k, n, -1.0, &h, &problem.d, 1.0, &mut r)?;
            be.gemm(
                true,
                false,
                k,
                n,
                m,
                opts.lr / m as f32,
                &r,
                &h,
                1.0,
                &mut problem.d,
            )?;
            be.normalize_columns(k, n, &mut problem.d)?;
            problem.refresh(be)?;
        }
        log.push(DictEpoch {
            epoch,
            energy: (e_sum / count as f64) as f32,
            nonzero_fraction: (nnz as f64 / (count * n) as f64) as f32,
            iterations: iters as f32 / batches.max(1) as f32,
            seconds: start.elapsed().as_secs_f32(),
        });
    }
    d.copy_from_slice(&be.download(&problem.d)?);
    Ok((d, log))
}

fn check_args(patches: &[f32], k: usize, n: usize, lambda: f32, o: &DictOptions) -> Result<()> {
    if k == 0 || n == 0 {
        return Err(bad(
            "dictionary shape",
            "k ≥ 1 rows and n ≥ 1 atoms",
            format!("k = {k}, n = {n}"),
        ));
    }
    if patches.is_empty() || !patches.len().is_multiple_of(k) {
        return Err(bad(
            format!("patches (rows of k = {k})"),
            format!("a non-zero multiple of {k} values"),
            patches.len(),
        ));
    }
    if let Some(i) = patches.iter().position(|v| !v.is_finite()) {
        return Err(bad(
            format!("patch {} value {}", i / k, i % k),
            "a finite number",
            patches[i],
        ));
    }
    check_lambda(lambda)?;
    if o.batch == 0 {
        return Err(bad("dictionary batch", "≥ 1", 0));
    }
    if !(o.lr.is_finite() && o.lr > 0.0) {
        return Err(bad("dictionary lr", "a finite number > 0", o.lr));
    }
    if !(o.solve.tol.is_finite() && o.solve.tol >= 0.0) {
        return Err(bad("solver tol", "a finite number ≥ 0", o.solve.tol));
    }
    Ok(())
}

/// `n` seeded patches (distinct while there are enough) plus 1%-of-RMS uniform noise,
/// as the unit-norm columns of `D [k, n]`.
fn initial_atoms(patches: &[f32], k: usize, n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let count = patches.len() / k;
    let mut pick: Vec<usize> = (0..count).collect();
    pick.shuffle(rng);
    let mut d = vec![0f32; k * n];
    for j in 0..n {
        let p = &patches[pick[j % count] * k..][..k];
        let rms = (p.iter().map(|v| (v * v) as f64).sum::<f64>() / k as f64).sqrt() as f32;
        let amp = 0.01 * if rms > 0.0 { rms } else { 1.0 };
        for (i, &v) in p.iter().enumerate() {
            d[i * n + j] = v + amp * rng.random_range(-1.0f32..1.0);
        }
    }
    for j in 0..n {
        let norm = (0..k)
            .map(|i| (d[i * n + j] as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        for i in 0..k {
            d[i * n + j] = (d[i * n + j] as f64 / norm) as f32;
        }
    }
    d
}
