//! Dense linear algebra for the solvers: GEMM over whole tensors, `axpby`, per-row
//! reductions and the dictionary's unit-norm columns. Parallel over fixed row blocks, so
//! results do not depend on the thread count.

use rayon::prelude::*;

use super::gemm::{mat, mat_mut, mat_t, sgemm, Mat, Rows};

/// Rows of `c` per parallel task in [`gemm`].
const ROW_BLOCK: usize = 32;
/// Elements per parallel block of the elementwise ops.
const BLOCK: usize = 1 << 14;

/// `c [m, n] ← α·op(a)·op(b) + β·c`; see [`crate::backend::Backend::gemm`]. Each row block
/// is one `matrixmultiply` product, whose rows depend only on their row of `op(a)`.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    ta: bool,
    tb: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    b: &[f32],
    beta: f32,
    c: &mut [f32],
) {
    debug_assert_eq!((a.len(), b.len(), c.len()), (m * k, k * n, m * n));
    if m == 0 || n == 0 {
        return;
    }
    let b = if tb { mat_t(b, k) } else { mat(b, n) };
    c.par_chunks_mut(ROW_BLOCK * n)
        .enumerate()
        .for_each(|(blk, cb)| {
            let i0 = blk * ROW_BLOCK;
            let rows = cb.len() / n;
            // Rows i0.. of op(a): `[m, k]` row-major, or the columns i0.. of `[k, m]`.
            let a = if ta {
                Mat {
                    data: &a[i0..],
                    rs: 1,
                    cs: m,
                }
            } else {
                mat(&a[i0 * k..], k)
            };
            sgemm(
                Rows::Independent,
                rows,
                k,
                n,
                alpha,
                a,
                b,
                beta,
                mat_mut(cb, n),
            );
        });
}

/// `y ← α·x + β·y` (`y` not read when `β = 0`).
pub(super) fn axpby(alpha: f32, x: &[f32], beta: f32, y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    y.par_chunks_mut(BLOCK)
        .zip(x.par_chunks(BLOCK))
        .for_each(|(yb, xb)| {
            if beta == 0.0 {
                yb.iter_mut().zip(xb).for_each(|(y, &x)| *y = alpha * x);
            } else {
                yb.iter_mut()
                    .zip(xb)
                    .for_each(|(y, &x)| *y = alpha * x + beta * *y);
            }
        });
}

/// `out[r] = Σ_c f(x[r, c])`, summed in f64 in column order.
pub(super) fn row_reduce(
    rows: usize,
    cols: usize,
    x: &[f32],
    out: &mut [f32],
    f: impl Fn(f32) -> f64 + Sync,
) {
    debug_assert_eq!((x.len(), out.len()), (rows * cols, rows));
    if cols == 0 {
        out.fill(0.0);
        return;
    }
    out.par_iter_mut()
        .zip(x.par_chunks(cols))
        .for_each(|(o, row)| *o = row.iter().map(|&v| f(v)).sum::<f64>() as f32);
}

/// Each column of `d [rows, cols]` divided by its ℓ2 norm (f64), zero columns untouched.
pub(super) fn normalize_columns(rows: usize, cols: usize, d: &mut [f32]) {
    debug_assert_eq!(d.len(), rows * cols);
    let mut norms = vec![0f64; cols];
    for row in d.chunks_exact(cols) {
        for (s, &v) in norms.iter_mut().zip(row) {
            *s += v as f64 * v as f64;
        }
    }
    let inv: Vec<f64> = norms
        .iter()
        .map(|&s| if s > 0.0 { 1.0 / s.sqrt() } else { 1.0 })
        .collect();
    d.par_chunks_mut(cols).for_each(|row| {
        for (v, &s) in row.iter_mut().zip(&inv) {
            *v = (*v as f64 * s) as f32;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize, salt: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + salt * 104_729) % 2003) as f32 - 1001.0) / 997.0)
            .collect()
    }

    #[test]
    fn gemm_matches_naive_for_every_transpose() {
        let (m, n, k) = (70, 13, 9); // more than two row blocks, odd sizes
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let at = |i: usize, t: usize| if ta { a[t * m + i] } else { a[i * k + t] };
            let bt = |t: usize, j: usize| if tb { b[j * k + t] } else { b[t * n + j] };
            let mut c = values(m * n, 3);
            let c0 = c.clone();
            gemm(ta, tb, m, n, k, 1.5, &a, &b, -0.5, &mut c);
            for i in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k).map(|t| at(i, t) as f64 * bt(t, j) as f64).sum();
                    let want = 1.5 * dot - 0.5 * c0[i * n + j] as f64;
                    let got = c[i * n + j] as f64;
                    assert!(
                        (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                        "{ta} {tb} {i} {j}"
                    );
                }
            }
        }
    }

    #[test]
    fn gemm_rows_do_not_depend_on_m() {
        let (n, k) = (128, 81);
        let (a, b) = (values(100 * k, 4), values(k * n, 5));
        let run = |m: usize| {
            let mut c = vec![0.0; m * n];
            gemm(false, true, m, n, k, 1.0, &a[..m * k], &b, 0.0, &mut c);
            c
        };
        let all = run(100);
        for m in [1, 5, 32, 33, 64] {
            assert_eq!(run(m)[..], all[..m * n], "m = {m}");
        }
    }

    #[test]
    fn axpby_reductions_and_unit_columns() {
        let x = vec![1.0, -2.0, 3.0];
        let mut y = vec![f32::NAN, 1.0, 1.0];
        axpby(2.0, &x, 0.0, &mut y); // β = 0 never reads y (the NaN)
        assert_eq!(y, [2.0, -4.0, 6.0]);
        axpby(1.0, &x, -1.0, &mut y);
        assert_eq!(y, [-1.0, 2.0, -3.0]);
        let mut out = vec![0.0; 2];
        row_reduce(2, 3, &[1.0, 2.0, 2.0, 0.0, -3.0, 4.0], &mut out, |v| {
            (v * v) as f64
        });
        assert_eq!(out, [9.0, 25.0]);
        let mut d = vec![3.0, 0.0, 4.0, 0.0]; // [2, 2]: columns (3, 4) and (0, 0)
        normalize_columns(2, 2, &mut d);
        assert_eq!(d, [0.6, 0.0, 0.8, 0.0]);
    }
}
