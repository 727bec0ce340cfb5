//! Sparse coding: min over `h` of `E(x, h) = ½‖x − D h‖² + λ‖h‖₁`, batched.
//!
//! - [`Problem`]: the dictionary `D [k, n]` (column `j` = atom `j`) on the backend, its Gram
//!   matrix `DᵀD [n, n]` and the Lipschitz constant `L` of the smooth part's gradient;
//! - [`ista`] and [`fista`]: proximal gradient with step `1/L`, written once against
//!   [`Backend`] primitives (`gemm`, `axpby`, `shrink_fwd`, `row_sq_norms`), so a GPU
//!   backend runs them unchanged;
//! - [`cod`]: cyclic coordinate descent on host vectors (see its docs for why);
//! - [`energy`]: `E(x, h)` per sample.
//!
//! Batches are row-major: `x [batch, k]` (one sample per row), codes `h [batch, n]`. Every
//! solver takes `h` as its warm start and leaves the codes in it; a cold start is `h = 0`.
//!
//! ```
//! use kestrel_trainer::backend::{Backend, cpu::Cpu};
//! use kestrel_trainer::sparse::{self, Problem, SolveOptions};
//! let be = Cpu::new();
//! // Two orthonormal atoms in R²: the code is the soft-thresholded input.
//! let p = Problem::new(&be, &[1.0, 0.0, 0.0, 1.0], 2, 2, 0.5)?;
//! let x = be.upload(&[2.0, -0.25])?;
//! let mut h = be.zeros(2)?;
//! let stats = sparse::fista(&be, &p, &x, &mut h, 1, &SolveOptions::default())?;
//! assert!(stats.converged);
//! let h = be.download(&h)?;
//! assert!((h[0] - 1.5).abs() < 1e-5 && h[1] == 0.0);
//! # Ok::<(), kestrel_trainer::Error>(())
//! ```

mod cod;
mod dict;
mod prox;

pub use cod::cod;
pub use dict::{learn_dictionary, DictEpoch, DictOptions, Solver};
pub use prox::{fista, ista};

use crate::backend::Backend;
use crate::error::{Error, Result};

/// The safety factor on the power-iteration estimate of `L`: power iteration approaches the
/// largest eigenvalue of `DᵀD` from below, so the estimate is raised by 1 % to keep the
/// step `1/L` on the safe side (a step up to `2/λ_max` still decreases the energy; ISTA's
/// and FISTA's rates assume `≤ 1/λ_max`).
pub const LIPSCHITZ_SAFETY: f32 = 1.01;

/// The floor of `‖h‖` in the relative stopping test, so an all-zero code can converge.
pub const TINY: f32 = 1e-12;

/// Power-iteration steps at most, and the relative change of the estimate that stops it.
const POWER_ITERS: usize = 500;
const POWER_TOL: f32 = 1e-6;

/// The sparse-coding problem `min_h ½‖x − D h‖² + λ‖h‖₁`, `D` row-major `[k, n]`
/// (column `j` = atom `j`, normally of unit norm).
pub struct Problem<B: Backend> {
    /// Input dimension (rows of `D`, e.g. 81 for 9×9 patches).
    pub k: usize,
    /// Number of atoms (columns of `D`).
    pub n: usize,
    /// The ℓ1 weight `λ > 0`.
    pub lambda: f32,
    /// `L`: [`LIPSCHITZ_SAFETY`] × the power-iteration estimate of `λ_max(DᵀD)`.
    pub lipschitz: f32,
    /// `D [k, n]`.
    pub d: B::Tensor,
    /// `DᵀD [n, n]` (symmetric).
    pub gram: B::Tensor,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Sparse {
        field: field.into(),
        message: message.into(),
    }
}

fn check_lambda(lambda: f32) -> Result<()> {
    if !(lambda.is_finite() && lambda > 0.0) {
        return Err(bad(
            "lambda",
            format!("expected a finite value > 0, got {lambda}"),
        ));
    }
    Ok(())
}

/// Checks `D`'s shape and values on the host: `k, n ≥ 1`, `k·n` finite values, no
/// all-zero atom.
fn check_dictionary(d: &[f32], k: usize, n: usize) -> Result<()> {
    if k == 0 || n == 0 {
        return Err(bad(
            "d",
            format!("expected at least one row and one atom, got k = {k}, n = {n}"),
        ));
    }
    let want = k.checked_mul(n).ok_or_else(|| bad("d", "k·n overflows"))?;
    if d.len() != want {
        return Err(bad(
            "d",
            format!("expected k·n = {k}·{n} = {want} values, got {}", d.len()),
        ));
    }
    if let Some(i) = d.iter().position(|v| !v.is_finite()) {
        return Err(bad(
            "d",
            format!("value {i} (row {}, atom {}) is {}", i / n, i % n, d[i]),
        ));
    }
    for j in 0..n {
        if (0..k).all(|r| d[r * n + j] == 0.0) {
            return Err(bad(
                format!("atom {j}"),
                "all zero (every atom needs a non-zero column)",
            ));
        }
    }
    Ok(())
}

impl<B: Backend> Problem<B> {
    /// Uploads `d [k, n]` (row-major, column `j` = atom `j`), computes `DᵀD` and `L`.
    ///
    /// Typed errors ([`Error::Sparse`]): `λ ≤ 0` or not finite, `k = 0` or `n = 0`,
    /// `d.len() ≠ k·n`, a non-finite value, an all-zero atom.
    pub fn new(be: &B, d: &[f32], k: usize, n: usize, lambda: f32) -> Result<Self> {
        check_lambda(lambda)?;
        check_dictionary(d, k, n)?;
        let mut p = Problem {
            k,
            n,
            lambda,
            lipschitz: 0.0,
            d: be.upload(d)?,
            gram: be.zeros(n * n)?,
        };
        p.refresh(be)?;
        Ok(p)
    }

    /// Recomputes `DᵀD` and `L` after `self.d` changed on the backend (a dictionary
    /// update). The caller keeps `d` free of all-zero atoms.
    pub fn refresh(&mut self, be: &B) -> Result<()> {
        let (k, n) = (self.k, self.n);
        be.gemm(
            true,
            false,
            n,
            n,
            k,
            1.0,
            &self.d,
            &self.d,
            0.0,
            &mut self.gram,
        )?;
        self.lipschitz = LIPSCHITZ_SAFETY * power_iteration(be, &self.gram, n)?;
        if !(self.lipschitz.is_finite() && self.lipschitz > 0.0) {
            return Err(bad(
                "d",
                format!(
                    "λ_max(DᵀD) estimate is {}, expected finite > 0",
                    self.lipschitz
                ),
            ));
        }
        Ok(())
    }

    /// Sets a new `λ` (finite, `> 0`), keeping `D`, `DᵀD` and `L`.
    pub fn set_lambda(&mut self, lambda: f32) -> Result<()> {
        check_lambda(lambda)?;
        self.lambda = lambda;
        Ok(())
    }
}

/// `λ_max` of the symmetric PSD `g [n, n]` by power iteration from a fixed positive start
/// (deterministic): `v ← g v / ‖g v‖` until `‖g v‖` changes by less than `POWER_TOL`
/// relative. `‖g v‖` for a unit `v` never exceeds `λ_max`.
fn power_iteration<B: Backend>(be: &B, g: &B::Tensor, n: usize) -> Result<f32> {
    let start: Vec<f32> = (0..n)
        .map(|i| 1.0 + ((i * 7919) % 13) as f32 / 26.0)
        .collect();
    let norm = start.iter().map(|v| v * v).sum::<f32>().sqrt();
    let start: Vec<f32> = start.iter().map(|v| v / norm).collect();
    let mut v = be.upload(&start)?;
    let mut w = be.zeros(n)?;
    let mut sq = be.zeros(1)?;
    let mut est = 0.0f32;
    for it in 0..POWER_ITERS {
        // w [1, n] = vᵀ g (g is symmetric).
        be.gemm(false, false, 1, n, n, 1.0, &v, g, 0.0, &mut w)?;
        be.row_sq_norms(1, n, &w, &mut sq)?;
        let next = be.download(&sq)?[0].sqrt();
        if next == 0.0 || !next.is_finite() {
            return Ok(next);
        }
        be.axpby(1.0 / next, &w, 0.0, &mut v)?;
        let done = it > 3 && (next - est).abs() <= POWER_TOL * next;
        est = next;
        if done {
            break;
        }
    }
    Ok(est)
}

/// When a solver stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SolveOptions {
    /// Iterations at most (for [`cod`]: sweeps over all atoms), `≥ 1`.
    pub max_iter: usize,
    /// Stop when `‖h − h_prev‖ ≤ tol·max(‖h‖, TINY)` for every sample (`h_prev`: the codes
    /// one iteration or sweep earlier); finite, `≥ 0` (0 runs `max_iter` iterations).
    pub tol: f32,
}

impl Default for SolveOptions {
    /// 1000 iterations, `tol = 1e-4`.
    fn default() -> Self {
        SolveOptions {
            max_iter: 1000,
            tol: 1e-4,
        }
    }
}

/// How a solver call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SolveStats {
    /// Iterations run (for [`cod`]: the most sweeps any sample needed).
    pub iterations: usize,
    /// Every sample met the tolerance within `max_iter`.
    pub converged: bool,
}

/// Validates a solver call ([`check_call`]) and answers it at once when there is
/// nothing to solve (`batch = 0`: converged in 0 iterations).
fn start<B: Backend>(
    be: &B,
    p: &Problem<B>,
    x: &B::Tensor,
    h: &B::Tensor,
    batch: usize,
    o: &SolveOptions,
) -> Result<Option<SolveStats>> {
    check_call(be, p, x, h, batch, Some(o))?;
    Ok((batch == 0).then_some(SolveStats {
        iterations: 0,
        converged: true,
    }))
}

/// Validates a solver call: tensor lengths against `batch`, the options.
fn check_call<B: Backend>(
    be: &B,
    p: &Problem<B>,
    x: &B::Tensor,
    h: &B::Tensor,
    batch: usize,
    o: Option<&SolveOptions>,
) -> Result<()> {
    let want_x = batch * p.k;
    if be.len(x) != want_x {
        return Err(bad(
            "x",
            format!(
                "expected batch·k = {batch}·{} = {want_x} values, got {}",
                p.k,
                be.len(x)
            ),
        ));
    }
    let want_h = batch * p.n;
    if be.len(h) != want_h {
        return Err(bad(
            "h",
            format!(
                "expected batch·n = {batch}·{} = {want_h} values, got {}",
                p.n,
                be.len(h)
            ),
        ));
    }
    if let Some(o) = o {
        if o.max_iter == 0 {
            return Err(bad("max_iter", "expected ≥ 1, got 0"));
        }
        if !(o.tol.is_finite() && o.tol >= 0.0) {
            return Err(bad(
                "tol",
                format!("expected a finite value ≥ 0, got {}", o.tol),
            ));
        }
    }
    Ok(())
}

/// Per-sample energy `½‖x − D h‖² + λ‖h‖₁` of `x [batch, k]` and codes `h [batch, n]`.
pub fn energy<B: Backend>(
    be: &B,
    p: &Problem<B>,
    x: &B::Tensor,
    h: &B::Tensor,
    batch: usize,
) -> Result<Vec<f32>> {
    check_call(be, p, x, h, batch, None)?;
    if batch == 0 {
        return Ok(Vec::new());
    }
    let (k, n) = (p.k, p.n);
    // r [batch, k] = x − h Dᵀ.
    let mut r = be.zeros(batch * k)?;
    be.copy(x, &mut r)?;
    be.gemm(false, true, batch, k, n, -1.0, h, &p.d, 1.0, &mut r)?;
    let mut sq = be.zeros(batch)?;
    let mut l1 = be.zeros(batch)?;
    be.row_sq_norms(batch, k, &r, &mut sq)?;
    be.row_abs_sums(batch, n, h, &mut l1)?;
    let (sq, l1) = (be.download(&sq)?, be.download(&l1)?);
    Ok(sq
        .iter()
        .zip(&l1)
        .map(|(&s, &a)| 0.5 * s + p.lambda * a)
        .collect())
}

/// `c [batch, n] = x D`: row `s` holds `Dᵀ x_s`, the solvers' constant term.
fn correlations<B: Backend>(
    be: &B,
    p: &Problem<B>,
    x: &B::Tensor,
    batch: usize,
) -> Result<B::Tensor> {
    let mut c = be.zeros(batch * p.n)?;
    be.gemm(false, false, batch, p.n, p.k, 1.0, x, &p.d, 0.0, &mut c)?;
    Ok(c)
}
