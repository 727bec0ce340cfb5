//! aarch64 NEON average pooling, bit-exact with `reference.rs` (proven by `crate::check`).
//!
//! Shapes as in the reference: `x` `[C, H, W]`, `y` `[C, OH, OW]`. Blocks of consecutive
//! outputs of a row, one per lane, with the strided loads of `maxpool/neon.rs`:
//! - int8: window sums in i16 lanes (`SADDW`; exact for `k ≤ 15`, `k²·128 ≤ 28 800`), then
//!   the reference's rounding division per output (no vector integer division exists).
//! - f32: `0 + x₀ + x₁ + …` in `(p, q)` order, then one IEEE division by `k²` per lane.
//!
//! Other strides, and int8 windows over 15, run `kernels/pool_any.rs` on two vectors
//! (`maxpool::neon::pool_any_neon`; the reference where its stack copy is too small). Rows
//! narrower than a block, and a block whose de-interleaving load would pass the end of `x`,
//! run the reference's per-output loop. No scratch.

use core::arch::aarch64::*;

use crate::kernels::maxpool::neon::pool_any_neon;
use crate::kernels::neon::{pool_rows, strided_f32x4, strided_s8x16, strided_s8x8, taps};
use crate::kernels::pool_any::mean_code;
use crate::kernels::pool_any::{finished, fits_any, phase, Fold};
use crate::kernels::{pool_window, Dims};

/// int8: the mean code of each window, rounded half away from zero.
pub(crate) fn avgpool_s8(
    x: &[i8],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [i8],
    scratch: &mut [u8],
) {
    match stride {
        1..=4 if k <= 15 => match stride {
            1 => avg_s8::<1>(x, xd, k, yd, y),
            2 => avg_s8::<2>(x, xd, k, yd, y),
            3 => avg_s8::<3>(x, xd, k, yd, y),
            _ => avg_s8::<4>(x, xd, k, yd, y),
        },
        _ if fits_any(xd, k, stride) => {
            let n = k * k;
            let (load, store) = (
                phase(x, xd, stride, f32::from),
                finished(y, yd, move |sum| mean_code(sum, n)),
            );
            pool_any_neon(xd, k, stride, yd, Fold::Mean, load, store)
        }
        _ => super::reference::avgpool_s8(x, xd, k, stride, yd, y, scratch),
    }
}

/// The reference's `sum / n`, rounding half away from zero (`/` truncates).
#[inline(always)]
fn mean(sum: i32, n: i32) -> i8 {
    let m = if sum >= 0 {
        (sum + n / 2) / n
    } else {
        (sum - n / 2) / n
    };
    m.clamp(-128, 127) as i8
}

fn avg_s8<const S: usize>(x: &[i8], xd: Dims, k: usize, yd: Dims, y: &mut [i8]) {
    debug_assert!(y.len() == yd.len() && k <= 15);
    let n = (k * k) as i32;
    let scalar = |y: &mut [i8], o: usize| {
        let sum = pool_window(x, xd, k, S, yd, o).fold(0i32, |s, v| s + v as i32);
        y[o] = mean(sum, n);
    };
    pool_rows::<S, _>(
        xd,
        yd,
        k,
        x.len(),
        (16, 8),
        y,
        scalar,
        |y, blk, o, lanes| {
            let big = lanes == 16;
            let mut sums = [0i16; 16];
            // SAFETY: NEON is baseline on aarch64; `fits` checked that every tap's load
            // (of `lanes` outputs) reads inside `x`; the stores write inside `sums`.
            unsafe {
                let (mut lo, mut hi) = (vdupq_n_s16(0), vdupq_n_s16(0));
                for (p, q) in taps(k) {
                    let (off, sel) = blk.tap::<S>(p, q);
                    let src = x.as_ptr().add(off);
                    if big {
                        let v = strided_s8x16::<S>(src, sel);
                        lo = vaddw_s8(lo, vget_low_s8(v));
                        hi = vaddw_high_s8(hi, v);
                    } else {
                        lo = vaddw_s8(lo, strided_s8x8::<S>(src, sel));
                    }
                }
                vst1q_s16(sums.as_mut_ptr(), lo);
                vst1q_s16(sums.as_mut_ptr().add(8), hi);
            }
            for (y, &s) in y[o..][..lanes].iter_mut().zip(&sums) {
                *y = mean(s as i32, n);
            }
        },
    );
}

/// f32: the sum in `(p, q)` order, divided by `k·k` as f32.
pub(crate) fn avgpool_f32(
    x: &[f32],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [f32],
    scratch: &mut [u8],
) {
    match stride {
        1 => avg_f32::<1>(x, xd, k, yd, y),
        2 => avg_f32::<2>(x, xd, k, yd, y),
        3 => avg_f32::<3>(x, xd, k, yd, y),
        4 => avg_f32::<4>(x, xd, k, yd, y),
        _ if fits_any(xd, k, stride) => {
            let n = (k * k) as f32;
            let (load, store) = (phase(x, xd, stride, |v| v), finished(y, yd, move |s| s / n));
            pool_any_neon(xd, k, stride, yd, Fold::Mean, load, store)
        }
        _ => super::reference::avgpool_f32(x, xd, k, stride, yd, y, scratch),
    }
}

fn avg_f32<const S: usize>(x: &[f32], xd: Dims, k: usize, yd: Dims, y: &mut [f32]) {
    debug_assert_eq!(y.len(), yd.len());
    let n = (k * k) as f32;
    let scalar = |y: &mut [f32], o: usize| {
        let sum = pool_window(x, xd, k, S, yd, o).fold(0.0f32, |s, v| s + v);
        y[o] = sum / n;
    };
    pool_rows::<S, _>(
        xd,
        yd,
        k,
        x.len(),
        (4, 4),
        y,
        scalar,
        |y, blk, o, _lanes| {
            let out = &mut y[o..][..4];
            // SAFETY: NEON is baseline on aarch64; `fits` checked that every tap's load
            // reads inside `x`; the store writes `out`'s 4 elements.
            unsafe {
                let mut sum = vdupq_n_f32(0.0);
                for (p, q) in taps(k) {
                    let (off, sel) = blk.tap::<S>(p, q);
                    sum = vaddq_f32(sum, strided_f32x4::<S>(x.as_ptr().add(off), sel));
                }
                vst1q_f32(out.as_mut_ptr(), vdivq_f32(sum, vdupq_n_f32(n)));
            }
        },
    );
}
