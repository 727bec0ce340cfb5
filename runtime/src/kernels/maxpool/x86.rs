//! x86-64 AVX2 max pooling. `maxpool_s8` and `maxpool_f32` have vector paths for the
//! common `2 × 2`, stride-2 window (LeNet's), and for any other window and stride
//! (`kernels/pool_any.rs` on AVX2 lanes, [`pool_any_avx2`], shared with average pooling).

use core::arch::x86_64::*;

use super::reference;
use crate::kernels::pool_any::Lanes;
use crate::kernels::pool_any::{finished, fits_any, phase, Fold};
use crate::kernels::x86::{load_partial_i8, store_partial_i8};
use crate::kernels::{pool_window, Dims};

/// int8: equal to [`reference::maxpool_s8`] bit for bit.
pub(crate) fn maxpool_s8(
    x: &[i8],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [i8],
    scratch: &mut [u8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    if k == 2 && stride == 2 {
        // SAFETY: this file runs only through `Kernels::VARIANT`, which a plan uses only where the CPU has AVX2 and F16C (`KernelSet::runs_here`).
        unsafe { maxpool_2x2_s8(x, xd, yd, y) }
    } else if fits_any(xd, k, stride) {
        let (load, store) = (
            phase(x, xd, stride, f32::from),
            finished(y, yd, |m| m as i8),
        );
        // SAFETY: as above.
        unsafe { pool_any_avx2(xd, k, stride, yd, Fold::Max, load, store) }
    } else {
        reference::maxpool_s8(x, xd, k, stride, yd, y, scratch)
    }
}

/// `y[c,i,j] = max(x[c,2i,2j], x[c,2i,2j+1], x[c,2i+1,2j], x[c,2i+1,2j+1])`, 16 outputs
/// (32 input columns of two rows) per step: the two rows' byte-wise maximum, then the
/// maximum of each even and odd byte, as i16 lanes.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn maxpool_2x2_s8(x: &[i8], xd: Dims, yd: Dims, y: &mut [i8]) {
    // 32 bytes from `x[at..]`, directly where they exist (lanes past the row feed no
    // stored output), else padded.
    let load32 = |at: usize| {
        if at + 32 <= x.len() {
            // SAFETY: 32 readable bytes at `at`.
            unsafe { _mm256_loadu_si256(x.as_ptr().add(at).cast()) }
        } else {
            let src = &x[at..];
            let lo = load_partial_i8(src, 0);
            let hi = load_partial_i8(src.get(16..).unwrap_or(&[]), 0);
            _mm256_set_m128i(hi, lo)
        }
    };
    // Output rows of every channel in turn: `row` = c·OH + i.
    for row in 0..xd.c * yd.h {
        let (c, i) = (row / yd.h, row % yd.h);
        let top = (c * xd.h + 2 * i) * xd.w;
        for j0 in (0..yd.w).step_by(16) {
            let v = _mm256_max_epi8(load32(top + 2 * j0), load32(top + xd.w + 2 * j0));
            let even = _mm256_srai_epi16::<8>(_mm256_slli_epi16::<8>(v));
            let odd = _mm256_srai_epi16::<8>(v);
            let m = _mm256_max_epi16(even, odd); // outputs j0..j0+8 | j0+8..j0+16
            let packed = _mm256_packs_epi16(m, m); // exact: every lane is an i8
            let packed = _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0b1000>(packed));
            // Lanes past the row land in later rows (written afterwards), so a full
            // store is fine wherever 16 bytes of `y` remain.
            let at = row * yd.w + j0;
            if at + 16 <= y.len() {
                // SAFETY: 16 writable bytes at `at`.
                unsafe { _mm_storeu_si128(y.as_mut_ptr().add(at).cast(), packed) };
            } else {
                store_partial_i8(&mut y[at..at + 16.min(yd.w - j0)], packed);
            }
        }
    }
}

/// f32: equal to [`reference::maxpool_f32`] bit for bit (NaN included; which zero `f32::max`
/// returns for `±0` is unspecified in both).
pub(crate) fn maxpool_f32(
    x: &[f32],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [f32],
    scratch: &mut [u8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    if k == 2 && stride == 2 {
        // SAFETY: this file runs only through `Kernels::VARIANT`, which a plan uses only where the CPU has AVX2 and F16C (`KernelSet::runs_here`).
        unsafe { pool_2x2_f32(x, xd, yd, y, Fold::Max) }
    } else if fits_any(xd, k, stride) {
        let (load, store) = (phase(x, xd, stride, |v| v), finished(y, yd, |m| m));
        // SAFETY: as above.
        unsafe { pool_any_avx2(xd, k, stride, yd, Fold::Max, load, store) }
    } else {
        reference::maxpool_f32(x, xd, k, stride, yd, y, scratch)
    }
}

/// The `2 × 2`, stride-2 f32 pooling: eight outputs (16 columns of two rows) per step,
/// the rest of each row scalar like the reference.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn pool_2x2_f32(x: &[f32], xd: Dims, yd: Dims, y: &mut [f32], fold: Fold) {
    // f32::max(acc, v): v unless acc ≥ v or v is NaN, and v when acc is NaN.
    let max = |acc: __m256, v: __m256| {
        _mm256_blendv_ps(
            _mm256_max_ps(v, acc),
            v,
            _mm256_cmp_ps::<_CMP_UNORD_Q>(acc, acc),
        )
    };
    for c in 0..xd.c {
        for i in 0..yd.h {
            let top = (c * xd.h + 2 * i) * xd.w;
            let row = (c * yd.h + i) * yd.w;
            let mut j0 = 0;
            // 16 columns of both rows must lie in `x` (lanes past the row are dropped).
            while j0 < yd.w && top + xd.w + 2 * j0 + 16 <= x.len() {
                let load = |at: usize| {
                    // SAFETY: `at + 16 ≤ x.len()` (the loop condition).
                    let (v0, v1) = unsafe {
                        let p = x.as_ptr().add(at);
                        (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
                    };
                    // Even and odd columns, in the lane order 0 2 8 10 | 4 6 12 14.
                    (
                        _mm256_shuffle_ps::<0x88>(v0, v1),
                        _mm256_shuffle_ps::<0xdd>(v0, v1),
                    )
                };
                let (a0, a1) = load(top + 2 * j0);
                let (b0, b1) = load(top + xd.w + 2 * j0);
                let v = match fold {
                    Fold::Max => max(max(max(a0, a1), b0), b1),
                    Fold::Mean => {
                        let s = _mm256_add_ps(_mm256_setzero_ps(), a0);
                        let s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s, a1), b0), b1);
                        _mm256_div_ps(s, _mm256_set1_ps(4.0))
                    }
                };
                // Back to column order: 64-bit chunks 0, 2, 1, 3.
                let v = _mm256_castpd_ps(_mm256_permute4x64_pd::<0xd8>(_mm256_castps_pd(v)));
                let mut out = [0f32; 8];
                // SAFETY: `out` is 8 f32s.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
                let n = 8.min(yd.w - j0);
                y[row + j0..row + j0 + n].copy_from_slice(&out[..n]);
                j0 += 8;
            }
            for j in j0..yd.w {
                let o = row + j;
                let mut window = pool_window(x, xd, 2, 2, yd, o);
                y[o] = match fold {
                    Fold::Max => {
                        let first = window.next().unwrap_or(0.0);
                        window.fold(first, f32::max)
                    }
                    Fold::Mean => window.fold(0.0f32, |s, v| s + v) / 4.0,
                };
            }
        }
    }
}

/// [`pool_any`](crate::kernels::pool_any::pool_any) on AVX2 lanes.
///
/// # Safety
/// AVX2; [`fits_any`].
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn pool_any_avx2(
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    fold: Fold,
    load: impl Fn(usize, usize, &mut [f32]),
    store: impl FnMut(usize, usize, &[f32]),
) {
    crate::kernels::pool_any::pool_any::<M256>(xd, k, stride, yd, fold, load, store)
}

/// One AVX2 vector as [`Lanes`]; its methods run only inside `#[target_feature(enable =
/// "avx2")]` code (they inline into [`pool_any_avx2`]).
#[derive(Clone, Copy)]
struct M256(__m256);

impl Lanes for M256 {
    #[inline(always)]
    fn zero() -> Self {
        // SAFETY: AVX2, see the type's docs.
        M256(unsafe { _mm256_setzero_ps() })
    }
    #[inline(always)]
    fn load(v: &[f32]) -> Self {
        let v = &v[..8];
        // SAFETY: AVX2; `v` is 8 f32s.
        M256(unsafe { _mm256_loadu_ps(v.as_ptr()) })
    }
    #[inline(always)]
    fn store(self, out: &mut [f32; 8]) {
        // SAFETY: AVX2; `out` is 8 f32s.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), self.0) }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        // SAFETY: AVX2.
        M256(unsafe { _mm256_add_ps(self.0, b.0) })
    }
    #[inline(always)]
    fn max(self, b: Self) -> Self {
        // f32::max(a, b): b unless a ≥ b or b is NaN, and b when a is NaN.
        // SAFETY: AVX2.
        M256(unsafe {
            _mm256_blendv_ps(
                _mm256_max_ps(b.0, self.0),
                b.0,
                _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, self.0),
            )
        })
    }
}
