//! aarch64 NEON max pooling, bit-exact with `reference.rs` (proven by `crate::check`).
//!
//! Shapes as in the reference: `x` `[C, H, W]`, `y` `[C, OH, OW]`. Each output row is done
//! in blocks of consecutive outputs, one per lane (16 or 8 for int8, 4 for f32): window tap
//! `(p, q)` of outputs `j0..` is `x[c, i·S + p, (j0 + l)·S + q]`, a strided load that
//! `LD1`..`LD4` de-interleave for strides 1 to 4. Rows narrower than a block, and a block
//! whose (over-long) de-interleaving load would pass the end of `x`, run the reference's
//! per-output loop. Other strides run `kernels/pool_any.rs` on two vectors
//! ([`pool_any_neon`]; the reference where its stack copy is too small). No scratch.

use core::arch::aarch64::*;

use crate::kernels::neon::{pool_rows, strided_f32x4, strided_s8x16, strided_s8x8, taps};
use crate::kernels::pool_any::{finished, fits_any, phase, Fold};
use crate::kernels::pool_any::{pool_any, Lanes};
use crate::kernels::{pool_window, Dims};

/// int8: the maximum code of each window.
pub(crate) fn maxpool_s8(
    x: &[i8],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [i8],
    scratch: &mut [u8],
) {
    match stride {
        1 => max_s8::<1>(x, xd, k, yd, y),
        2 => max_s8::<2>(x, xd, k, yd, y),
        3 => max_s8::<3>(x, xd, k, yd, y),
        4 => max_s8::<4>(x, xd, k, yd, y),
        _ if fits_any(xd, k, stride) => {
            let (load, store) = (
                phase(x, xd, stride, f32::from),
                finished(y, yd, |m| m as i8),
            );
            pool_any_neon(xd, k, stride, yd, Fold::Max, load, store)
        }
        _ => super::reference::maxpool_s8(x, xd, k, stride, yd, y, scratch),
    }
}

fn max_s8<const S: usize>(x: &[i8], xd: Dims, k: usize, yd: Dims, y: &mut [i8]) {
    debug_assert_eq!(y.len(), yd.len());
    let scalar = |y: &mut [i8], o: usize| {
        y[o] = pool_window(x, xd, k, S, yd, o).max().unwrap_or(0); // never empty
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
            let out = &mut y[o..][..lanes];
            // SAFETY: NEON is baseline on aarch64; `fits` checked that the load of every
            // tap (the last one reaches furthest) reads inside `x`; the store writes
            // `out`'s `lanes` bytes.
            unsafe {
                let at = |p, q| {
                    let (off, sel) = blk.tap::<S>(p, q);
                    (x.as_ptr().add(off), sel)
                };
                if big {
                    let (src, sel) = at(0, 0);
                    let mut m = strided_s8x16::<S>(src, sel);
                    for (p, q) in taps(k) {
                        let (src, sel) = at(p, q);
                        m = vmaxq_s8(m, strided_s8x16::<S>(src, sel));
                    }
                    vst1q_s8(out.as_mut_ptr(), m);
                } else {
                    let (src, sel) = at(0, 0);
                    let mut m = strided_s8x8::<S>(src, sel);
                    for (p, q) in taps(k) {
                        let (src, sel) = at(p, q);
                        m = vmax_s8(m, strided_s8x8::<S>(src, sel));
                    }
                    vst1_s8(out.as_mut_ptr(), m);
                }
            }
        },
    );
}

/// f32: the maximum in `(p, q)` order with `FMAXNM`, which is `f32::max` (NaN skipped).
pub(crate) fn maxpool_f32(
    x: &[f32],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [f32],
    scratch: &mut [u8],
) {
    match stride {
        1 => max_f32::<1>(x, xd, k, yd, y),
        2 => max_f32::<2>(x, xd, k, yd, y),
        3 => max_f32::<3>(x, xd, k, yd, y),
        4 => max_f32::<4>(x, xd, k, yd, y),
        _ if fits_any(xd, k, stride) => {
            let (load, store) = (phase(x, xd, stride, |v| v), finished(y, yd, |m| m));
            pool_any_neon(xd, k, stride, yd, Fold::Max, load, store)
        }
        _ => super::reference::maxpool_f32(x, xd, k, stride, yd, y, scratch),
    }
}

fn max_f32<const S: usize>(x: &[f32], xd: Dims, k: usize, yd: Dims, y: &mut [f32]) {
    debug_assert_eq!(y.len(), yd.len());
    let scalar = |y: &mut [f32], o: usize| {
        let mut window = pool_window(x, xd, k, S, yd, o);
        let first = window.next().unwrap_or(0.0); // k ≥ 1: never empty
        y[o] = window.fold(first, f32::max);
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
                let at = |p, q| {
                    let (off, sel) = blk.tap::<S>(p, q);
                    strided_f32x4::<S>(x.as_ptr().add(off), sel)
                };
                let mut m = at(0, 0);
                // Tap (0, 0) again changes nothing: max(m, m) = m, NaN included.
                for (p, q) in taps(k) {
                    m = vmaxnmq_f32(m, at(p, q));
                }
                vst1q_f32(out.as_mut_ptr(), m);
            }
        },
    );
}

/// [`pool_any`] on two NEON vectors: any window at any stride.
pub(crate) fn pool_any_neon(
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    fold: Fold,
    load: impl Fn(usize, usize, &mut [f32]),
    store: impl FnMut(usize, usize, &[f32]),
) {
    pool_any::<F32x8>(xd, k, stride, yd, fold, load, store)
}

/// Two NEON vectors as eight [`Lanes`] (NEON is baseline on aarch64).
#[derive(Clone, Copy)]
struct F32x8(float32x4_t, float32x4_t);

impl Lanes for F32x8 {
    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: NEON is baseline on aarch64.
        unsafe { F32x8(vdupq_n_f32(0.0), vdupq_n_f32(0.0)) }
    }
    #[inline(always)]
    fn load(v: &[f32]) -> Self {
        let v = &v[..8];
        // SAFETY: NEON; `v` is 8 f32s.
        unsafe { F32x8(vld1q_f32(v.as_ptr()), vld1q_f32(v.as_ptr().add(4))) }
    }
    #[inline(always)]
    fn store(self, out: &mut [f32; 8]) {
        // SAFETY: NEON; `out` is 8 f32s.
        unsafe {
            vst1q_f32(out.as_mut_ptr(), self.0);
            vst1q_f32(out.as_mut_ptr().add(4), self.1);
        }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        // SAFETY: NEON is baseline on aarch64.
        unsafe { F32x8(vaddq_f32(self.0, b.0), vaddq_f32(self.1, b.1)) }
    }
    #[inline(always)]
    fn max(self, b: Self) -> Self {
        // `FMAXNM` is `f32::max` (the NaN skipped), as in `max_f32`.
        // SAFETY: NEON is baseline on aarch64.
        unsafe { F32x8(vmaxnmq_f32(self.0, b.0), vmaxnmq_f32(self.1, b.1)) }
    }
}
