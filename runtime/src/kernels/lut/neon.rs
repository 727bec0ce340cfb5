//! aarch64 NEON 256-entry int8 table lookup (`lut_s8`, int8 tanh and abs), equal to the
//! reference byte for byte.
//!
//! `TBL` with four registers looks up 64 entries and gives 0 for an index past them, so
//! the table is four quarters of 64 and each quarter is looked up for 16 codes at once with
//! the index `u − 64k` (`u = q + 128`, wrapping): in range only where `u` lies in quarter
//! `k`. ORing the four lookups leaves each code's entry: eleven instructions per 16 codes.
//! The last `len mod 16` codes run the reference.

use core::arch::aarch64::*;

use super::reference;

/// `y = table[q + 128]`, in place.
pub(crate) fn lut_s8(table: &[i8], xy: &mut [i8]) {
    debug_assert_eq!(table.len(), 256);
    // SAFETY: NEON is baseline on aarch64; every load reads 64 bytes of the 256-byte
    // table, and each chunk is 16 bytes read then written in place.
    unsafe {
        let quarter = |k: usize| vld1q_u8_x4(table[64 * k..][..64].as_ptr().cast());
        let quarters = [quarter(0), quarter(1), quarter(2), quarter(3)];
        let (flip, step) = (vdupq_n_u8(0x80), vdupq_n_u8(64));
        let mut chunks = xy.chunks_exact_mut(16);
        for chunk in &mut chunks {
            let mut u = veorq_u8(vld1q_u8(chunk.as_ptr().cast()), flip);
            let mut y = vdupq_n_u8(0);
            for q in quarters {
                y = vorrq_u8(y, vqtbl4q_u8(q, u));
                u = vsubq_u8(u, step);
            }
            vst1q_u8(chunk.as_mut_ptr().cast(), y);
        }
        reference::lut_s8(table, chunks.into_remainder());
    }
}
