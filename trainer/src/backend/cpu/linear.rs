//! Fully connected layers as one GEMM per batch, split into fixed row blocks for rayon.
//!
//! Shapes: `x [n, in]`, `w [out, in]`, `b [out]`, `y [n, out]`.
//! - forward `y = x · wᵀ + b`;
//! - backward `dx [n, in] = dy · w`, `dw [out, in] = dyᵀ · x`, `db = Σ_n dy`.
//!
//! Every output element is computed by exactly one block with a fixed summation order, so
//! results do not depend on the number of threads.

use rayon::prelude::*;

use super::gemm::{mat, mat_mut, mat_t, sgemm, Mat, Rows};
use crate::backend::LinearShape;

/// Rows (samples, or output units for `dw`) per parallel block.
const ROWS: usize = 16;

/// `y [n, out] = x [n, in] · wᵀ + b`.
pub(super) fn linear_fwd(
    s: &LinearShape,
    n: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
) {
    let (ni, no) = (s.inputs, s.outputs);
    debug_assert_eq!(
        (x.len(), w.len(), b.len(), y.len()),
        (n * ni, no * ni, no, n * no)
    );
    y.par_chunks_mut(ROWS * no)
        .zip(x.par_chunks(ROWS * ni))
        .for_each(|(yb, xb)| {
            for row in yb.chunks_exact_mut(no) {
                row.copy_from_slice(b);
            }
            sgemm(
                Rows::Independent,
                yb.len() / no,
                ni,
                no,
                1.0,
                mat(xb, ni),
                mat_t(w, ni),
                1.0,
                mat_mut(yb, no),
            );
        });
}

/// Gradients of [`linear_fwd`]; overwrites `dw`, `db` and (if given) `dx`.
#[allow(clippy::too_many_arguments)]
pub(super) fn linear_bwd(
    s: &LinearShape,
    n: usize,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    dw: &mut [f32],
    db: &mut [f32],
) {
    let (ni, no) = (s.inputs, s.outputs);
    debug_assert_eq!(
        (x.len(), w.len(), dy.len(), dw.len(), db.len()),
        (n * ni, no * ni, n * no, no * ni, no)
    );
    if let Some(dx) = dx {
        debug_assert_eq!(dx.len(), n * ni);
        // dx [rows, in] = dy [rows, out] · w [out, in]
        dx.par_chunks_mut(ROWS * ni)
            .zip(dy.par_chunks(ROWS * no))
            .for_each(|(dxb, dyb)| {
                sgemm(
                    Rows::Independent,
                    dxb.len() / ni,
                    no,
                    ni,
                    1.0,
                    mat(dyb, no),
                    mat(w, ni),
                    0.0,
                    mat_mut(dxb, ni),
                );
            });
    }
    // dw [rows, in] = dyᵀ [rows, n] · x [n, in] for output units o0..o0 + rows
    dw.par_chunks_mut(ROWS * ni)
        .enumerate()
        .for_each(|(blk, dwb)| {
            let dyt = Mat {
                data: &dy[blk * ROWS..],
                rs: 1,
                cs: no,
            };
            sgemm(
                Rows::ByShape,
                dwb.len() / ni,
                n,
                ni,
                1.0,
                dyt,
                mat(x, ni),
                0.0,
                mat_mut(dwb, ni),
            );
        });
    db.fill(0.0);
    for row in dy.chunks_exact(no) {
        db.iter_mut().zip(row).for_each(|(g, d)| *g += d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_backward_match_naive_loops() {
        for (n, ni, no) in [(1, 3, 2), (5, 7, 3), (37, 400, 120), (20, 5, 33)] {
            let s = LinearShape {
                inputs: ni,
                outputs: no,
            };
            let v = |len: usize, k: usize| -> Vec<f32> {
                (0..len)
                    .map(|i| ((i * 31 + k) % 17) as f32 / 8.0 - 1.0)
                    .collect()
            };
            let (x, w, b, dy) = (v(n * ni, 1), v(no * ni, 2), v(no, 3), v(n * no, 4));
            let mut y = vec![0.0; n * no];
            linear_fwd(&s, n, &x, &w, &b, &mut y);
            let (mut dx, mut dw, mut db) = (vec![0.0; n * ni], vec![0.0; no * ni], vec![0.0; no]);
            linear_bwd(&s, n, &x, &w, &dy, Some(&mut dx), &mut dw, &mut db);
            let close = |a: f32, e: f64| {
                assert!((a as f64 - e).abs() <= 1e-4 * (1.0 + e.abs()), "{a} vs {e}")
            };
            for i in 0..n {
                for o in 0..no {
                    let e: f64 = b[o] as f64
                        + (0..ni)
                            .map(|k| (w[o * ni + k] * x[i * ni + k]) as f64)
                            .sum::<f64>();
                    close(y[i * no + o], e);
                }
                for k in 0..ni {
                    close(
                        dx[i * ni + k],
                        (0..no)
                            .map(|o| (dy[i * no + o] * w[o * ni + k]) as f64)
                            .sum(),
                    );
                }
            }
            for o in 0..no {
                close(db[o], (0..n).map(|i| dy[i * no + o] as f64).sum());
                for k in 0..ni {
                    close(
                        dw[o * ni + k],
                        (0..n)
                            .map(|i| (dy[i * no + o] * x[i * ni + k]) as f64)
                            .sum(),
                    );
                }
            }
        }
    }
}
