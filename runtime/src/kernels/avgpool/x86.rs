//! x86-64 AVX2 average pooling. `avgpool_s8` and `avgpool_f32` have vector paths for the
//! common `2 × 2`, stride-2 window, and for any other window and stride (the window sums
//! by `kernels/pool_any.rs`, in f32: exact for int8 codes, `|sum| ≤ 128·K² < 2²⁴`);
//! layers too wide for its stack copy run the reference.

use core::arch::x86_64::*;

use super::reference;
use crate::kernels::maxpool::x86::{pool_2x2_f32, pool_any_avx2};
use crate::kernels::pool_any::mean_code;
use crate::kernels::pool_any::{finished, fits_any, phase, Fold};
use crate::kernels::x86::load_partial_i8;
use crate::kernels::Dims;

/// int8: equal to [`reference::avgpool_s8`] bit for bit.
pub(crate) fn avgpool_s8(
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
        unsafe { avgpool_2x2_s8(x, xd, yd, y) }
    } else if fits_any(xd, k, stride) {
        let n = k * k;
        let mean = move |sum: f32| mean_code(sum, n);
        let (load, store) = (phase(x, xd, stride, f32::from), finished(y, yd, mean));
        // SAFETY: as above.
        unsafe { pool_any_avx2(xd, k, stride, yd, Fold::Mean, load, store) }
    } else {
        reference::avgpool_s8(x, xd, k, stride, yd, y, scratch)
    }
}

/// The mean of each `2 × 2` window, rounded half away from zero like the reference:
/// `sign(s)·((|s| + 2) >> 2)` for the window sum `s` (`(s ± 2) / 4` truncating). Eight
/// outputs (16 input columns of two rows) per step.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn avgpool_2x2_s8(x: &[i8], xd: Dims, yd: Dims, y: &mut [i8]) {
    let ones = _mm256_set1_epi16(1);
    let two = _mm256_set1_epi32(2);
    for c in 0..xd.c {
        for i in 0..yd.h {
            let top = (c * xd.h + 2 * i) * xd.w;
            let (a, b) = (&x[top..], &x[top + xd.w..]);
            let row = (c * yd.h + i) * yd.w;
            for j0 in (0..yd.w).step_by(8) {
                // Lanes past the row read the next row (or nothing): their outputs are
                // not stored.
                let va = _mm256_cvtepi8_epi16(load_partial_i8(&a[2 * j0..], 0));
                let vb = _mm256_cvtepi8_epi16(load_partial_i8(&b[2 * j0..], 0));
                // Column pairs of the two rows' sums: the window sums, as i32.
                let s = _mm256_madd_epi16(_mm256_add_epi16(va, vb), ones);
                let q = _mm256_srli_epi32::<2>(_mm256_add_epi32(_mm256_abs_epi32(s), two));
                let mean = _mm256_sign_epi32(q, s);
                let m16 = _mm256_packs_epi32(mean, mean);
                let m8 = _mm256_packs_epi16(m16, m16);
                // Bytes 0..4 of each 128-bit half hold outputs j0..j0+4 and j0+4..j0+8.
                let lo = _mm256_extract_epi32::<0>(m8) as u32 as u64;
                let hi = _mm256_extract_epi32::<4>(m8) as u32 as u64;
                let bytes: [i8; 8] = bytemuck::cast(lo | hi << 32);
                // Lanes past the row land in later rows (written afterwards), so a full
                // store is fine wherever 8 bytes of `y` remain.
                let out = &mut y[row + j0..];
                let n = if out.len() >= 8 { 8 } else { 8.min(yd.w - j0) };
                out[..n].copy_from_slice(&bytes[..n]);
            }
        }
    }
}

/// f32: equal to [`reference::avgpool_f32`] bit for bit (the same additions in the same
/// order, then the same division; see `maxpool::x86::pool_2x2_f32`).
pub(crate) fn avgpool_f32(
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
        unsafe { pool_2x2_f32(x, xd, yd, y, Fold::Mean) }
    } else if fits_any(xd, k, stride) {
        let n = (k * k) as f32;
        let (load, store) = (phase(x, xd, stride, |v| v), finished(y, yd, move |s| s / n));
        // SAFETY: as above.
        unsafe { pool_any_avx2(xd, k, stride, yd, Fold::Mean, load, store) }
    } else {
        reference::avgpool_f32(x, xd, k, stride, yd, y, scratch)
    }
}
