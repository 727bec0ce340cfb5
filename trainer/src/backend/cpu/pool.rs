//! Max and average pooling, `k × k` windows, stride, no padding, floor output size.
//!
//! Shapes: `x [n, c, in_h, in_w]` → `y [n, c, out_h, out_w]`; one rayon task per sample.
//! Max pooling's gradient goes to the first maximum of each window in row-major order,
//! recomputed from `x` (no index tensor is kept).

use rayon::prelude::*;

use crate::backend::PoolShape;

/// Output row `oy` of one max-pooled plane: each window's maximum into `best` and, when
/// `at` is non-empty, the plane offset of its first maximum in row-major window order.
/// Windows are scanned together, element `(ki, kj)` of every window at a time, so the loop
/// over `ox` is a plain strided pass.
fn max_row(s: &PoolShape, plane: &[f32], oy: usize, best: &mut [f32], at: &mut [usize]) {
    if s.kernel == 2 && s.stride == 2 {
        return max_row_2x2(s, plane, oy, best, at);
    }
    let span = (s.out_w - 1) * s.stride + 1; // input columns touched by kernel column 0
    for ki in 0..s.kernel {
        let iy = oy * s.stride + ki;
        let row = &plane[iy * s.in_w..][..s.in_w];
        for kj in 0..s.kernel {
            let cols = row[kj..kj + span].iter().step_by(s.stride);
            if ki == 0 && kj == 0 {
                best.iter_mut().zip(cols).for_each(|(b, &v)| *b = v);
                at.iter_mut()
                    .enumerate()
                    .for_each(|(ox, a)| *a = iy * s.in_w + ox * s.stride);
            } else if at.is_empty() {
                best.iter_mut()
                    .zip(cols)
                    .for_each(|(b, &v)| *b = if v > *b { v } else { *b });
            } else {
                for (ox, (b, &v)) in best.iter_mut().zip(cols).enumerate() {
                    if v > *b {
                        *b = v;
                        at[ox] = iy * s.in_w + ox * s.stride + kj;
                    }
                }
            }
        }
    }
}

/// [`max_row`] for the common 2×2, stride-2 window (LeNet's), same order and ties.
fn max_row_2x2(s: &PoolShape, plane: &[f32], oy: usize, best: &mut [f32], at: &mut [usize]) {
    let top = 2 * oy * s.in_w;
    let r0 = &plane[top..][..2 * s.out_w];
    let r1 = &plane[top + s.in_w..][..2 * s.out_w];
    if at.is_empty() {
        // Values only (the forward pass): the same comparisons without the index, so the
        // compiler can use branch-free maxima.
        let gt = |m: f32, v: f32| if v > m { v } else { m };
        for (b, (p0, p1)) in best
            .iter_mut()
            .zip(r0.chunks_exact(2).zip(r1.chunks_exact(2)))
        {
            *b = gt(gt(gt(p0[0], p0[1]), p1[0]), p1[1]);
        }
        return;
    }
    for (ox, (b, (p0, p1))) in best
        .iter_mut()
        .zip(r0.chunks_exact(2).zip(r1.chunks_exact(2)))
        .enumerate()
    {
        let (mut m, mut a) = (p0[0], 0);
        for (v, off) in [(p0[1], 1), (p1[0], s.in_w), (p1[1], s.in_w + 1)] {
            if v > m {
                (m, a) = (v, off);
            }
        }
        *b = m;
        if let Some(at) = at.get_mut(ox) {
            *at = top + 2 * ox + a;
        }
    }
}

/// Max pooling.
pub(super) fn maxpool_fwd(s: &PoolShape, n: usize, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!((x.len(), y.len()), (n * s.in_len(), n * s.out_len()));
    let (pi, po) = (s.in_h * s.in_w, s.out_h * s.out_w);
    y.par_chunks_mut(s.out_len())
        .zip(x.par_chunks(s.in_len()))
        .for_each(|(ys, xs)| {
            for (yp, xp) in ys.chunks_exact_mut(po).zip(xs.chunks_exact(pi)) {
                for (oy, yr) in yp.chunks_exact_mut(s.out_w).enumerate() {
                    max_row(s, xp, oy, yr, &mut []);
                }
            }
        });
}

/// Max pooling's gradient.
pub(super) fn maxpool_bwd(s: &PoolShape, n: usize, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    debug_assert_eq!(
        (x.len(), dy.len(), dx.len()),
        (n * s.in_len(), n * s.out_len(), n * s.in_len())
    );
    let (pi, po) = (s.in_h * s.in_w, s.out_h * s.out_w);
    dx.par_chunks_mut(s.in_len())
        .zip(x.par_chunks(s.in_len()))
        .zip(dy.par_chunks(s.out_len()))
        .for_each_init(
            || (vec![0.0f32; s.out_w], vec![0usize; s.out_w]),
            |(best, at), ((dxs, xs), dys)| {
                dxs.fill(0.0);
                for ((dxp, xp), dyp) in dxs
                    .chunks_exact_mut(pi)
                    .zip(xs.chunks_exact(pi))
                    .zip(dys.chunks_exact(po))
                {
                    for (oy, dyr) in dyp.chunks_exact(s.out_w).enumerate() {
                        max_row(s, xp, oy, best, at);
                        for (&a, &g) in at.iter().zip(dyr) {
                            dxp[a] += g;
                        }
                    }
                }
            },
        );
}

/// Average pooling: each window's sum, in row-major window order, divided by `k²`.
pub(super) fn avgpool_fwd(s: &PoolShape, n: usize, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!((x.len(), y.len()), (n * s.in_len(), n * s.out_len()));
    let (pi, po) = (s.in_h * s.in_w, s.out_h * s.out_w);
    let span = (s.out_w - 1) * s.stride + 1;
    let area = (s.kernel * s.kernel) as f32;
    y.par_chunks_mut(s.out_len())
        .zip(x.par_chunks(s.in_len()))
        .for_each(|(ys, xs)| {
            for (yp, xp) in ys.chunks_exact_mut(po).zip(xs.chunks_exact(pi)) {
                for (oy, acc) in yp.chunks_exact_mut(s.out_w).enumerate() {
                    acc.fill(0.0);
                    for ki in 0..s.kernel {
                        let row = &xp[(oy * s.stride + ki) * s.in_w..][..s.in_w];
                        for kj in 0..s.kernel {
                            acc.iter_mut()
                                .zip(row[kj..kj + span].iter().step_by(s.stride))
                                .for_each(|(a, v)| *a += v);
                        }
                    }
                    acc.iter_mut().for_each(|a| *a /= area);
                }
            }
        });
}

/// Average pooling's gradient: each `dy / k²` spread over its window.
pub(super) fn avgpool_bwd(s: &PoolShape, n: usize, dy: &[f32], dx: &mut [f32]) {
    debug_assert_eq!((dy.len(), dx.len()), (n * s.out_len(), n * s.in_len()));
    let (pi, po) = (s.in_h * s.in_w, s.out_h * s.out_w);
    let span = (s.out_w - 1) * s.stride + 1;
    let area = (s.kernel * s.kernel) as f32;
    dx.par_chunks_mut(s.in_len())
        .zip(dy.par_chunks(s.out_len()))
        .for_each_init(
            || vec![0.0f32; s.out_w],
            |g, (dxs, dys)| {
                dxs.fill(0.0);
                for (dxp, dyp) in dxs.chunks_exact_mut(pi).zip(dys.chunks_exact(po)) {
                    for (oy, dyr) in dyp.chunks_exact(s.out_w).enumerate() {
                        g.iter_mut().zip(dyr).for_each(|(g, d)| *g = d / area);
                        for ki in 0..s.kernel {
                            let row = &mut dxp[(oy * s.stride + ki) * s.in_w..][..s.in_w];
                            for kj in 0..s.kernel {
                                row[kj..kj + span]
                                    .iter_mut()
                                    .step_by(s.stride)
                                    .zip(g.iter())
                                    .for_each(|(d, g)| *d += g);
                            }
                        }
                    }
                }
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_and_avg_on_a_small_plane() {
        // One 4×5 plane, 2×2 windows with stride 2 → 2×2 (the last column is dropped).
        let s = PoolShape {
            c: 1,
            in_h: 4,
            in_w: 5,
            kernel: 2,
            stride: 2,
            out_h: 2,
            out_w: 2,
        };
        #[rustfmt::skip]
        let x = [
            1.0, 3.0, 0.0, 0.0, 9.0,
            3.0, 2.0, 5.0, 4.0, 9.0,
            -1.0, -2.0, 7.0, 7.0, 9.0,
            -3.0, -4.0, 7.0, 6.0, 9.0,
        ];
        let mut y = [0.0; 4];
        maxpool_fwd(&s, 1, &x, &mut y);
        assert_eq!(y, [3.0, 5.0, -1.0, 7.0]);
        let mut dx = [9.0; 20];
        maxpool_bwd(&s, 1, &x, &[1.0, 2.0, 3.0, 4.0], &mut dx);
        // Ties go to the first maximum in row-major order: (0,1) for 3.0 and (2,2) for 7.0.
        let mut want = [0.0; 20];
        (want[1], want[7], want[10], want[12]) = (1.0, 2.0, 3.0, 4.0);
        assert_eq!(dx, want);
        avgpool_fwd(&s, 1, &x, &mut y);
        assert_eq!(y, [2.25, 2.25, -2.5, 6.75]);
        avgpool_bwd(&s, 1, &[4.0, 8.0, 4.0, 4.0], &mut dx);
        assert_eq!(&dx[..5], &[1.0, 1.0, 2.0, 2.0, 0.0]);
    }
}
