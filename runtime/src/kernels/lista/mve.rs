//! Armv8.1-M Helium (MVE) LISTA steps (Cortex-M55/M85): `lista_step_s8` and
//! `lista_step_f32` (also FISTA's step, [`crate::sparse`]); `lista_step_f16` and the float first
//! shrink are the reference's.
//!
//! Shapes as in `reference.rs`: `S` column-major `[N, N]` (`s[j·N + i] = S[i, j]`), so
//! column `j` is `N` contiguous values, one per row. Both steps take the lanes across rows
//! `i` (four i32 or f32 lanes) and walk the non-zero `h[j]` in ascending `j`, four columns
//! a pass over the rows, in a tail-predicated low-overhead loop (`DLSTP.32`/`LETP`): no
//! scalar tail. The row sums live in memory between passes (`acc`, or the output `h`).
//!
//! **int8.** `VLDRB.S32` widens four bytes of a column, `VMLA.S32` adds them times the
//! scalar `d_j = h_q[j] − zp_h` to the four row sums. Products fit an i32 and `VMLA`
//! wraps modulo 2^32 like the reference's `wrapping_add`, and modular addition does not
//! depend on the order, so the sums are the reference's bit for bit. A last group of fewer
//! than four columns is padded with `d = 0` (adding exact zeros). The output stage (also
//! the first shrink's) is [`ListaS8::output_fast`] (`kernels/cortex_m.rs`), bit-exact with
//! the reference's `output` for every input.
//!
//! **f32.** The sums start at `+0.0` in `h`; each pass adds, for its (up to four) columns
//! in ascending `j`, `VMUL.F32` by the scalar `h[j]` then `VADD.F32` (never a fused
//! multiply-add): each lane is the reference's per-row sum, rounding for rounding. A last
//! group of fewer than four columns goes one column per pass (padding with `h = 0` would
//! add `S·0`, which is not always `+0`). Then `b + sum` and the shrink by the reference's
//! scalar code.

use core::arch::asm;

use super::reference::ListaS8;
use crate::kernels::shrink::reference::shrink1_f32;

pub(crate) use super::reference::{lista_first_f32, lista_step_f16};

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
    acc.fill(0);
    // Up to four pending non-zero columns: their start in `S` and `d_j`.
    let mut cols = [p.s.as_ptr(); 4];
    let mut ds = [0i32; 4];
    let mut k = 0;
    for (j, &q) in h_in.iter().enumerate() {
        let d = q as i32 - p.zp_h;
        if d == 0 {
            continue;
        }
        cols[k] = p.s[j * n..][..n].as_ptr();
        ds[k] = d;
        k += 1;
        if k == 4 {
            // SAFETY: each column is `n` bytes of `S`, `acc` `n` aligned i32s.
            unsafe { add4_s8(cols, ds, acc.as_mut_ptr(), n) };
            k = 0;
        }
    }
    if k > 0 {
        // Pad with the first column times 0.
        for t in k..4 {
            cols[t] = cols[0];
            ds[t] = 0;
        }
        // SAFETY: as above.
        unsafe { add4_s8(cols, ds, acc.as_mut_ptr(), n) };
    }
    for (i, (h, &b)) in h.iter_mut().zip(b).enumerate() {
        *h = p.output_fast(i, b, acc[i]);
    }
}

/// `acc[r] += Σ_t cols[t][r]·d[t]` (wrapping) for rows `r < n`.
///
/// # Safety
/// Each `cols[t]` is readable for `n` bytes, `acc` readable and writable for `n` 4-byte
/// aligned i32s.
#[inline(always)]
unsafe fn add4_s8(cols: [*const i8; 4], d: [i32; 4], acc: *mut i32, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: `DLSTP.32` predicates the last turn to the `n − 4·turns` rows left, so the
    // loads and the store never pass row `n`; q0–q2 are declared clobbered.
    unsafe {
        asm!(
            "dlstp.32 lr, {n}",
            "2:",
            "vldrw.u32 q0, [{pacc}]",
            "vldrb.s32 q1, [r0], #4",
            "vmla.s32 q0, q1, {d0}",
            "vldrb.s32 q2, [r1], #4",
            "vmla.s32 q0, q2, {d1}",
            "vldrb.s32 q1, [r2], #4",
            "vmla.s32 q0, q1, {d2}",
            "vldrb.s32 q2, [r3], #4",
            "vmla.s32 q0, q2, {d3}",
            "vstrw.32 q0, [{pacc}], #16",
            "letp lr, 2b",
            n = in(reg) n,
            pacc = inout(reg) acc => _,
            // Widening loads take a low register as base.
            inout("r0") cols[0] => _,
            inout("r1") cols[1] => _,
            inout("r2") cols[2] => _,
            inout("r3") cols[3] => _,
            d0 = in(reg) d[0],
            d1 = in(reg) d[1],
            d2 = in(reg) d[2],
            d3 = in(reg) d[3],
            out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
            options(nostack),
        );
    }
}

/// One float step, f32 `S`, equal to [`super::reference::lista_step_f32`] bit for bit
/// (module docs). Also FISTA's step.
pub(crate) fn lista_step_f32(s: &[f32], b: &[f32], theta: &[f32], h_in: &[f32], h: &mut [f32]) {
    let n = h.len();
    debug_assert!(s.len() == n * n && b.len() == n && theta.len() == n && h_in.len() == n);
    h.fill(0.0);
    let mut cols = [s.as_ptr(); 4];
    let mut hs = [0u32; 4];
    let mut k = 0;
    for (j, &hj) in h_in.iter().enumerate() {
        if hj != 0.0 {
            cols[k] = s[j * n..][..n].as_ptr();
            hs[k] = hj.to_bits();
            k += 1;
            if k == 4 {
                // SAFETY: each column is `n` f32s of `S`, `h` `n` f32s.
                unsafe { add4_f32(cols, hs, h.as_mut_ptr(), n) };
                k = 0;
            }
        }
    }
    for t in 0..k {
        // SAFETY: as above.
        unsafe { add1_f32(cols[t], hs[t], h.as_mut_ptr(), n) };
    }
    for ((h, &b), &t) in h.iter_mut().zip(b).zip(theta) {
        *h = shrink1_f32(b + *h, t);
    }
}

/// `acc[r] = (((acc[r] + c0[r]·h0) + c1[r]·h1) + c2[r]·h2) + c3[r]·h3`, each product and
/// sum rounded, for rows `r < n` (`h` as f32 bits).
///
/// # Safety
/// Each `cols[t]` is readable for `n` f32s, `acc` readable and writable for `n` f32s.
#[inline(always)]
unsafe fn add4_f32(cols: [*const f32; 4], h: [u32; 4], acc: *mut f32, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: `DLSTP.32` predicates the last turn to the rows left, so no access passes
    // row `n`; q0–q1 are declared clobbered.
    unsafe {
        asm!(
            "dlstp.32 lr, {n}",
            "2:",
            "vldrw.u32 q0, [{pacc}]",
            "vldrw.u32 q1, [{p0}], #16",
            "vmul.f32 q1, q1, {h0}",
            "vadd.f32 q0, q0, q1",
            "vldrw.u32 q1, [{p1}], #16",
            "vmul.f32 q1, q1, {h1}",
            "vadd.f32 q0, q0, q1",
            "vldrw.u32 q1, [{p2}], #16",
            "vmul.f32 q1, q1, {h2}",
            "vadd.f32 q0, q0, q1",
            "vldrw.u32 q1, [{p3}], #16",
            "vmul.f32 q1, q1, {h3}",
            "vadd.f32 q0, q0, q1",
            "vstrw.32 q0, [{pacc}], #16",
            "letp lr, 2b",
            n = in(reg) n,
            pacc = inout(reg) acc => _,
            p0 = inout(reg) cols[0] => _,
            p1 = inout(reg) cols[1] => _,
            p2 = inout(reg) cols[2] => _,
            p3 = inout(reg) cols[3] => _,
            h0 = in(reg) h[0],
            h1 = in(reg) h[1],
            h2 = in(reg) h[2],
            h3 = in(reg) h[3],
            out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            options(nostack),
        );
    }
}

/// `acc[r] = acc[r] + col[r]·h`, product and sum rounded, for rows `r < n`.
///
/// # Safety
/// `col` is readable for `n` f32s, `acc` readable and writable for `n` f32s.
#[inline(always)]
unsafe fn add1_f32(col: *const f32, h: u32, acc: *mut f32, n: usize) {
    if n == 0 {
        return;
    }
    // SAFETY: as in `add4_f32`.
    unsafe {
        asm!(
            "dlstp.32 lr, {n}",
            "2:",
            "vldrw.u32 q0, [{pacc}]",
            "vldrw.u32 q1, [{p0}], #16",
            "vmul.f32 q1, q1, {h0}",
            "vadd.f32 q0, q0, q1",
            "vstrw.32 q0, [{pacc}], #16",
            "letp lr, 2b",
            n = in(reg) n,
            pacc = inout(reg) acc => _,
            p0 = inout(reg) col => _,
            h0 = in(reg) h,
            out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            options(nostack),
        );
    }
}
