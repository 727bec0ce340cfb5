//! x86-64 AVX2 256-entry int8 table lookup (`lut_s8`, int8 tanh and abs), equal to the
//! reference byte for byte.
//!
//! `VPSHUFB` looks up 16 entries per 128-bit lane, so the table is cut into 16 rows of 16
//! (each broadcast to both lanes) and every row is looked up for all 32 codes of a vector:
//! with `u = q + 128` and row `k`, the index `sat_u8(u − 16k + 0x70)` keeps its low nibble
//! `u mod 16` where `u` lies in row `k` (`u − 16k ∈ 0..16`, so `0x70..0x80`, sign bit clear)
//! and has its sign bit set everywhere else (`≥ 0x80`, saturated), which makes `VPSHUFB`
//! give 0 there. ORing the 16 rows' lookups leaves each code's entry: four instructions per
//! row, 64 per 32 codes, against a load, an add and a store per code in the scalar loop.
//! The last `len mod 32` codes run the reference.
//! Measured (`kestrel eval --layer-times`, int8 `jarrett`): see `lut/mod.rs`.

use core::arch::x86_64::*;

use super::reference;
use crate::kernels::x86::array;

/// `y = table[q + 128]`, in place.
pub(crate) fn lut_s8(table: &[i8], xy: &mut [i8]) {
    debug_assert_eq!(table.len(), 256);
    // SAFETY: this file runs only through the AVX2 kernel tables, which a plan uses only
    // where the CPU has AVX2 and F16C (`KernelSet::runs_here`).
    unsafe { lut_s8_avx2(table, xy) }
}

/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn lut_s8_avx2(table: &[i8], xy: &mut [i8]) {
    let rows: [__m256i; 16] = array(|k| {
        let row = &table[16 * k..][..16];
        // SAFETY: `row` is 16 bytes.
        _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(row.as_ptr().cast()) })
    });
    let (flip, bias, sixteen) = (
        _mm256_set1_epi8(i8::MIN),
        _mm256_set1_epi8(0x70),
        _mm256_set1_epi8(16),
    );
    let mut chunks = xy.chunks_exact_mut(32);
    for chunk in &mut chunks {
        // SAFETY: `chunk` is 32 bytes, read then written in place.
        unsafe {
            let mut u = _mm256_xor_si256(_mm256_loadu_si256(chunk.as_ptr().cast()), flip);
            let mut y = _mm256_setzero_si256();
            for row in rows {
                let index = _mm256_adds_epu8(u, bias);
                y = _mm256_or_si256(y, _mm256_shuffle_epi8(row, index));
                u = _mm256_sub_epi8(u, sixteen);
            }
            _mm256_storeu_si256(chunk.as_mut_ptr().cast(), y);
        }
    }
    reference::lut_s8(table, chunks.into_remainder());
}
