//! Coordinate descent (CoD), cyclic, on host vectors.
//!
//! Each sample keeps `r = Dᵀx − DᵀD h` (Gregor & LeCun's `B` with the diagonal removed;
//! scikit-learn's `enet_coordinate_descent_gram` keeps the same `q − H` quantity). Atom
//! `j`'s exact minimizer with the others fixed is
//! `h_j* = shrink_λ(r_j + G_jj h_j) / G_jj`; when it changes `h_j` by `δ`, `r ← r − δ G_j`.
//! Atoms are visited cyclically `0, 1, …, n−1` (scikit-learn's order, not Gregor & LeCun's
//! greedy largest-change choice): checking an atom costs O(1), so a sweep over a sparse
//! code costs `n` checks plus `n` per atom that changes, where the greedy rule pays an
//! `n`-wide argmax per update.
//!
//! One iteration is one sweep; a sample stops when its sweep changed `h` by at most
//! `tol·max(‖h‖, TINY)`, independently of the others.
//!
//! Why on the host: a sweep is `n` dependent scalar decisions per sample, which the
//! [`Backend`] primitives (whole-tensor GEMMs and elementwise ops) cannot express without
//! one call per coordinate. `DᵀD`, `h` and `Dᵀx` (computed on the backend) are downloaded
//! once per call, the samples solved in parallel with rayon (each independently, so the
//! result does not depend on the thread count), and the codes uploaded back.

use rayon::prelude::*;

use super::{correlations, start, Problem, SolveOptions, SolveStats, TINY};
use crate::backend::Backend;
use crate::error::Result;

/// Cyclic coordinate descent from the warm start in `h [batch, n]` for `x [batch, k]`;
/// see the module docs. Same stopping rule and typed errors as [`super::fista`];
/// `iterations` is the most sweeps any sample needed.
pub fn cod<B: Backend>(
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
    let c = be.download(&correlations(be, p, x, batch)?)?;
    let gram = be.download(&p.gram)?;
    let mut codes = be.download(h)?;
    let per_sample: Vec<(usize, bool)> = codes
        .par_chunks_mut(n)
        .zip(c.par_chunks(n))
        .map_init(
            || vec![0.0f32; n],
            |r, (h, c)| cod_one(&gram, n, p.lambda, c, h, r, o),
        )
        .collect();
    be.upload_into(h, &codes)?;
    Ok(SolveStats {
        iterations: per_sample.iter().map(|s| s.0).max().unwrap_or(0),
        converged: per_sample.iter().all(|s| s.1),
    })
}

/// One sample: `h [n]` in place, `c = Dᵀx [n]`, `r [n]` scratch. Returns (sweeps,
/// converged).
fn cod_one(
    gram: &[f32],
    n: usize,
    lambda: f32,
    c: &[f32],
    h: &mut [f32],
    r: &mut [f32],
    o: &SolveOptions,
) -> (usize, bool) {
    // r = c − DᵀD h, over the warm start's non-zeros only.
    r.copy_from_slice(c);
    for (j, &hj) in h.iter().enumerate() {
        if hj != 0.0 {
            axpy(-hj, &gram[j * n..(j + 1) * n], r);
        }
    }
    for sweep in 1..=o.max_iter {
        let mut diff_sq = 0.0f32;
        for j in 0..n {
            let gjj = gram[j * n + j];
            if gjj <= 0.0 {
                continue; // an all-zero atom never helps; its code stays as it is
            }
            let old = h[j];
            let b = r[j] + gjj * old;
            let new = (b.abs() - lambda).max(0.0).copysign(b) / gjj;
            let delta = new - old;
            if delta != 0.0 {
                h[j] = new;
                axpy(-delta, &gram[j * n..(j + 1) * n], r);
                diff_sq += delta * delta;
            }
        }
        let h_sq: f32 = h.iter().map(|v| v * v).sum();
        if diff_sq.sqrt() <= o.tol * h_sq.sqrt().max(TINY) {
            return (sweep, true);
        }
    }
    (o.max_iter, false)
}

/// `y ← y + a·x`.
#[inline]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}
