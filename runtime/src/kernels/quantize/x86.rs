//! x86-64 AVX2 input quantization: `pixels_s8` and `quantize_s8` eight elements at a time,
//! with exactly the reference's f32 operations (`divps` rounds like `/`); the rest is the
//! reference's.

use core::arch::x86_64::*;

use kestrel_format::QParams;

use super::reference;

pub(crate) use reference::{copy_f32, dequantize_s8, pixels_f32};

/// Pixels `0..=255` to normalized f32, then to int8 codes: equal to
/// [`reference::pixels_s8`] bit for bit.
pub(crate) fn pixels_s8(p: &[u8], mean: f32, std: f32, q: QParams, y: &mut [i8]) {
    debug_assert_eq!(p.len(), y.len());
    let n = p.len() / 8 * 8;
    // SAFETY: this file runs only through `Kernels::VARIANT`, which a plan uses only where the CPU has AVX2 and F16C (`KernelSet::runs_here`).
    unsafe { pixels_s8_avx2(&p[..n], mean, std, q, &mut y[..n]) };
    reference::pixels_s8(&p[n..], mean, std, q, &mut y[n..]);
}

/// Normalized f32 to int8 codes: equal to [`reference::quantize_s8`] bit for bit.
pub(crate) fn quantize_s8(x: &[f32], q: QParams, y: &mut [i8]) {
    debug_assert_eq!(x.len(), y.len());
    let n = x.len() / 8 * 8;
    // SAFETY: as above.
    unsafe { quantize_s8_avx2(&x[..n], q, &mut y[..n]) };
    reference::quantize_s8(&x[n..], q, &mut y[n..]);
}

/// # Safety
/// AVX2; `p.len() == y.len()`, a multiple of 8.
#[target_feature(enable = "avx2")]
unsafe fn pixels_s8_avx2(p: &[u8], mean: f32, std: f32, q: QParams, y: &mut [i8]) {
    let (k255, mean, std) = (
        _mm256_set1_ps(255.0),
        _mm256_set1_ps(mean),
        _mm256_set1_ps(std),
    );
    for (p, y) in p.chunks_exact(8).zip(y.chunks_exact_mut(8)) {
        // SAFETY: `p` is 8 bytes.
        let px = unsafe { _mm_loadl_epi64(p.as_ptr().cast()) };
        let px = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(px));
        // (p / 255 − mean) / std, the reference's expression.
        let x = _mm256_div_ps(_mm256_sub_ps(_mm256_div_ps(px, k255), mean), std);
        store8(y, quantize8(x, q));
    }
}

/// # Safety
/// AVX2; `x.len() == y.len()`, a multiple of 8.
#[target_feature(enable = "avx2")]
unsafe fn quantize_s8_avx2(x: &[f32], q: QParams, y: &mut [i8]) {
    for (x, y) in x.chunks_exact(8).zip(y.chunks_exact_mut(8)) {
        // SAFETY: `x` is 8 f32s (32 bytes).
        let x = unsafe { _mm256_loadu_ps(x.as_ptr()) };
        store8(y, quantize8(x, q));
    }
}

/// [`kestrel_format::quant::quantize_f32`] of eight values, as i32 codes in
/// `[-128, 127]` (narrowed by the caller): `v = x / scale`, `t = trunc(v)`, `r = t ± 1`
/// when `v − t` reaches `±0.5`, `clamp(r + zero_point)`.
///
/// The reference's `v as i32` saturates and maps NaN to 0; here NaN becomes 0 first and
/// `v` is clamped to `±2^30`, where `cvttps` is exact and every code is saturated anyway.
#[target_feature(enable = "avx2")]
#[inline]
fn quantize8(x: __m256, q: QParams) -> __m256i {
    let v = _mm256_div_ps(x, _mm256_set1_ps(q.scale));
    let v = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(v, v), v);
    let lim = _mm256_set1_ps((1u32 << 30) as f32);
    let v = _mm256_min_ps(
        _mm256_max_ps(v, _mm256_sub_ps(_mm256_setzero_ps(), lim)),
        lim,
    );
    let t = _mm256_cvttps_epi32(v);
    let frac = _mm256_sub_ps(v, _mm256_cvtepi32_ps(t)); // exact
                                                        // Comparison masks are −1 where true.
    let up = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(frac, _mm256_set1_ps(0.5)));
    let down = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(frac, _mm256_set1_ps(-0.5)));
    let r = _mm256_add_epi32(_mm256_sub_epi32(t, up), down);
    // |r| ≤ 2^30 + 1: adding the zero point cannot overflow.
    _mm256_add_epi32(r, _mm256_set1_epi32(q.zero_point))
}

/// Stores eight i32 codes as saturated i8.
#[target_feature(enable = "avx2")]
#[inline]
fn store8(y: &mut [i8], codes: __m256i) {
    let c16 = _mm_packs_epi32(
        _mm256_castsi256_si128(codes),
        _mm256_extracti128_si256::<1>(codes),
    );
    let c8 = _mm_packs_epi16(c16, c16);
    let bytes: [i8; 8] = bytemuck::cast(_mm_cvtsi128_si64(c8));
    y[..8].copy_from_slice(&bytes);
}
