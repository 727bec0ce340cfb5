//! 2-D convolution (cross-correlation, zero padding, stride) by im2col + GEMM, one sample
//! per rayon task.
//!
//! Shapes (per sample, `P = out_h·out_w`, `K = in_c·k·k`):
//! - `x [in_c, in_h, in_w]` → `col [K, P]` with row `(ci·k + ki)·k + kj`, column `oy·out_w + ox`
//!   holding `x[ci, oy·stride + ki − pad, ox·stride + kj − pad]` (0 outside);
//! - forward `y [out_c, P] = w [out_c, K] · col + b`;
//! - backward `dw += dy · colᵀ`, `db += Σ_P dy`, `dcol [K, P] = wᵀ · dy`, `dx = col2im(dcol)`.
//!
//! The weight gradient is a sum over the batch: each fixed chunk of [`CHUNK`] samples sums
//! into its own partial, and the partials are added in chunk order, so the result is the
//! same bits whatever the number of threads.

use rayon::prelude::*;

use super::gemm::{mat, mat_mut, mat_t, sgemm, Rows};
use crate::backend::ConvShape;

/// Samples per partial weight gradient.
pub(super) const CHUNK: usize = 8;

/// The range `[lo, hi)` of output columns whose input column `o·stride + kj − pad` is inside
/// `[0, in_w)`.
fn valid_cols(kj: usize, s: &ConvShape) -> (usize, usize) {
    let lo = if kj >= s.pad {
        0
    } else {
        (s.pad - kj).div_ceil(s.stride)
    };
    let hi = if s.in_w + s.pad > kj {
        ((s.in_w - 1 + s.pad - kj) / s.stride + 1).min(s.out_w)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// Input row for output row `oy` and kernel row `ki`, if inside the image.
fn input_row(oy: usize, ki: usize, s: &ConvShape) -> Option<usize> {
    (oy * s.stride + ki)
        .checked_sub(s.pad)
        .filter(|&iy| iy < s.in_h)
}

/// `x [in_c, in_h, in_w]` → `col [K, P]`.
pub(super) fn im2col(s: &ConvShape, x: &[f32], col: &mut [f32]) {
    let (k, p) = (s.kernel, s.out_h * s.out_w);
    let plane = s.in_h * s.in_w;
    for ci in 0..s.in_c {
        let xc = &x[ci * plane..][..plane];
        for ki in 0..k {
            for kj in 0..k {
                let row = &mut col[((ci * k + ki) * k + kj) * p..][..p];
                let (lo, hi) = valid_cols(kj, s);
                for (oy, dst) in row.chunks_exact_mut(s.out_w).enumerate() {
                    let Some(iy) = input_row(oy, ki, s) else {
                        dst.fill(0.0);
                        continue;
                    };
                    let src = &xc[iy * s.in_w..][..s.in_w];
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    if lo == hi {
                        continue;
                    }
                    let ix0 = lo * s.stride + kj - s.pad;
                    if s.stride == 1 {
                        dst[lo..hi].copy_from_slice(&src[ix0..ix0 + (hi - lo)]);
                    } else {
                        for (o, d) in dst[lo..hi].iter_mut().enumerate() {
                            *d = src[ix0 + o * s.stride];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: `dx [in_c, in_h, in_w] += col2im(dcol [K, P])`.
pub(super) fn col2im(s: &ConvShape, dcol: &[f32], dx: &mut [f32]) {
    let (k, p) = (s.kernel, s.out_h * s.out_w);
    let plane = s.in_h * s.in_w;
    for ci in 0..s.in_c {
        let dxc = &mut dx[ci * plane..][..plane];
        for ki in 0..k {
            for kj in 0..k {
                let row = &dcol[((ci * k + ki) * k + kj) * p..][..p];
                let (lo, hi) = valid_cols(kj, s);
                for (oy, src) in row.chunks_exact(s.out_w).enumerate() {
                    let Some(iy) = input_row(oy, ki, s).filter(|_| lo < hi) else {
                        continue;
                    };
                    let dst = &mut dxc[iy * s.in_w..][..s.in_w];
                    let ix0 = lo * s.stride + kj - s.pad;
                    for (o, g) in src[lo..hi].iter().enumerate() {
                        dst[ix0 + o * s.stride] += g;
                    }
                }
            }
        }
    }
}

/// A 1×1, stride-1, unpadded convolution needs no im2col: `col` is `x` itself.
fn pointwise(s: &ConvShape) -> bool {
    s.kernel == 1 && s.stride == 1 && s.pad == 0
}

/// `y [n, out_c, out_h, out_w] = conv(x [n, in_c, in_h, in_w], w [out_c, K]) + b [out_c]`.
pub(super) fn conv2d_fwd(s: &ConvShape, n: usize, x: &[f32], w: &[f32], b: &[f32], y: &mut [f32]) {
    let (kl, p) = (s.patch_len(), s.out_h * s.out_w);
    debug_assert_eq!(
        (x.len(), y.len(), w.len(), b.len()),
        (n * s.in_len(), n * s.out_len(), s.weight_len(), s.out_c)
    );
    let col_len = if pointwise(s) { 0 } else { kl * p };
    y.par_chunks_mut(s.out_len())
        .zip(x.par_chunks(s.in_len()))
        .for_each_init(
            || vec![0.0f32; col_len],
            |col, (ys, xs)| {
                let col: &[f32] = if pointwise(s) {
                    xs
                } else {
                    im2col(s, xs, col);
                    col
                };
                for (yo, &bo) in ys.chunks_exact_mut(p).zip(b) {
                    yo.fill(bo);
                }
                sgemm(
                    Rows::ByShape,
                    s.out_c,
                    kl,
                    p,
                    1.0,
                    mat(w, kl),
                    mat(col, p),
                    1.0,
                    mat_mut(ys, p),
                );
            },
        );
}

/// Gradients of [`conv2d_fwd`]: overwrites `dw`, `db` and (if given) `dx`.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv2d_bwd(
    s: &ConvShape,
    n: usize,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    dw: &mut [f32],
    db: &mut [f32],
) {
    let (kl, p, wl) = (s.patch_len(), s.out_h * s.out_w, s.weight_len());
    debug_assert_eq!(
        (x.len(), dy.len(), dw.len(), db.len()),
        (n * s.in_len(), n * s.out_len(), wl, s.out_c)
    );
    let part_len = wl + s.out_c;
    let mut partials = vec![0.0f32; n.div_ceil(CHUNK) * part_len];
    let scratch = || {
        (
            vec![0.0f32; if pointwise(s) { 0 } else { kl * p }],
            vec![0.0f32; kl * p],
        )
    };

    // One chunk: samples `first..first + CHUNK` into `part = [dw (wl) | db (out_c)]`.
    let chunk = |(col, dcol): &mut (Vec<f32>, Vec<f32>),
                 first: usize,
                 part: &mut [f32],
                 mut dxc: Option<&mut [f32]>| {
        let (pw, pb) = part.split_at_mut(wl);
        for i in first..(first + CHUNK).min(n) {
            let xs = &x[i * s.in_len()..][..s.in_len()];
            let dys = &dy[i * s.out_len()..][..s.out_len()];
            let col: &[f32] = if pointwise(s) {
                xs
            } else {
                im2col(s, xs, col);
                col
            };
            // dw [out_c, K] += dy [out_c, P] · colᵀ [P, K]
            sgemm(
                Rows::ByShape,
                s.out_c,
                p,
                kl,
                1.0,
                mat(dys, p),
                mat_t(col, p),
                1.0,
                mat_mut(pw, kl),
            );
            for (g, dyo) in pb.iter_mut().zip(dys.chunks_exact(p)) {
                *g += dyo.iter().sum::<f32>();
            }
            if let Some(dxc) = dxc.as_deref_mut() {
                let dxs = &mut dxc[(i - first) * s.in_len()..][..s.in_len()];
                // dcol [K, P] = wᵀ [K, out_c] · dy [out_c, P]
                if pointwise(s) {
                    sgemm(
                        Rows::ByShape,
                        kl,
                        s.out_c,
                        p,
                        1.0,
                        mat_t(w, kl),
                        mat(dys, p),
                        0.0,
                        mat_mut(dxs, p),
                    );
                } else {
                    sgemm(
                        Rows::ByShape,
                        kl,
                        s.out_c,
                        p,
                        1.0,
                        mat_t(w, kl),
                        mat(dys, p),
                        0.0,
                        mat_mut(dcol, p),
                    );
                    dxs.fill(0.0);
                    col2im(s, dcol, dxs);
                }
            }
        }
    };
    match dx {
        Some(dx) => {
            debug_assert_eq!(dx.len(), n * s.in_len());
            partials
                .par_chunks_mut(part_len)
                .zip(dx.par_chunks_mut(CHUNK * s.in_len()))
                .enumerate()
                .for_each_init(scratch, |sc, (c, (part, dxc))| {
                    chunk(sc, c * CHUNK, part, Some(dxc))
                });
        }
        None => {
            partials
                .par_chunks_mut(part_len)
                .enumerate()
                .for_each_init(scratch, |sc, (c, part)| chunk(sc, c * CHUNK, part, None));
        }
    }
    // Fixed-order reduction of the partials.
    dw.fill(0.0);
    db.fill(0.0);
    for part in partials.chunks_exact(part_len) {
        let (pw, pb) = part.split_at(wl);
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
}

/// `dx [n, in_c, in_h, in_w]` of [`conv2d_fwd`] from `dy` alone: `dcol = wᵀ · dy`,
/// `dx = col2im(dcol)` (the same products as [`conv2d_bwd`]'s `dx`, so the same bits).
pub(super) fn conv2d_bwd_data(s: &ConvShape, n: usize, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (kl, p) = (s.patch_len(), s.out_h * s.out_w);
    debug_assert_eq!(
        (w.len(), dy.len(), dx.len()),
        (s.weight_len(), n * s.out_len(), n * s.in_len())
    );
    let col_len = if pointwise(s) { 0 } else { kl * p };
    dx.par_chunks_mut(s.in_len())
        .zip(dy.par_chunks(s.out_len()))
        .for_each_init(
            || vec![0.0f32; col_len],
            |dcol, (dxs, dys)| {
                let out: &mut [f32] = if pointwise(s) { dxs } else { dcol };
                sgemm(
                    Rows::ByShape,
                    kl,
                    s.out_c,
                    p,
                    1.0,
                    mat_t(w, kl),
                    mat(dys, p),
                    0.0,
                    mat_mut(out, p),
                );
                if !pointwise(s) {
                    dxs.fill(0.0);
                    col2im(s, dcol, dxs);
                }
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, with four nested loops per output.
    fn naive(s: &ConvShape, n: usize, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; n * s.out_len()];
        for i in 0..n {
            for o in 0..s.out_c {
                for oy in 0..s.out_h {
                    for ox in 0..s.out_w {
                        let mut acc = b[o] as f64;
                        for ci in 0..s.in_c {
                            for ki in 0..s.kernel {
                                for kj in 0..s.kernel {
                                    let iy = (oy * s.stride + ki) as isize - s.pad as isize;
                                    let ix = (ox * s.stride + kj) as isize - s.pad as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= s.in_h as isize
                                        || ix >= s.in_w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x[((i * s.in_c + ci) * s.in_h + iy as usize) * s.in_w
                                        + ix as usize];
                                    acc += (w[((o * s.in_c + ci) * s.kernel + ki) * s.kernel + kj]
                                        * xv) as f64;
                                }
                            }
                        }
                        y[((i * s.out_c + o) * s.out_h + oy) * s.out_w + ox] = acc as f32;
                    }
                }
            }
        }
        y
    }

    fn shape(
        in_c: usize,
        in_h: usize,
        in_w: usize,
        out_c: usize,
        kernel: usize,
        stride: usize,
        pad: usize,
    ) -> ConvShape {
        let out_h = (in_h + 2 * pad - kernel) / stride + 1;
        let out_w = (in_w + 2 * pad - kernel) / stride + 1;
        ConvShape {
            in_c,
            in_h,
            in_w,
            out_c,
            kernel,
            stride,
            pad,
            out_h,
            out_w,
        }
    }

    fn values(len: usize, salt: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + salt * 104729) % 1000) as f32 / 500.0) - 1.0)
            .collect()
    }

    #[test]
    fn forward_matches_naive_loops() {
        let cases = [
            shape(1, 28, 28, 6, 5, 1, 2),
            shape(6, 14, 14, 16, 5, 1, 0),
            shape(3, 9, 7, 5, 3, 2, 1),
            shape(2, 8, 8, 3, 4, 3, 2),
            shape(5, 6, 6, 7, 1, 1, 0),
            shape(2, 5, 5, 4, 3, 1, 3),
        ];
        for (t, s) in cases.iter().enumerate() {
            let n = 3;
            let x = values(n * s.in_len(), t);
            let w = values(s.weight_len(), t + 10);
            let b = values(s.out_c, t + 20);
            let mut y = vec![f32::NAN; n * s.out_len()];
            conv2d_fwd(s, n, &x, &w, &b, &mut y);
            let r = naive(s, n, &x, &w, &b);
            for (a, e) in y.iter().zip(&r) {
                assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{s:?}: {a} vs {e}");
            }
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), c> == <x, col2im(c)> for any x, c.
        for s in [
            shape(2, 7, 6, 1, 3, 2, 1),
            shape(1, 5, 5, 1, 5, 1, 2),
            shape(3, 4, 9, 1, 2, 3, 0),
        ] {
            let x = values(s.in_len(), 1);
            let c = values(s.patch_len() * s.out_h * s.out_w, 2);
            let mut col = vec![0.0; c.len()];
            im2col(&s, &x, &mut col);
            let mut back = vec![0.0; x.len()];
            col2im(&s, &c, &mut back);
            let lhs: f64 = col.iter().zip(&c).map(|(a, b)| (a * b) as f64).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| (a * b) as f64).sum();
            assert!(
                (lhs - rhs).abs() < 1e-4 * (1.0 + lhs.abs()),
                "{s:?}: {lhs} vs {rhs}"
            );
        }
    }

    /// The backward pass by the definition: every (output, tap) pair adds its products.
    fn naive_bwd(s: &ConvShape, n: usize, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f64>; 3] {
        let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; s.out_c]);
        for i in 0..n {
            for o in 0..s.out_c {
                for oy in 0..s.out_h {
                    for ox in 0..s.out_w {
                        let g = dy[((i * s.out_c + o) * s.out_h + oy) * s.out_w + ox] as f64;
                        db[o] += g;
                        for ci in 0..s.in_c {
                            for ki in 0..s.kernel {
                                for kj in 0..s.kernel {
                                    let iy = (oy * s.stride + ki) as isize - s.pad as isize;
                                    let ix = (ox * s.stride + kj) as isize - s.pad as isize;
                                    if iy < 0
                                        || ix < 0
                                        || iy >= s.in_h as isize
                                        || ix >= s.in_w as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((i * s.in_c + ci) * s.in_h + iy as usize) * s.in_w
                                        + ix as usize;
                                    let wi = ((o * s.in_c + ci) * s.kernel + ki) * s.kernel + kj;
                                    dw[wi] += g * x[xi] as f64;
                                    dx[xi] += g * w[wi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        [dx, dw, db]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn random_shapes_match_the_definition(
            in_c in 1usize..5, in_h in 1usize..13, in_w in 1usize..13, out_c in 1usize..6,
            kernel in 1usize..6, stride in 1usize..4, pad in 0usize..3, n in 1usize..11, salt in 0usize..100,
        ) {
            proptest::prop_assume!(kernel <= in_h + 2 * pad && kernel <= in_w + 2 * pad);
            let s = shape(in_c, in_h, in_w, out_c, kernel, stride, pad);
            let x = values(n * s.in_len(), salt);
            let w = values(s.weight_len(), salt + 1);
            let b = values(s.out_c, salt + 2);
            let dy = values(n * s.out_len(), salt + 3);
            let mut y = vec![f32::NAN; n * s.out_len()];
            conv2d_fwd(&s, n, &x, &w, &b, &mut y);
            for (a, e) in y.iter().zip(&naive(&s, n, &x, &w, &b)) {
                proptest::prop_assert!((a - e).abs() <= 1e-5 * (1.0 + e.abs()), "{:?}: {} vs {}", s, a, e);
            }
            let (mut dx, mut dw, mut db) = (vec![f32::NAN; x.len()], vec![f32::NAN; w.len()], vec![f32::NAN; out_c]);
            conv2d_bwd(&s, n, &x, &w, &dy, Some(&mut dx), &mut dw, &mut db);
            let mut dx_only = vec![f32::NAN; x.len()];
            conv2d_bwd_data(&s, n, &w, &dy, &mut dx_only);
            proptest::prop_assert_eq!(&dx_only, &dx, "the data-only gradient is the same bits");
            for (got, want) in [dx, dw, db].iter().zip(naive_bwd(&s, n, &x, &w, &dy)) {
                for (a, e) in got.iter().zip(&want) {
                    proptest::prop_assert!((*a as f64 - e).abs() <= 1e-4 * (1.0 + e.abs()), "{:?}: {} vs {}", s, a, e);
                }
            }
        }
    }
}
