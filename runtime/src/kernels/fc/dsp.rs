//! ARMv7E-M DSP fully connected layers (Cortex-M4/M7, Armv8-M with DSP): int8 with `SMLAD`,
//! two 16-bit multiply-accumulates per instruction, four output rows at a time. The float
//! layers run the reference (these cores have a scalar FPU only).
//!
//! `fc_s8`: the input, less its zero point, is widened once into scratch as q15 in the
//! order `SXTB16` unpacks weight bytes (`x0 x2 x1 x3` per group of four); each weight word
//! then costs one load, two `SXTB16` and two `SMLAD`s, and each input word one `LDRD`
//! shared by four rows.

use core::arch::asm;

use crate::kernels::{cortex_m::i16_words, DenseS8};

pub(crate) use super::reference::{fc_f16, fc_f32};

/// int8: `y[o] = clamp(zp_out + requantize(bias[o] + Σ_k w[o,k]·(x[k] − zp_in)))`, as the
/// reference, bit for bit. `x` `[K]`, `weight` `[O, K]`, `y` `[O]`.
pub(crate) fn fc_s8(x: &[i8], p: DenseS8<'_>, y: &mut [i8], scratch: &mut [u8]) {
    let k = x.len();
    debug_assert_eq!(p.weight.len(), y.len() * k);
    let groups = k / 4;
    let xq = i16_words(scratch, groups * 4); // [K/4][4] q15: x0 x2 x1 x3 − zp_in
    for (q, x) in xq.chunks_exact_mut(4).zip(x.chunks_exact(4)) {
        let zp = p.zp_in as i16;
        q.copy_from_slice(&[
            x[0] as i16 - zp,
            x[2] as i16 - zp,
            x[1] as i16 - zp,
            x[3] as i16 - zp,
        ]);
    }
    // The last K mod 4 taps, scalar.
    let tail = |o: usize| -> i32 {
        (groups * 4..k).fold(0i32, |s, t| {
            s.wrapping_add(p.weight[o * k + t] as i32 * (x[t] as i32 - p.zp_in))
        })
    };
    let rows = y.len();
    let mut o = 0;
    while o + 4 <= rows {
        let sums = if groups == 0 {
            [0; 4]
        } else {
            // SAFETY: rows o..o+4 of `weight` hold 4·k ≥ 4·groups·4 bytes from
            // `weight[o·k]`, and `xq` holds groups·4 aligned i16s; `dot4` reads exactly those.
            unsafe { dot4(p.weight.as_ptr().add(o * k), k, xq.as_ptr(), groups) }
        };
        for (r, s) in sums.into_iter().enumerate() {
            y[o + r] = p.output_fast(o + r, s.wrapping_add(tail(o + r)));
        }
        o += 4;
    }
    for (o, y_o) in y.iter_mut().enumerate().skip(o) {
        let sum = if groups == 0 {
            0
        } else {
            // SAFETY: row o of `weight` holds k ≥ groups·4 bytes; `xq` groups·4 aligned i16s.
            unsafe { dot1(p.weight.as_ptr().add(o * k), xq.as_ptr(), groups) }
        };
        *y_o = p.output_fast(o, sum.wrapping_add(tail(o)));
    }
}

/// One weight word at `[{pw}{off}]` against the q15 pair in `{x0}`, `{x1}` into `{acc}`:
/// `SXTB16` splits bytes 0,2 and (rotated) 1,3 into halfwords, `SMLAD` does two MACs each.
macro_rules! mac_word {
    ($load:literal, $acc:literal) => {
        concat!(
            "ldr {w}, ",
            $load,
            "\n",
            "sxtb16 {t}, {w}, ror #8\n",
            "sxtb16 {w}, {w}\n",
            "smlad {",
            $acc,
            "}, {w}, {x0}, {",
            $acc,
            "}\n",
            "smlad {",
            $acc,
            "}, {t}, {x1}, {",
            $acc,
            "}\n"
        )
    };
}

/// Four taps of four rows: rows 0 and 1 from `{pa}` (row 1 at `+{k}`), rows 2 and 3 from
/// `{pc}`; the row pointers advance one word.
macro_rules! group4 {
    () => {
        concat!(
            "ldrd {x0}, {x1}, [{px}], #8\n",
            mac_word!("[{pa}, {k}]", "b"),
            mac_word!("[{pa}], #4", "a"),
            mac_word!("[{pc}, {k}]", "d"),
            mac_word!("[{pc}], #4", "c"),
        )
    };
}

/// `Σ_{t < 4·groups} w[r·k + t]·xq[t]` for rows `r = 0..4` (`xq` in `SXTB16` order).
///
/// # Safety
/// `w` is readable for `3·k + 4·groups` bytes, `xq` for `4·groups` 4-byte aligned i16s,
/// and `groups ≥ 1`.
#[inline(always)]
unsafe fn dot4(w: *const i8, k: usize, xq: *const i16, groups: usize) -> [i32; 4] {
    let (mut a, mut b, mut c, mut d) = (0i32, 0i32, 0i32, 0i32);
    // SAFETY: the caller guarantees the reads; the loop runs `groups` times, two groups a
    // turn after an odd one, and touches no other memory.
    unsafe {
        asm!(
            "tst {n}, #1",
            "beq 3f",
            group4!(),
            "3:",
            "lsrs {n}, {n}, #1",
            "beq 4f",
            "2:",
            group4!(),
            group4!(),
            "subs {n}, {n}, #1",
            "bne 2b",
            "4:",
            pa = inout(reg) w => _,
            pc = inout(reg) w.add(2 * k) => _,
            k = in(reg) k,
            px = inout(reg) xq => _,
            n = inout(reg) groups => _,
            a = inout(reg) a,
            b = inout(reg) b,
            c = inout(reg) c,
            d = inout(reg) d,
            x0 = out(reg) _,
            x1 = out(reg) _,
            w = out(reg) _,
            t = out(reg) _,
            options(pure, readonly, nostack),
        );
    }
    [a, b, c, d]
}

/// `Σ_{t < 4·groups} w[t]·xq[t]` for one row.
///
/// # Safety
/// `w` is readable for `4·groups` bytes, `xq` for `4·groups` 4-byte aligned i16s, and
/// `groups ≥ 1`.
#[inline(always)]
unsafe fn dot1(w: *const i8, xq: *const i16, groups: usize) -> i32 {
    let mut a = 0i32;
    // SAFETY: the caller guarantees the reads; `groups` turns, no other memory.
    unsafe {
        asm!(
            "2:",
            "ldrd {x0}, {x1}, [{px}], #8",
            mac_word!("[{pa}], #4", "a"),
            "subs {n}, {n}, #1",
            "bne 2b",
            pa = inout(reg) w => _,
            px = inout(reg) xq => _,
            n = inout(reg) groups => _,
            a = inout(reg) a,
            x0 = out(reg) _,
            x1 = out(reg) _,
            w = out(reg) _,
            t = out(reg) _,
            options(pure, readonly, nostack),
        );
    }
    a
}
