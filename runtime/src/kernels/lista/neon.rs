//! aarch64 NEON LISTA steps: `lista_step_s8` and `lista_step_f32` (the latter also FISTA's
//! step, [`crate::sparse`]); `lista_step_f16` and the first shrinks are the reference's.
//!
//! Shapes as in `reference.rs`: `S` column-major `[N, N]` (`s[j·N + i] = S[i, j]`), so
//! column `j` is `N` contiguous values, one per row. Both steps vectorize across rows `i`,
//! keep up to 64 rows of sums in registers, and walk the non-zero `h[j]` in ascending `j`,
//! adding column `j` times `h[j]` to all those rows at once: the per-row operations and
//! their order are the reference's.
//!
//! **int8.** Sixteen rows a vector: the column's bytes are widened to i16 (`SXTL`) and
//! `SMLAL` (by the scalar `d_j = h_q[j] − zp_h ∈ [−255, 255]`, an i16) adds the products
//! into four i32x4 sums. Products fit an i32 and `SMLAL` wraps modulo 2^32 like the
//! reference's `wrapping_add`; modular addition does not depend on the order, so the sums
//! are the reference's bit for bit. Rows past the last multiple of 16 are summed by the
//! reference's scalar loop; the output stage is the reference's [`ListaS8::output`].
//!
//! **f32.** Four rows a vector; for each non-zero `h[j]`, `sum += S[rows, j] · h[j]` with a
//! separate `FMUL` and `FADD` (no fused multiply-add), exactly the reference's per-row sum.
//! Then `b + sum` and the shrink by the reference's scalar code. Rows past the last multiple
//! of 4 are summed by scalar code.

use core::arch::aarch64::*;

use super::reference::ListaS8;
use crate::kernels::shrink::reference::shrink1_f32;

pub(crate) use super::reference::{lista_first_f32, lista_first_s8, lista_step_f16};

/// One int8 step, equal to [`super::reference::lista_step_s8`] bit for bit (module docs);
/// `acc` (`[N]` i32) is scratch.
pub(crate) fn lista_step_s8(p: &ListaS8<'_>, b: &[i8], h_in: &[i8], acc: &mut [i32], h: &mut [i8]) {
    let n = h.len();
    debug_assert!(p.s.len() == n * n && b.len() == n && h_in.len() == n && acc.len() == n);
    let full = n / 16 * 16;
    let mut r0 = 0;
    while r0 < full {
        // Blocks of 16 rows in this pass: 4, 2 or 1 (each a separate monomorphization).
        let blocks = match (full - r0) / 16 {
            4.. => 4,
            2 | 3 => 2,
            _ => 1,
        };
        match blocks {
            4 => sums_s8::<4>(p, h_in, acc, r0),
            2 => sums_s8::<2>(p, h_in, acc, r0),
            _ => sums_s8::<1>(p, h_in, acc, r0),
        }
        r0 += 16 * blocks;
    }
    // The last `n % 16` rows, scalar, in the same wrapping arithmetic.
    for (i, acc) in acc.iter_mut().enumerate().skip(full) {
        *acc = p.row_acc(i, h_in);
    }
    for (i, (h, &b)) in h.iter_mut().zip(b).enumerate() {
        *h = p.output(i, b, acc[i]);
    }
}

/// `acc[i] = Σ_{d_j ≠ 0} S[i, j]·d_j` (wrapping) for rows `r0 .. r0 + 16·B ≤ N`.
#[inline(always)]
fn sums_s8<const B: usize>(p: &ListaS8<'_>, h_in: &[i8], acc: &mut [i32], r0: usize) {
    let n = acc.len();
    let out = &mut acc[r0..][..16 * B];
    // SAFETY: NEON is baseline on aarch64; every load reads `16·B` bytes of column `j` from
    // row `r0` (`col` is that long), every store 16 i32s of `out` (`16·B` long).
    unsafe {
        let mut v = [[vdupq_n_s32(0); 4]; B];
        for (j, &q) in h_in.iter().enumerate() {
            let d = q as i32 - p.zp_h;
            if d == 0 {
                continue;
            }
            let d = d as i16; // ∈ [−255, 255]
            let col = &p.s[j * n + r0..][..16 * B];
            for (k, v) in v.iter_mut().enumerate() {
                let s8 = vld1q_s8(col.as_ptr().add(16 * k));
                let lo = vmovl_s8(vget_low_s8(s8));
                let hi = vmovl_high_s8(s8);
                v[0] = vmlal_n_s16(v[0], vget_low_s16(lo), d);
                v[1] = vmlal_high_n_s16(v[1], lo, d);
                v[2] = vmlal_n_s16(v[2], vget_low_s16(hi), d);
                v[3] = vmlal_high_n_s16(v[3], hi, d);
            }
        }
        for (k, v) in v.iter().enumerate() {
            for (l, &v) in v.iter().enumerate() {
                vst1q_s32(out.as_mut_ptr().add(16 * k + 4 * l), v);
            }
        }
    }
}

/// One float step, f32 `S`, equal to [`super::reference::lista_step_f32`] bit for bit
/// (module docs). Also FISTA's step.
pub(crate) fn lista_step_f32(s: &[f32], b: &[f32], theta: &[f32], h_in: &[f32], h: &mut [f32]) {
    let n = h.len();
    debug_assert!(s.len() == n * n && b.len() == n && theta.len() == n && h_in.len() == n);
    let full = n / 4 * 4;
    let mut r0 = 0;
    while r0 < full {
        // Vectors of 4 rows in this pass: 16, 8, 4, 2 or 1.
        let vecs = match (full - r0) / 4 {
            16.. => 16,
            8..=15 => 8,
            4..=7 => 4,
            2 | 3 => 2,
            _ => 1,
        };
        match vecs {
            16 => rows_f32::<16>(s, b, theta, h_in, h, r0),
            8 => rows_f32::<8>(s, b, theta, h_in, h, r0),
            4 => rows_f32::<4>(s, b, theta, h_in, h, r0),
            2 => rows_f32::<2>(s, b, theta, h_in, h, r0),
            _ => rows_f32::<1>(s, b, theta, h_in, h, r0),
        }
        r0 += 4 * vecs;
    }
    // The last `n % 4` rows: the reference's scalar sum.
    for (i, h) in h.iter_mut().enumerate().skip(full) {
        *h = super::reference::step_row(s, b, theta, h_in, i);
    }
}

/// Rows `r0 .. r0 + 4·V ≤ N` of the float step.
#[inline(always)]
fn rows_f32<const V: usize>(
    s: &[f32],
    b: &[f32],
    theta: &[f32],
    h_in: &[f32],
    h: &mut [f32],
    r0: usize,
) {
    let n = h.len();
    let mut sums = [0f32; 64];
    // SAFETY: NEON is baseline on aarch64; every load reads 4 f32s of `col` (`4·V` long),
    // every store 4 f32s of `sums` (64 ≥ `4·V`).
    unsafe {
        let mut acc = [vdupq_n_f32(0.0); V];
        for (j, &hj) in h_in.iter().enumerate() {
            if hj != 0.0 {
                let col = &s[j * n + r0..][..4 * V];
                for (k, acc) in acc.iter_mut().enumerate() {
                    let sv = vld1q_f32(col.as_ptr().add(4 * k));
                    *acc = vaddq_f32(*acc, vmulq_n_f32(sv, hj));
                }
            }
        }
        for (k, acc) in acc.iter().enumerate() {
            vst1q_f32(sums.as_mut_ptr().add(4 * k), *acc);
        }
    }
    for (l, &sum) in sums[..4 * V].iter().enumerate() {
        let i = r0 + l;
        h[i] = shrink1_f32(b[i] + sum, theta[i]);
    }
}
