//! ISTA and FISTA: proximal gradient steps `h ← shrink_{λ/L}(y + (Dᵀx − DᵀD y)/L)` on the
//! whole batch, from backend primitives only (so every backend runs them unchanged).
//!
//! Per iteration and batch: one `[batch, n] × [n, n]` GEMM with the precomputed `DᵀD`, a
//! few elementwise ops, and the stopping test, which downloads `2·batch` floats (the
//! per-sample `‖h − h_prev‖²` and `‖h‖²`).

use super::{correlations, start, Problem, SolveOptions, SolveStats, TINY};
use crate::backend::{Backend, Thresh};
use crate::error::Result;

/// Scratch for the stopping test.
struct Stop<B: Backend> {
    diff_sq: B::Tensor,
    h_sq: B::Tensor,
}

impl<B: Backend> Stop<B> {
    fn new(be: &B, batch: usize) -> Result<Self> {
        Ok(Stop {
            diff_sq: be.zeros(batch)?,
            h_sq: be.zeros(batch)?,
        })
    }

    /// `‖diff_s‖ ≤ tol·max(‖h_s‖, TINY)` for every sample `s`.
    fn converged(
        &mut self,
        be: &B,
        diff: &B::Tensor,
        h: &B::Tensor,
        batch: usize,
        n: usize,
        tol: f32,
    ) -> Result<bool> {
        be.row_sq_norms(batch, n, diff, &mut self.diff_sq)?;
        be.row_sq_norms(batch, n, h, &mut self.h_sq)?;
        let (d, hs) = (be.download(&self.diff_sq)?, be.download(&self.h_sq)?);
        Ok(d.iter()
            .zip(&hs)
            .all(|(&d, &h)| d.sqrt() <= tol * h.sqrt().max(TINY)))
    }
}

/// One proximal gradient step from `y` into `out`:
/// `out = shrink_{λ/L}(y + (c − y·DᵀD)/L)`, using `z` as scratch.
#[allow(clippy::too_many_arguments)]
fn prox_step<B: Backend>(
    be: &B,
    p: &Problem<B>,
    c: &B::Tensor,
    y: &B::Tensor,
    z: &mut B::Tensor,
    out: &mut B::Tensor,
    batch: usize,
) -> Result<()> {
    let n = p.n;
    let inv_l = 1.0 / p.lipschitz;
    be.copy(c, z)?;
    be.gemm(false, false, batch, n, n, -1.0, y, &p.gram, 1.0, z)?; // z = c − y DᵀD
    be.axpby(1.0, y, inv_l, z)?; // z = y + z/L
    be.shrink_fwd(Thresh::Scalar(p.lambda * inv_l), z, out)
}

/// ISTA: `h ← shrink_{λ/L}(h + (Dᵀx − DᵀD h)/L)` from the warm start in `h [batch, n]`
/// for `x [batch, k]`, until [`SolveOptions`]' tolerance holds for every sample or
/// `max_iter` iterations ran. Typed errors for length mismatches and bad options.
pub fn ista<B: Backend>(
    be: &B,
    p: &Problem<B>,
    x: &B::Tensor,
    h: &mut B::Tensor,
    batch: usize,
    o: &SolveOptions,
) -> Result<SolveStats> {
    if let Some(done) = start(be, p, x, h, batch, o)? {
        return Ok(done);
    }
    let n = p.n;
    let c = correlations(be, p, x, batch)?;
    let mut prev = be.zeros(batch * n)?;
    let mut z = be.zeros(batch * n)?;
    let mut stop = Stop::new(be, batch)?;
    for it in 1..=o.max_iter {
        be.copy(h, &mut prev)?;
        prox_step(be, p, &c, &prev, &mut z, h, batch)?;
        be.axpby(-1.0, h, 1.0, &mut prev)?; // prev = h_prev − h
        if stop.converged(be, &prev, h, batch, n, o.tol)? {
            return Ok(SolveStats {
                iterations: it,
                converged: true,
            });
        }
    }
    Ok(SolveStats {
        iterations: o.max_iter,
        converged: false,
    })
}

/// FISTA (Beck & Teboulle 2009): the ISTA step taken from the extrapolated point
/// `y = h + ((t_prev − 1)/t)(h − h_prev)`, `t ← (1 + √(1 + 4t²))/2`, starting from
/// `y = h` (the warm start) and `t = 1`. Same stopping rule and errors as [`ista`].
pub fn fista<B: Backend>(
    be: &B,
    p: &Problem<B>,
    x: &B::Tensor,
    h: &mut B::Tensor,
    batch: usize,
    o: &SolveOptions,
) -> Result<SolveStats> {
    if let Some(done) = start(be, p, x, h, batch, o)? {
        return Ok(done);
    }
    let n = p.n;
    let c = correlations(be, p, x, batch)?;
    let mut y = be.zeros(batch * n)?;
    be.copy(h, &mut y)?;
    let mut prev = be.zeros(batch * n)?;
    let mut z = be.zeros(batch * n)?;
    let mut stop = Stop::new(be, batch)?;
    let mut t = 1.0f32;
    for it in 1..=o.max_iter {
        be.copy(h, &mut prev)?;
        prox_step(be, p, &c, &y, &mut z, h, batch)?;
        be.copy(h, &mut z)?;
        be.axpby(-1.0, &prev, 1.0, &mut z)?; // z = h − h_prev
        if stop.converged(be, &z, h, batch, n, o.tol)? {
            return Ok(SolveStats {
                iterations: it,
                converged: true,
            });
        }
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        be.copy(h, &mut y)?;
        be.axpby((t - 1.0) / t_next, &z, 1.0, &mut y)?; // y = h + β (h − h_prev)
        t = t_next;
    }
    Ok(SolveStats {
        iterations: o.max_iter,
        converged: false,
    })
}
