//! x86-64 AVX2 max pooling. `maxpool_s8` has a vector path for the common `2 × 2`,
//! stride-2 window (LeNet's); other windows and the f32 kernel are the reference's.

use core::arch::x86_64::*;

use super::reference;
use crate::kernels::x86::{load_partial_i8, store_partial_i8};
use crate::kernels::Dims;

// No scratch: the reference's `scratch_len` (0).
pub(crate) use reference::{maxpool_f32, scratch_len};

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
        // SAFETY: this file is compiled only where the target has AVX2 (kestrel_isa).
        unsafe { maxpool_2x2_s8(x, xd, yd, y) }
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
    // 32 bytes from `src` (fewer at the end of `x`; the missing lanes feed no output).
    let load32 = |src: &[i8]| {
        let lo = load_partial_i8(src, 0);
        let hi = load_partial_i8(src.get(16..).unwrap_or(&[]), 0);
        _mm256_set_m128i(hi, lo)
    };
    for c in 0..xd.c {
        for i in 0..yd.h {
            let top = (c * xd.h + 2 * i) * xd.w;
            let (a, b) = (&x[top..], &x[top + xd.w..]);
            let row = (c * yd.h + i) * yd.w;
            for j0 in (0..yd.w).step_by(16) {
                // Lanes past the row read the next row (or nothing): their outputs are
                // not stored.
                let v = _mm256_max_epi8(load32(&a[2 * j0..]), load32(&b[2 * j0..]));
                let even = _mm256_srai_epi16::<8>(_mm256_slli_epi16::<8>(v));
                let odd = _mm256_srai_epi16::<8>(v);
                let m = _mm256_max_epi16(even, odd); // outputs j0..j0+8 | j0+8..j0+16
                let packed = _mm256_packs_epi16(m, m); // exact: every lane is an i8
                let packed = _mm256_permute4x64_epi64::<0b1000>(packed);
                let packed = _mm256_castsi256_si128(packed);
                // Lanes past the row land in later rows (written afterwards), so a full
                // store is fine wherever 16 bytes of `y` remain.
                let out = &mut y[row + j0..];
                if out.len() >= 16 {
                    store_partial_i8(&mut out[..16], packed);
                } else {
                    let n = 16.min(yd.w - j0);
                    store_partial_i8(&mut out[..n], packed);
                }
            }
        }
    }
}
