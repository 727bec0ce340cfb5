//! Armv8.1-M Helium (MVE) fully connected layers (Cortex-M55/M85): int8 with
//! `VMLADAVA.S8`, sixteen multiply-accumulates per instruction, two output rows at a time,
//! in a tail-predicated low-overhead loop (`DLSTP`/`LETP`), so no scalar tail. f32 with
//! MVE-F across eight output rows (below); f16 runs the reference.
//!
//! `Σ_k w·(x − zp_in)` is computed as `Σ_k w·x − zp_in·Σ_k w`: the codes stay int8 and
//! `VADDVA.S8` sums each weight row in the same loop. No scratch.

use core::arch::asm;

use crate::kernels::{DenseF, DenseS8};

pub(crate) use super::reference::fc_f16;

/// f32: `y[o] = bias[o] + Σ_k w[o,k]·x[k]`, as the reference, bit for bit. `x` `[K]`,
/// `weight` `[O, K]`, `y` `[O]`.
///
/// The reference sums each row in `k` order, rounding after every multiply and every add,
/// so the sum cannot be split across `k`. The lanes are output rows instead, eight per
/// pass: for each `k`, two gather loads (`VLDRW.U32` with a vector of row addresses,
/// written back) take `w[o..o+8, k]`, `VMUL.F32` by the scalar `x[k]` and `VADD.F32`
/// (never `VFMA`, which rounds once) add it to each lane's running sum in the reference's
/// order.
pub(crate) fn fc_f32(x: &[f32], p: DenseF<'_, f32>, y: &mut [f32], _scratch: &mut [u8]) {
    let k = x.len();
    debug_assert_eq!(p.weight.len(), y.len() * k);
    let rows = y.len();
    let mut o = 0;
    while o < rows {
        let n = (rows - o).min(LANES);
        // Lanes past the last row read the last row again; their sums are dropped.
        let w8: [*const f32; LANES] =
            core::array::from_fn(|j| p.weight[(o + j.min(n - 1)) * k..].as_ptr());
        // SAFETY: each of the eight rows is k floats of `weight`, `x` has k.
        let sums = unsafe { dot8_f32(w8, x.as_ptr(), k) };
        for (j, sum) in sums.iter().enumerate().take(n) {
            y[o + j] = p.bias[o + j] + sum;
        }
        o += LANES;
    }
}

/// Output rows per `dot8_f32` call: two vectors of four.
const LANES: usize = 8;

/// `[Σ_t r[t]·x[t]; 8]` for the eight rows `rows[j][0..k]`, each summed from 0.0 in `t`
/// order with a rounded multiply and a rounded add per term (the reference's order).
///
/// # Safety
/// Each `rows[j]` and `x` are readable for `k` floats, 4-byte aligned.
#[inline(always)]
unsafe fn dot8_f32(rows: [*const f32; LANES], x: *const f32, k: usize) -> [f32; LANES] {
    // The gather's pre-indexed writeback adds 4 before each load: start one float early.
    let addr = rows.map(|r| (r as u32).wrapping_sub(4));
    let mut sums = [0f32; LANES];
    // SAFETY: the loop runs k turns in all (k/4 of four terms, then k%4 of one); each
    // turn reads one float of x and one float of each row, in order, never past k.
    // q0–q4 are declared clobbered; no predication, so VPR is untouched.
    unsafe {
        asm!(
            "vldrw.u32 q0, [{addr}]",
            "vldrw.u32 q1, [{addr}, #16]",
            "vmov.i32 q2, #0",
            "vmov.i32 q3, #0",
            "wls lr, {n4}, 3f",
            "2:",
            "ldm {px}!, {{r0, r1, r2, r3}}",
            "vldrw.u32 q4, [q0, #4]!",
            "vmul.f32 q4, q4, r0",
            "vadd.f32 q2, q2, q4",
            "vldrw.u32 q4, [q1, #4]!",
            "vmul.f32 q4, q4, r0",
            "vadd.f32 q3, q3, q4",
            "vldrw.u32 q4, [q0, #4]!",
            "vmul.f32 q4, q4, r1",
            "vadd.f32 q2, q2, q4",
            "vldrw.u32 q4, [q1, #4]!",
            "vmul.f32 q4, q4, r1",
            "vadd.f32 q3, q3, q4",
            "vldrw.u32 q4, [q0, #4]!",
            "vmul.f32 q4, q4, r2",
            "vadd.f32 q2, q2, q4",
            "vldrw.u32 q4, [q1, #4]!",
            "vmul.f32 q4, q4, r2",
            "vadd.f32 q3, q3, q4",
            "vldrw.u32 q4, [q0, #4]!",
            "vmul.f32 q4, q4, r3",
            "vadd.f32 q2, q2, q4",
            "vldrw.u32 q4, [q1, #4]!",
            "vmul.f32 q4, q4, r3",
            "vadd.f32 q3, q3, q4",
            "le lr, 2b",
            "3:",
            "wls lr, {n1}, 5f",
            "4:",
            "ldr r0, [{px}], #4",
            "vldrw.u32 q4, [q0, #4]!",
            "vmul.f32 q4, q4, r0",
            "vadd.f32 q2, q2, q4",
            "vldrw.u32 q4, [q1, #4]!",
            "vmul.f32 q4, q4, r0",
            "vadd.f32 q3, q3, q4",
            "le lr, 4b",
            "5:",
            "vstrw.32 q2, [{sums}]",
            "vstrw.32 q3, [{sums}, #16]",
            addr = in(reg) addr.as_ptr(),
            sums = in(reg) sums.as_mut_ptr(),
            n4 = in(reg) k / 4,
            n1 = in(reg) k % 4,
            px = inout(reg) x => _,
            out("r0") _, out("r1") _, out("r2") _, out("r3") _,
            out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _,
            out("d8") _, out("d9") _,
            options(nostack),
        );
    }
    sums
}

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
