//! x86-64 AVX2 local contrast normalization: `lcn_f32` and `lcn_s8`, equal to the
//! reference bit for bit.
//!
//! The two window passes (the weighted mean `m` and deviation `s`, `C·S²` multiply-adds per
//! position each: nearly all the work) run eight output columns `k .. k + 8` per vector,
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

use kestrel_format::quant::{dequantize, quantize_f32};
use kestrel_format::QParams;

use super::reference::{self, Lcn};
use crate::kernels::Dims;

/// f32 elements of the stack's zero-padded copies (64 KiB).
const CAP: usize = 16384;

/// The padded row length and height, if both copies fit and the window is usable.
fn layout(xd: Dims, lcn: Lcn<'_>) -> Option<(usize, usize)> {
    let r = lcn.size / 2;
    let (hp, wp) = (xd.h + 2 * r, xd.w + 2 * r + 8);
    let fits = (xd.c + 1)
        .checked_mul(hp)
        .and_then(|v| v.checked_mul(wp))
        .is_some_and(|v| v <= CAP);
    (fits && lcn.size % 2 == 1 && lcn.window.iter().all(|w| w.is_finite())).then_some((hp, wp))
}

/// f32: equal to [`reference::lcn_f32`] bit for bit.
pub(crate) fn lcn_f32(x: &[f32], xd: Dims, lcn: Lcn<'_>, scratch: &mut [f32], y: &mut [f32]) {
    debug_assert_eq!(y.len(), xd.len());
    match layout(xd, lcn) {
        // SAFETY: this file runs only through the AVX2 kernel tables, which a plan uses
        // only where the CPU has AVX2 and F16C (`KernelSet::runs_here`).
        Some(l) => unsafe { lcn_avx2(|n| x[n], xd, lcn, l, scratch, |n, v| y[n] = v) },
        None => reference::lcn_f32(x, xd, lcn, scratch, y),
    }
}

/// int8: equal to [`reference::lcn_s8`] bit for bit.
pub(crate) fn lcn_s8(
    x: &[i8],
    qi: QParams,
    xd: Dims,
    lcn: Lcn<'_>,
    scratch: &mut [f32],
    qo: QParams,
    y: &mut [i8],
) {
    debug_assert_eq!(y.len(), xd.len());
    match layout(xd, lcn) {
        // SAFETY: as in `lcn_f32`.
        Some(l) => unsafe {
            lcn_avx2(
                |n| dequantize(x[n], qi.scale, qi.zero_point),
                xd,
                lcn,
                l,
                scratch,
                |n, v| y[n] = quantize_f32(v, qo.scale, qo.zero_point),
            )
        },
        None => reference::lcn_s8(x, qi, xd, lcn, scratch, qo, y),
    }
}

/// Lanes `k0 .. k0 + 8` of `N` output rows at once (independent sums, so the additions of
/// one do not wait for another's): `Σ_{i,p,q} window[p,q]·f(i, at[t] + p·wp + q)` in that
/// order, `at[t]` being row `t`'s first window tap in padded coordinates. Inlined into
/// [`lcn_avx2`], so that `f` (a closure with its AVX2 feature) inlines too.
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

/// Every output position of a `[h, w]` map, eight columns and (while they last) four rows
/// at a time: `put(j, k0, n, sum)` for row `j`, columns `k0 .. k0 + n` (`n ≤ 8` lanes used)
/// and their window sums of `f` ([`window_sum`]).
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn pass(
    c: usize,
    window: &[f32],
    size: usize,
    (h, w, wp): (usize, usize, usize),
    f: impl Fn(usize, usize) -> __m256,
    mut put: impl FnMut(usize, usize, usize, __m256),
) {
    for k0 in (0..w).step_by(8) {
        let n = (w - k0).min(8);
        let mut j = 0;
        while j < h {
            if h - j >= 4 {
                let at = array4(|t| (j + t) * wp + k0);
                // SAFETY: AVX2 by this function's contract.
                let sums = unsafe { window_sum::<4>(c, window, size, at, wp, &f) };
                for (t, sum) in sums.into_iter().enumerate() {
                    put(j + t, k0, n, sum);
                }
                j += 4;
            } else {
                // SAFETY: as above.
                let [sum] = unsafe { window_sum::<1>(c, window, size, [j * wp + k0], wp, &f) };
                put(j, k0, n, sum);
                j += 1;
            }
        }
    }
}

/// `[f(0), f(1), f(2), f(3)]`.
#[inline(always)]
fn array4(f: impl Fn(usize) -> usize) -> [usize; 4] {
    [f(0), f(1), f(2), f(3)]
}

/// # Safety
/// The CPU must support AVX2; `(hp, wp)` from [`layout`].
#[target_feature(enable = "avx2")]
unsafe fn lcn_avx2(
    x_at: impl Fn(usize) -> f32,
    xd: Dims,
    lcn: Lcn<'_>,
    (hp, wp): (usize, usize),
    scratch: &mut [f32],
    mut out: impl FnMut(usize, f32),
) {
    let (size, r) = (lcn.size, lcn.size / 2);
    let (h, w, hw) = (xd.h, xd.w, xd.h * xd.w);
    debug_assert_eq!(scratch.len(), 2 * hw);
    let mut buf = [0f32; CAP];
    let (xpad, rest) = buf.split_at_mut(xd.c * hp * wp);
    let mpad = &mut rest[..hp * wp];
    for i in 0..xd.c {
        for row in 0..h {
            let dst = &mut xpad[(i * hp + row + r) * wp + r..][..w];
            for (col, d) in dst.iter_mut().enumerate() {
                *d = x_at((i * h + row) * w + col);
            }
        }
    }
    let (m, s) = scratch.split_at_mut(hw);
    let channels = _mm256_set1_ps(xd.c as f32);
    let store = |dst: &mut [f32], v: __m256| {
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` is 8 f32s.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        let n = dst.len().min(8);
        dst[..n].copy_from_slice(&lanes[..n]);
    };
    // Every load below reads 8 floats at column `k0 + q ≤ (W − 1) + 2r` of a padded row of
    // `wp = W + 2r + 8`: inside it.
    let (xp, plane) = (xpad.as_ptr(), hp * wp);
    let x = |i: usize, at: usize| {
        debug_assert!(i * plane + at + 8 <= xpad.len());
        // SAFETY: 8 f32s inside `xpad` (the bound above).
        unsafe { _mm256_loadu_ps(xp.add(i * plane + at)) }
    };
    // SAFETY (both passes): AVX2 by this function's contract.
    unsafe {
        pass(xd.c, lcn.window, size, (h, w, wp), x, |j, k0, n, sum| {
            let mv = _mm256_div_ps(sum, channels);
            store(&mut m[j * w + k0..][..n], mv);
            store(&mut mpad[(j + r) * wp + r + k0..][..n], mv);
        })
    };
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
    // SAFETY: as above.
    unsafe {
        pass(xd.c, lcn.window, size, (h, w, wp), v2, |j, k0, n, sum| {
            store(
                &mut s[j * w + k0..][..n],
                _mm256_sqrt_ps(_mm256_div_ps(sum, channels)),
            );
        })
    };
    // The reference's scalar tail: the mean deviation (summed in order) and the division.
    let mut s_sum = 0.0f32;
    for &sd in s.iter() {
        s_sum += sd;
    }
    let c = s_sum / hw as f32;
    for i in 0..xd.c {
        for jk in 0..hw {
            let n = i * hw + jk;
            let v = x_at(n) - m[jk];
            out(n, v / c.max(s[jk]).max(lcn.eps));
        }
    }
}
