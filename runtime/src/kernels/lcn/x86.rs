//! x86-64 AVX2 local contrast normalization: `lcn_f32` and `lcn_s8`, equal to the
//! reference bit for bit.
//!
//! The two window passes (the weighted mean `m` and deviation `s`, `C·S²` multiply-adds per
//! position each: nearly all the work) run eight output columns `k .. k + 8` per vector
//! (the rest, shared with `neon.rs`, is in `padded.rs`),
//! each lane summing `window[p,q]·f(i, row, col)` in the reference's `(i, p, q)` order with
//! a separate multiply and add (no FMA). They read zero-padded copies on the stack, the
//! input dequantized to f32 `[C, H + 2r, W + 2r + 8]` and the mean map `[H + 2r, W + 2r + 8]`,
//! instead of skipping the padding: a padded tap adds `w·0 = ±0`, which leaves every partial
//! sum unchanged, since a sum that starts at +0 and adds products is never −0 (`a + (−a)`
//! and `+0 + (−0)` are +0), provided `w` is finite; layers with non-finite window weights,
//! or too large for the stack copies, run the reference. The deviation pass reads
//! `v = x − m` as `0 − 0 = +0` in the padding, as the reference skips it. `√` and `/` are
//! IEEE-exact in both. The sum of `s` over the map and the last pass (`v / max(c, s, eps)`,
//! requantized for int8) are the reference's scalar code.
//!
//! int8 `jarrett` (LCN 9×9 on 8×28×28 and 16×10×10), `kestrel eval` median per image, AMD
//! EPYC (Zen 4), plain release build: 763 µs with the reference LCN, 74 µs with these
//! (`benches/host_latency.sh`, docs/BENCHMARKS.md).

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

/// Lanes `k0 .. k0 + 8` of `N` output rows at once: `Σ_{i,p,q} window[p,q]·f(i, at[t] +
/// p·wp + q)` in that order, `at[t]` being row `t`'s first window tap in padded
/// coordinates. Inlined into [`passes`], so that `f` (a closure with its AVX2 feature)
/// inlines too.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn window_sum<const N: usize>(
    c: usize,
    window: &[f32],
    size: usize,
    at: [usize; N],
    wp: usize,
    f: impl Fn(usize, usize) -> __m256,
) -> [__m256; N] {
    debug_assert_eq!(window.len(), size * size);
    // SAFETY: AVX2 by this function's contract; `p·size + q < size²`, the window's length.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); N];
        for i in 0..c {
            for p in 0..size {
                for q in 0..size {
                    let wv = _mm256_set1_ps(*window.get_unchecked(p * size + q));
                    for t in 0..N {
                        let v = f(i, at[t] + p * wp + q);
                        acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(wv, v));
                    }
                }
            }
        }
        acc
    }
}

/// The window passes: `m` (and `layer.m`), then `s`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn passes(layer: Padded<'_>, m: &mut [f32], s: &mut [f32]) {
    assert!(layer.sizes_hold() && LANES == 8);
    let Padded {
        xd,
        lcn,
        hp,
        wp,
        x: xpad,
        m: mpad,
    } = layer;
    let (c, window, size, r) = (xd.c, lcn.window, lcn.size, lcn.size / 2);
    let (h, w) = (xd.h, xd.w);
    let channels = _mm256_set1_ps(c as f32);
    let store = |dst: &mut [f32], v: __m256| {
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` is 8 f32s.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        let n = dst.len().min(8);
        dst[..n].copy_from_slice(&lanes[..n]);
    };
    // Every load below reads 8 floats at column `k0 + q ≤ (W − 1) + 2r` of a padded row of
    // `wp = W + 2r + 8`: inside it (the sizes asserted above).
    let (xp, plane) = (xpad.as_ptr(), hp * wp);
    let x = |i: usize, at: usize| {
        debug_assert!(i * plane + at + 8 <= xpad.len());
        // SAFETY: 8 f32s inside `xpad` (the bound above).
        unsafe { _mm256_loadu_ps(xp.add(i * plane + at)) }
    };
    pass(
        (h, w, wp),
        // SAFETY (both): AVX2 by this function's contract.
        |at| unsafe { window_sum::<4>(c, window, size, at, wp, x) },
        |at| unsafe { window_sum::<1>(c, window, size, [at], wp, x)[0] },
        |j, k0, n, sum| {
            let mv = _mm256_div_ps(sum, channels);
            store(&mut m[j * w + k0..][..n], mv);
            store(&mut mpad[(j + r) * wp + r + k0..][..n], mv);
        },
    );
    let mp = mpad.as_ptr();
    let v2 = |i: usize, at: usize| {
        debug_assert!(i * plane + at + 8 <= xpad.len() && at + 8 <= mpad.len());
        // SAFETY: 8 f32s inside `xpad` and `mpad` (the bound above).
        let (xv, mv) = unsafe {
            (
                _mm256_loadu_ps(xp.add(i * plane + at)),
                _mm256_loadu_ps(mp.add(at)),
            )
        };
        let v = _mm256_sub_ps(xv, mv);
        _mm256_mul_ps(v, v)
    };
    pass(
        (h, w, wp),
        // SAFETY (both): as above.
        |at| unsafe { window_sum::<4>(c, window, size, at, wp, v2) },
        |at| unsafe { window_sum::<1>(c, window, size, [at], wp, v2)[0] },
        |j, k0, n, sum| {
            store(
                &mut s[j * w + k0..][..n],
                _mm256_sqrt_ps(_mm256_div_ps(sum, channels)),
            );
        },
    );
}
