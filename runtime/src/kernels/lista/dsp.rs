//! ARMv7E-M DSP LISTA step (Cortex-M4/M7, Armv8-M with DSP): `lista_step_s8` with `SMLAD`,
//! two 16-bit multiply-accumulates per instruction. The float steps are the reference's
//! (these cores have a scalar FPU only).
//!
//! Shapes as in `reference.rs`: `S` column-major `[N, N]` (`s[j·N + i] = S[i, j]`), so
//! column `j` is `N` contiguous bytes, one per row. The non-zero `d_j = h_q[j] − zp_h` are
//! taken two at a time, `(a, c)`, and both columns are added to the i32 row accumulators
//! in `acc` (scratch), four rows a turn: one word of each column, `SXTB16` splits it into
//! the halfword pairs of rows `(0, 2)` and `(1, 3)`, `PKHBT`/`PKHTB` pair row `r` of
//! column `a` with row `r` of column `c`, and `SMLAD` adds `S[r, a]·d_a + S[r, c]·d_c`
//! (`d` packed as the two halfwords `(d_a, d_c)`; `d ∈ [−255, 255]` fits).
//!
//! **Bit-exact.** Each product and the pair's sum fit an i32 (`2·128·255 < 2^31`), and
//! `SMLAD`'s accumulate wraps modulo 2^32 (it only sets the sticky Q flag), like the
//! reference's `wrapping_add`; addition modulo 2^32 does not depend on the order, so every
//! row's sum is the reference's bit for bit. An odd last column pairs with itself and
//! `d = 0`. Rows past the last multiple of 4 are summed by the reference's scalar loop,
//! and the output stage (also the first shrink's) is
//! [`ListaS8::output_fast`] (`kernels/cortex_m.rs`), bit-exact with the reference's
//! `output` for every input.

use core::arch::asm;

use super::reference::ListaS8;

pub(crate) use super::reference::{lista_first_f32, lista_step_f16, lista_step_f32};

/// The first int8 shrink, equal to [`super::reference::lista_first_s8`] bit for bit: its
/// per-row output stage with the faster requantization and shrink of
/// [`ListaS8::output_fast`].
pub(crate) fn lista_first_s8(p: &ListaS8<'_>, b: &[i8], h: &mut [i8]) {
    debug_assert_eq!(b.len(), h.len());
    for (i, (h, &b)) in h.iter_mut().zip(b).enumerate() {
        *h = p.output_fast(i, b, 0);
    }
}

/// One int8 step, equal to [`super::reference::lista_step_s8`] bit for bit (module docs);
/// `acc` (`[N]` i32) is scratch.
pub(crate) fn lista_step_s8(p: &ListaS8<'_>, b: &[i8], h_in: &[i8], acc: &mut [i32], h: &mut [i8]) {
    let n = h.len();
    debug_assert!(p.s.len() == n * n && b.len() == n && h_in.len() == n && acc.len() == n);
    let groups = n / 4;
    if groups > 0 {
        acc[..groups * 4].fill(0);
        // Adds columns `a` and `c` times `(d_a, d_c)` to rows `0 .. 4·groups`.
        let add = |acc: &mut [i32], (a, da): (usize, i32), (c, dc): (usize, i32)| {
            let (col_a, col_c) = (&p.s[a * n..][..groups * 4], &p.s[c * n..][..groups * 4]);
            let d = (da as i16 as u16 as u32 | ((dc as i16 as u16 as u32) << 16)) as i32;
            // SAFETY: both columns hold `4·groups` bytes and `acc` `4·groups` aligned i32s.
            unsafe { add_pair(col_a.as_ptr(), col_c.as_ptr(), d, acc.as_mut_ptr(), groups) };
        };
        p.column_pairs(h_in, |first, second| add(acc, first, second));
    }
    // The last `n % 4` rows, scalar, in the same wrapping arithmetic.
    for (i, acc) in acc.iter_mut().enumerate().skip(groups * 4) {
        *acc = p.row_acc(i, h_in);
    }
    for (i, (h, &b)) in h.iter_mut().zip(b).enumerate() {
        *h = p.output_fast(i, b, acc[i]);
    }
}

/// `acc[r] += ca[r]·d.lo + cc[r]·d.hi` (wrapping) for rows `r < 4·groups`.
///
/// # Safety
/// `ca` and `cc` are readable for `4·groups` bytes, `acc` is readable and writable for
/// `4·groups` 4-byte aligned i32s, and `groups ≥ 1`.
#[inline(always)]
unsafe fn add_pair(ca: *const i8, cc: *const i8, d: i32, acc: *mut i32, groups: usize) {
    // SAFETY: the caller guarantees the memory; the loop runs `groups` turns, each reading
    // one word of each column (unaligned `LDR` is allowed on these cores) and four i32s of
    // `acc` (`LDRD`/`STRD`, word-aligned), and writes only those four.
    unsafe {
        asm!(
            "2:",
            "ldr {wa}, [{pa}], #4",
            "ldr {wc}, [{pc}], #4",
            "sxtb16 {ta}, {wa}, ror #8", // (a1, a3)
            "sxtb16 {wa}, {wa}",         // (a0, a2)
            "sxtb16 {tc}, {wc}, ror #8", // (c1, c3)
            "sxtb16 {wc}, {wc}",         // (c0, c2)
            "ldrd {x0}, {x1}, [{pacc}]",
            "pkhbt {p}, {wa}, {wc}, lsl #16", // (a0, c0)
            "smlad {x0}, {p}, {d}, {x0}",
            "pkhbt {p}, {ta}, {tc}, lsl #16", // (a1, c1)
            "smlad {x1}, {p}, {d}, {x1}",
            "strd {x0}, {x1}, [{pacc}], #8",
            "ldrd {x0}, {x1}, [{pacc}]",
            "pkhtb {p}, {wc}, {wa}, asr #16", // (a2, c2)
            "smlad {x0}, {p}, {d}, {x0}",
            "pkhtb {p}, {tc}, {ta}, asr #16", // (a3, c3)
            "smlad {x1}, {p}, {d}, {x1}",
            "strd {x0}, {x1}, [{pacc}], #8",
            "subs {n}, {n}, #1",
            "bne 2b",
            pa = inout(reg) ca => _,
            pc = inout(reg) cc => _,
            pacc = inout(reg) acc => _,
            n = inout(reg) groups => _,
            d = in(reg) d,
            wa = out(reg) _,
            wc = out(reg) _,
            ta = out(reg) _,
            tc = out(reg) _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            p = out(reg) _,
            options(nostack),
        );
    }
}
