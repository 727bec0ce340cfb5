//! x86-64 AVX2 fully connected layers. `fc_s8` runs eight output rows at a time, 16
//! inputs per step; `fc_f32` eight outputs per vector; `fc_f16` is `fc_f32` on widened weights.
//!
//! **int8.** Shapes as in `reference.rs`: `x` `[K]`, `weight` `[O, K]`, `y` `[O]`. For each
//! block of 8 rows, 16 inputs at a time are widened to i16 with `zp_in` subtracted (exact:
//! `|x − zp| ≤ 255`) and multiplied with each row's 16 widened weights by
//! `_mm256_madd_epi16`, whose pair sums cannot saturate (`2·255·127 < 2^31`). The i32
//! lanes wrap like the reference's `wrapping_add`, and addition modulo 2^32 does not
//! depend on the order. The eight row sums are reduced horizontally into one vector and
//! requantized together (`crate::kernels::x86::Requant8`).
//!
//! **AVX-512 VNNI** (`fc_s8_vnni`, the `avx2-vnni` kernel set: where the CPU has
//! `avx512vnni`, `avx512vl` and `avx512bw`): 32 inputs per step, as u8
//! `x' = x ^ 0x80 = x + 128`, multiplied with the row's s8 weights four at a time by
//! `vpdpbusd` (u8 × s8, summed in i32 without saturation), and the row sum `Σ w` beside
//! it (`vpdpbusd` with ones). Then `Σ w·(x − zp) = Σ w·x' − (zp + 128)·Σ w`, equal modulo
//! 2^32, so the wrapped i32 lanes are the reference's. With `zp_in = −128` (inputs after
//! a ReLU) the correction is 0 and `Σ w` is skipped. Zen 4, LeNet-5 (`lenet5`; minimum per layer,
//! AVX2 → VNNI): 400→120, 1.15 → 0.76 µs; 120→84, 0.52 → 0.32 µs; 84→10, 0.15 → 0.09 µs
//! (0.84 and 0.38 µs when `Σ w` is always computed).

use core::arch::x86_64::*;

use super::reference;
use crate::kernels::x86::{array, transpose8x8, Requant8};
use crate::kernels::{widened, DenseF, DenseS8};
use half::f16;

/// int8 (AVX2 set): see the module docs; equal to [`reference::fc_s8`] bit for bit.
pub(crate) fn fc_s8(x: &[i8], p: DenseS8<'_>, y: &mut [i8], _scratch: &mut [u8]) {
    debug_assert_eq!(p.weight.len(), y.len() * x.len());
    // SAFETY: this file runs only through the AVX2 kernel tables, which a plan uses only
    // where the CPU has AVX2 and F16C (`KernelSet::runs_here`).
    unsafe { fc_s8_avx2(x, p, y) }
}

/// int8 (AVX2 + VNNI set): see the module docs; equal to [`reference::fc_s8`] bit for bit.
pub(crate) fn fc_s8_vnni(x: &[i8], p: DenseS8<'_>, y: &mut [i8], _scratch: &mut [u8]) {
    debug_assert_eq!(p.weight.len(), y.len() * x.len());
    // SAFETY: only the AVX2 + VNNI kernel table holds this function, and a plan uses it
    // only where the CPU has AVX2, F16C, AVX-512 VNNI, VL and BW (`KernelSet::runs_here`).
    // Inputs after a ReLU usually have `zp_in = −128`: then `x' = x − zp_in` exactly.
    unsafe {
        if p.zp_in == -128 {
            fc_s8_quads::<false>(x, p, y)
        } else {
            fc_s8_quads::<true>(x, p, y)
        }
    }
}

/// `SUMS`: whether `zp_in + 128 ≠ 0`, so that `Σ w` is needed.
///
/// # Safety
/// The CPU must support AVX2, AVX-512 VNNI, VL and BW.
#[target_feature(enable = "avx2,avx512vnni,avx512vl,avx512bw")]
unsafe fn fc_s8_quads<const SUMS: bool>(x: &[i8], p: DenseS8<'_>, y: &mut [i8]) {
    let (k, o_n) = (x.len(), y.len());
    if o_n == 0 {
        return;
    }
    let flip = _mm256_set1_epi8(i8::MIN);
    let ones = _mm256_set1_epi8(1);
    let full = k / 32 * 32;
    // The last `k % 32` inputs and weights: masked loads read only those bytes (masked
    // lanes are neither read nor faulted on) and zero the rest, so a zero weight meets
    // whatever input lane stands past the end.
    let tail = (1u32 << (k - full)).wrapping_sub(1); // (k − full < 32)
                                                     // SAFETY: the mask selects bytes `full .. k` of `x`.
    let x_tail = unsafe { _mm256_maskz_loadu_epi8(tail, x.as_ptr().add(full)) };
    let x_tail = _mm256_xor_si256(x_tail, flip);
    // (zp + 128)·Σ w is subtracted from Σ w·x'.
    let zp128 = _mm256_set1_epi32(p.zp_in.wrapping_add(128));
    for o0 in (0..o_n).step_by(8) {
        // Rows past the end repeat the last row; their results are dropped.
        let rows: [&[i8]; 8] = array(|r| {
            let o = (o0 + r).min(o_n - 1);
            &p.weight[o * k..][..k]
        });
        // acc[r]: Σ w·x' of row r in 8 partial lanes; wsum[r]: Σ w.
        let mut acc = [_mm256_setzero_si256(); 8];
        let mut wsum = [_mm256_setzero_si256(); 8];
        for kk in (0..full).step_by(32) {
            // SAFETY: `kk + 32 ≤ full ≤ k`, and `x` and each row have `k` bytes.
            unsafe {
                let xv = _mm256_xor_si256(_mm256_loadu_si256(x.as_ptr().add(kk).cast()), flip);
                for r in 0..8 {
                    let wv = _mm256_loadu_si256(rows[r].as_ptr().add(kk).cast());
                    acc[r] = _mm256_dpbusd_epi32(acc[r], xv, wv);
                    if SUMS {
                        wsum[r] = _mm256_dpbusd_epi32(wsum[r], ones, wv);
                    }
                }
            }
        }
        if full < k {
            for r in 0..8 {
                // SAFETY: the mask selects bytes `full .. k` of the row.
                let wv = unsafe { _mm256_maskz_loadu_epi8(tail, rows[r].as_ptr().add(full)) };
                acc[r] = _mm256_dpbusd_epi32(acc[r], x_tail, wv);
                if SUMS {
                    wsum[r] = _mm256_dpbusd_epi32(wsum[r], ones, wv);
                }
            }
        }
        let mut sums = hsum8(&acc);
        if SUMS {
            sums = _mm256_sub_epi32(sums, _mm256_mullo_epi32(hsum8(&wsum), zp128));
        }
        store8(&p, o0, sums, y);
    }
}

/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn fc_s8_avx2(x: &[i8], p: DenseS8<'_>, y: &mut [i8]) {
    use crate::kernels::x86::load_partial_i8;
    let (k, o_n) = (x.len(), y.len());
    if o_n == 0 {
        return;
    }
    let zp = _mm256_set1_epi16(p.zp_in as i16);
    let full = k / 16 * 16;
    // The last `k % 16` inputs, and a mask of their lanes: past it, the weights are
    // zeroed, so whatever stands in for the missing inputs contributes nothing.
    let x_tail = _mm256_sub_epi16(_mm256_cvtepi8_epi16(load_partial_i8(&x[full..], 0)), zp);
    let tail_mask = _mm_cmpgt_epi8(
        _mm_set1_epi8((k - full) as i8),
        _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
    );
    for o0 in (0..o_n).step_by(8) {
        // Rows past the end repeat the last row; their results are dropped.
        // Each row from its start to the end of the weights (a tail load may read on
        // into the next row: masked).
        let rows: [&[i8]; 8] = array(|r| {
            let o = (o0 + r).min(o_n - 1);
            &p.weight[o * k..]
        });
        let mut acc = [_mm256_setzero_si256(); 8];
        for kk in (0..full).step_by(16) {
            // SAFETY: `kk + 16 ≤ full ≤ k`, and `x` and each row slice have at least `k`
            // bytes.
            unsafe {
                let xv = _mm_loadu_si128(x.as_ptr().add(kk).cast());
                let xv = _mm256_sub_epi16(_mm256_cvtepi8_epi16(xv), zp);
                for r in 0..8 {
                    let wv = _mm_loadu_si128(rows[r].as_ptr().add(kk).cast());
                    let wv = _mm256_cvtepi8_epi16(wv);
                    acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(xv, wv));
                }
            }
        }
        if full < k {
            for r in 0..8 {
                let wv = _mm_and_si128(load_partial_i8(&rows[r][full..], 0), tail_mask);
                let wv = _mm256_cvtepi8_epi16(wv);
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(x_tail, wv));
            }
        }
        store8(&p, o0, hsum8(&acc), y);
    }
}

/// Requantizes the accumulators `sums` (bias not yet added) of rows `o0 .. o0 + 8` and
/// stores those below `y.len()`.
#[target_feature(enable = "avx2")]
#[inline]
fn store8(p: &DenseS8<'_>, o0: usize, sums: __m256i, y: &mut [i8]) {
    let n = 8.min(y.len() - o0);
    let rq = Requant8::new(p.bias, p.multiplier, p.shift, o0, p.zp_out);
    match rq.apply(sums) {
        Some(bytes) => {
            for (l, y) in y[o0..o0 + n].iter_mut().enumerate() {
                *y = (bytes >> (8 * l)) as u8 as i8;
            }
        }
        None => {
            let mut s = [0i32; 8];
            // SAFETY: `s` is 8 i32s (32 bytes).
            unsafe { _mm256_storeu_si256(s.as_mut_ptr().cast(), sums) };
            for (l, y) in y[o0..o0 + n].iter_mut().enumerate() {
                *y = p.output(o0 + l, s[l]);
            }
        }
    }
}

/// Lane `r` of the result is the (wrapping) sum of the eight lanes of `acc[r]`.
#[target_feature(enable = "avx2")]
#[inline]
fn hsum8(acc: &[__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi32(acc[0], acc[1]);
    let h23 = _mm256_hadd_epi32(acc[2], acc[3]);
    let h45 = _mm256_hadd_epi32(acc[4], acc[5]);
    let h67 = _mm256_hadd_epi32(acc[6], acc[7]);
    // [r0 r1 r2 r3 | r0 r1 r2 r3] partial sums of the low and high 128-bit halves.
    let h0123 = _mm256_hadd_epi32(h01, h23);
    let h4567 = _mm256_hadd_epi32(h45, h67);
    let lo = _mm256_permute2x128_si256::<0x20>(h0123, h4567);
    let hi = _mm256_permute2x128_si256::<0x31>(h0123, h4567);
    _mm256_add_epi32(lo, hi)
}

/// f16 weights: [`fc_f32`] on them widened ([`widened`]), equal to
/// [`reference::fc_f16`] bit for bit.
pub(crate) fn fc_f16(x: &[f32], p: DenseF<'_, f16>, y: &mut [f32], scratch: &mut [u8]) {
    if !widened(p, crate::kernels::x86::widen_f16, |o, p| {
        fc_f32(x, p, &mut y[o], scratch)
    }) {
        reference::fc_f16(x, p, y, scratch)
    }
}

/// f32: equal to [`reference::fc_f32`] bit for bit. Lane `r` of a vector is output
/// `o0 + r`, and it accumulates `w·x` in `k` order with a separate multiply and add (no
/// FMA), exactly the reference's sum; eight rows' weights are transposed 8 × 8 so that
/// each step reads one column.
pub(crate) fn fc_f32(x: &[f32], p: crate::kernels::DenseF<'_, f32>, y: &mut [f32], _: &mut [u8]) {
    debug_assert_eq!(p.weight.len(), y.len() * x.len());
    // SAFETY: this file runs only through `Kernels::VARIANT`, which a plan uses only where the CPU has AVX2 and F16C (`KernelSet::runs_here`).
    unsafe { fc_f32_avx2(x, p, y) }
}

/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn fc_f32_avx2(x: &[f32], p: crate::kernels::DenseF<'_, f32>, y: &mut [f32]) {
    let (k, o_n) = (x.len(), y.len());
    let full = k / 8 * 8;
    for o0 in (0..o_n).step_by(8) {
        // Rows past the end repeat the last row; their results are dropped.
        let rows: [&[f32]; 8] = array(|r| {
            let o = (o0 + r).min(o_n - 1);
            &p.weight[o * k..][..k]
        });
        let mut acc = _mm256_setzero_ps();
        for kk in (0..full).step_by(8) {
            // SAFETY: `kk + 8 ≤ full ≤ k`: 8 readable f32s of each row.
            let w: [__m256; 8] = array(|r| unsafe { _mm256_loadu_ps(rows[r].as_ptr().add(kk)) });
            for (t, col) in transpose8x8(w).into_iter().enumerate() {
                acc = _mm256_add_ps(acc, _mm256_mul_ps(col, _mm256_set1_ps(x[kk + t])));
            }
        }
        for (kk, &xk) in x.iter().enumerate().skip(full) {
            let col: [f32; 8] = array(|r| rows[r][kk]);
            // SAFETY: `col` is 8 f32s.
            let col = unsafe { _mm256_loadu_ps(col.as_ptr()) };
            acc = _mm256_add_ps(acc, _mm256_mul_ps(col, _mm256_set1_ps(xk)));
        }
        let mut sums = [0f32; 8];
        // SAFETY: `sums` is 8 f32s.
        unsafe { _mm256_storeu_ps(sums.as_mut_ptr(), acc) };
        let n = 8.min(o_n - o0);
        for ((y, &b), &s) in y[o0..o0 + n].iter_mut().zip(&p.bias[o0..o0 + n]).zip(&sums) {
            *y = b + s;
        }
    }
}
