//! x86-64 AVX2 local contrast normalization: `lcn_f32` and `lcn_s8`, equal to the
//! reference bit for bit.
//!
//! The two window passes (the weighted mean `m` and deviation `s`, `C·S²` multiply-adds per
//! position each: nearly all the work) run eight output columns `k .. k + 8` per vector,
//! each lane summing `window[p,q]·x` in the reference's `(i, p, q)` order with a separate
//! multiply and add (no FMA). The rest is shared with `neon.rs` (`padded.rs`): they read
//! zero-padded copies on the stack, the input dequantized to f32 `[C, H + 2r, W + 2r + 8]`
//! and the mean map `[H + 2r, W + 2r + 8]`, instead of skipping the padding: a padded tap
//! adds `w·0 = ±0`, which leaves every partial sum unchanged, since a sum that starts at +0
//! and adds products is never −0 (`a + (−a)` and `+0 + (−0)` are +0), provided `w` is
//! finite; layers with non-finite window weights, or too large for the stack copies, run
//! the reference. Between the passes the input copy becomes the squared deviations
//! `v² = (x − m)²`, rounded as the reference's `v` and `v·v` (`(0 − 0)² = +0` in the
//! padding, as the reference skips it), so the deviation pass sums them as the mean pass
//! sums `x`. `√` and `/` are IEEE-exact in both. The sum of `s` over the map is the
//! reference's sequential sum; the last pass (`v / max(c, s, eps)`, requantized for int8
//! by the AVX2 `quantize_s8`) runs as slice loops the compiler vectorizes, the same
//! operations per element.
//!
//! int8 `jarrett` (LCN 9×9 on 8×28×28 and 16×10×10), `kestrel eval --layer-times` medians
//! per image, AMD EPYC (Zen 4), plain release build, layer 3 / layer 8 / whole network:
//! the reference LCN 604 / 140 µs (`KESTREL_KERNELS=reference`); these kernels with the
//! scalar last pass 39.6 / 14.3 µs, network 66.5 µs; with the vectorized last pass
//! 21.8 / 9.4 µs, network 43.7 µs. f32 `jarrett`: 18.6 / 8.3 µs per LCN layer. Computing the squared deviations once cut one call's
//! executed instructions by 18 % (int8) and 25 % (f32) on 8×28×28, 16 % and 20 % on
//! 16×10×10 (counted under `qemu-x86_64 -cpu max` as in `neon.rs`).

use core::arch::x86_64::*;

use kestrel_format::QParams;

use super::padded::{self, pass, Padded, LANES};
use super::reference::Lcn;
use crate::kernels::Dims;

/// f32: equal to [`super::reference::lcn_f32`] bit for bit.
pub(crate) fn lcn_f32(x: &[f32], xd: Dims, lcn: Lcn<'_>, scratch: &mut [f32], y: &mut [f32]) {
    // SAFETY: this file runs only through the AVX2 kernel tables, which a plan uses only
    // where the CPU has AVX2 and F16C (`KernelSet::runs_here`).
    unsafe { lcn_f32_avx2(x, xd, lcn, scratch, y) }
}

/// int8: equal to [`super::reference::lcn_s8`] bit for bit.
pub(crate) fn lcn_s8(
    x: &[i8],
    qi: QParams,
    xd: Dims,
    lcn: Lcn<'_>,
    scratch: &mut [f32],
    qo: QParams,
    y: &mut [i8],
) {
    // SAFETY: as in `lcn_f32`.
    unsafe { lcn_s8_avx2(x, qi, xd, lcn, scratch, qo, y) }
}

/// [`lcn_f32`], all of it (copies, passes, tail) compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn lcn_f32_avx2(x: &[f32], xd: Dims, lcn: Lcn<'_>, scratch: &mut [f32], y: &mut [f32]) {
    // SAFETY: AVX2 by this function's contract.
    padded::lcn_f32(x, xd, lcn, scratch, y, |l, m, s| unsafe { passes(l, m, s) })
}

/// [`lcn_s8`], all of it compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn lcn_s8_avx2(
    x: &[i8],
    qi: QParams,
    xd: Dims,
    lcn: Lcn<'_>,
    scratch: &mut [f32],
    qo: QParams,
    y: &mut [i8],
) {
    // SAFETY: AVX2 by this function's contract.
    padded::lcn_s8(x, qi, xd, lcn, scratch, qo, y, |l, m, s| unsafe {
        passes(l, m, s)
    })
}

/// Lanes `k0 .. k0 + 8` of `N` output rows at once: `Σ_{i,p,q} window[p,q]·x[i·plane +
/// at[t] + p·wp + q ..]` in that order, `at[t]` being row `t`'s first window tap in padded
/// coordinates. Inlined into [`passes`].
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn window_sum<const N: usize>(
    x: &[f32],
    (c, plane, wp): (usize, usize, usize),
    window: &[f32],
    size: usize,
    at: [usize; N],
) -> [__m256; N] {
    assert!(window.len() == size * size);
    let end = padded::loads_end(c, plane, size, wp);
    assert!(at.iter().all(|&a| a + end <= x.len()));
    // SAFETY: AVX2 by this function's contract; `p·size + q < size²`, the window's length;
    // every load reads 8 f32s inside `x` (the bound above).
    unsafe {
        let mut acc = [_mm256_setzero_ps(); N];
        for i in 0..c {
            for p in 0..size {
                for q in 0..size {
                    let wv = _mm256_set1_ps(*window.get_unchecked(p * size + q));
                    for t in 0..N {
                        let v = _mm256_loadu_ps(x.as_ptr().add(i * plane + at[t] + p * wp + q));
                        acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(wv, v));
                    }
                }
            }
        }
        acc
    }
}

/// The window passes: `m` (and `layer.m`), then `s` from the squared deviations.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn passes(layer: Padded<'_>, m: &mut [f32], s: &mut [f32]) {
    debug_assert!(layer.sizes_hold() && LANES == 8);
    let Padded {
        xd,
        lcn,
        hp,
        wp,
        x: xpad,
        m: mpad,
    } = layer;
    let (c, window, size, r) = (xd.c, lcn.window, lcn.size, lcn.size / 2);
    let (h, w, dims) = (xd.h, xd.w, (xd.c, hp * wp, wp));
    let channels = _mm256_set1_ps(c as f32);
    let store = |dst: &mut [f32], v: __m256| {
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` is 8 f32s.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        let n = dst.len().min(8);
        dst[..n].copy_from_slice(&lanes[..n]);
    };
    pass(
        (h, w, wp),
        // SAFETY (both): AVX2 by this function's contract.
        |at| unsafe { window_sum::<4>(xpad, dims, window, size, at) },
        |at| unsafe { window_sum::<1>(xpad, dims, window, size, [at])[0] },
        |j, k0, n, sum| {
            let mv = _mm256_div_ps(sum, channels);
            store(&mut m[j * w + k0..][..n], mv);
            store(&mut mpad[(j + r) * wp + r + k0..][..n], mv);
        },
    );
    padded::square_deviations(xpad, mpad);
    pass(
        (h, w, wp),
        // SAFETY (both): as above.
        |at| unsafe { window_sum::<4>(xpad, dims, window, size, at) },
        |at| unsafe { window_sum::<1>(xpad, dims, window, size, [at])[0] },
        |j, k0, n, sum| {
            store(
                &mut s[j * w + k0..][..n],
                _mm256_sqrt_ps(_mm256_div_ps(sum, channels)),
            );
        },
    );
}
