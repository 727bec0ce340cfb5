//! Armv8.1-M Helium (MVE) fully connected layers (Cortex-M55/M85): int8 with
//! `VMLADAVA.S8`, sixteen multiply-accumulates per instruction, two output rows at a time,
//! in a tail-predicated low-overhead loop (`DLSTP`/`LETP`), so no scalar tail. The float
//! layers run the reference.
//!
//! `Σ_k w·(x − zp_in)` is computed as `Σ_k w·x − zp_in·Σ_k w`: the codes stay int8 and
//! `VADDVA.S8` sums each weight row in the same loop. No scratch.

use core::arch::asm;

use crate::kernels::DenseS8;

pub(crate) use super::reference::{fc_f16, fc_f32};

/// int8: `y[o] = clamp(zp_out + requantize(bias[o] + Σ_k w[o,k]·(x[k] − zp_in)))`, as the
/// reference, bit for bit. `x` `[K]`, `weight` `[O, K]`, `y` `[O]`.
pub(crate) fn fc_s8(x: &[i8], p: DenseS8<'_>, y: &mut [i8], _scratch: &mut [u8]) {
    let k = x.len();
    debug_assert_eq!(p.weight.len(), y.len() * k);
    let rows = y.len();
    // Σ w·x and Σ w of a row, to Σ w·(x − zp_in) (wrapping, as the reference's i32 sum).
    let sum = |(dot, sw): (i32, i32)| dot.wrapping_sub(p.zp_in.wrapping_mul(sw));
    let mut o = 0;
    while o + 2 <= rows {
        // SAFETY: rows o and o+1 of `weight` are 2·k bytes from `weight[o·k]`, `x` has k.
        let (a, b) = unsafe {
            let w = p.weight.as_ptr().add(o * k);
            dot2(w, w.add(k), x.as_ptr(), k)
        };
        y[o] = p.output_fast(o, sum(a));
        y[o + 1] = p.output_fast(o + 1, sum(b));
        o += 2;
    }
    if o < rows {
        // SAFETY: row o of `weight` is k bytes from `weight[o·k]`, `x` has k.
        let (a, _) = unsafe {
            let w = p.weight.as_ptr().add(o * k);
            dot2(w, w, x.as_ptr(), k)
        };
        y[o] = p.output_fast(o, sum(a));
    }
}

/// `(Σ_t w[t]·x[t], Σ_t w[t])` for the rows `wa[0..k]` and `wb[0..k]`.
///
/// # Safety
/// `wa`, `wb` and `x` are readable for `k` bytes each.
#[inline(always)]
unsafe fn dot2(wa: *const i8, wb: *const i8, x: *const i8, k: usize) -> ((i32, i32), (i32, i32)) {
    let (mut a, mut sa, mut b, mut sb) = (0i32, 0i32, 0i32, 0i32);
    // SAFETY: `DLSTP.8` predicates the last turn to the k − 16·turns bytes left, so the
    // loads never pass `x + k`, `wa + k` and `wb + k`; q0–q2 are declared clobbered.
    unsafe {
        asm!(
            "dlstp.8 lr, {k}",
            "2:",
            "vldrb.8 q0, [{px}], #16",
            "vldrb.8 q1, [{pa}], #16",
            "vldrb.8 q2, [{pb}], #16",
            "vmladava.s8 r0, q1, q0",
            "vaddva.s8 r2, q1",
            "vmladava.s8 r4, q2, q0",
            "vaddva.s8 r8, q2",
            "letp lr, 2b",
            k = in(reg) k,
            px = inout(reg) x => _,
            pa = inout(reg) wa => _,
            pb = inout(reg) wb => _,
            inout("r0") a,
            inout("r2") sa,
            inout("r4") b,
            inout("r8") sb,
            out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
            options(pure, readonly, nostack),
        );
    }
    ((a, sa), (b, sb))
}
