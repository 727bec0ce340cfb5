//! aarch64 NEON fully connected layers, bit-exact with `reference.rs` (proven by
//! `crate::check`).
//!
//! Shapes as in the reference: `x` `[K]`, `weight` `[O, K]`, `y` `[O]`. No scratch.
//!
//! - int8, 16 inputs at a time: in the `neon-dotprod` set ([`fc_s8_dot`], run where the CPU
//!   has `dotprod`), `SDOT` sums `w·x` and `w·zp_in` separately (both fit: `zp_in` is an
//!   int8 code) and the layer subtracts them, equal to `Σ w·(x − zp_in)` modulo 2^32. In the
//!   `neon` set ([`fc_s8`]), `SMULL` `w·x` and `SMLSL` `w·zp_in` in i16:
//!   the difference `w·(x − zp_in)` lies in `[-32640, 32640]`, so the wrapping i16
//!   arithmetic gives it exactly, and `SADALP` adds pairs of them into i32 lanes. An 8-wide
//!   step and a scalar tail finish `K`.
//! - f32: four outputs at a time, one per lane, each lane summing `w·x` in `k` order with a
//!   separate multiply and add (no fused multiply-add) exactly as the reference's loop.

use core::arch::aarch64::*;

use crate::kernels::{widened, DenseF, DenseS8};
use half::f16;

/// int8 (`neon` set): `acc = bias[o] + Σ_k w[o,k] · (x[k] − zp_in)`, requantized as the
/// reference.
pub(crate) fn fc_s8(x: &[i8], p: DenseS8<'_>, y: &mut [i8], _scratch: &mut [u8]) {
    // SAFETY: without `SDOT` the body needs nothing past baseline NEON.
    unsafe { fc_s8_body::<false>(x, p, y) }
}

/// int8 (`neon-dotprod` set): [`fc_s8`] with `SDOT`.
pub(crate) fn fc_s8_dot(x: &[i8], p: DenseS8<'_>, y: &mut [i8], _scratch: &mut [u8]) {
    // SAFETY: only the `neon-dotprod` kernel table (`Kernels::NEON_DOT`) holds this
    // function, and a plan uses that table only where the CPU has `dotprod`
    // (`KernelSet::runs_here`).
    unsafe { fc_s8_sdot(x, p, y) }
}

/// # Safety
/// The CPU must have `dotprod`.
#[target_feature(enable = "dotprod")]
unsafe fn fc_s8_sdot(x: &[i8], p: DenseS8<'_>, y: &mut [i8]) {
    // SAFETY: `dotprod` by this function's contract.
    unsafe { fc_s8_body::<true>(x, p, y) }
}

/// # Safety
/// With `D` (`SDOT`), the CPU must have `dotprod`.
#[inline(always)]
unsafe fn fc_s8_body<const D: bool>(x: &[i8], p: DenseS8<'_>, y: &mut [i8]) {
    let k = x.len();
    debug_assert_eq!(p.weight.len(), y.len() * k);
    for (o, y_o) in y.iter_mut().enumerate() {
        let w_o = &p.weight[o * k..][..k]; // [K]
                                           // SAFETY: forwarded.
        *y_o = p.output(o, unsafe { dot_s8::<D>(w_o, x, p.zp_in) });
    }
}

/// `Σ_k w[k]·(x[k] − zp)` wrapping in i32, `w.len() == x.len()`.
///
/// # Safety
/// With `D` (`SDOT`), the CPU must have `dotprod`.
#[inline(always)]
unsafe fn dot_s8<const D: bool>(w: &[i8], x: &[i8], zp: i32) -> i32 {
    let k = x.len();
    let (k16, k8) = (k / 16 * 16, k / 8 * 8);
    // SAFETY: NEON is baseline on aarch64, and `SDOT` runs only with `D`, where the caller
    // guarantees `dotprod`; every load reads `w[at..at + 16]` or `x[at..at + 16]` with
    // `at + 16 ≤ k16 ≤ k` (8 bytes with `at + 8 ≤ k8 ≤ k`), inside both slices of length `k`.
    let mut sum = unsafe {
        let (wp, xp) = (w.as_ptr(), x.as_ptr());
        let zp16 = vdupq_n_s8(zp as i8); // zp_in ∈ [-128, 127]
        let mut acc = vdupq_n_s32(0);
        if D {
            use crate::kernels::neon::sdot;
            let mut acc_zp = vdupq_n_s32(0);
            for at in (0..k16).step_by(16) {
                let wv = vld1q_s8(wp.add(at));
                acc = sdot(acc, wv, vld1q_s8(xp.add(at)));
                acc_zp = sdot(acc_zp, wv, zp16);
            }
            acc = vsubq_s32(acc, acc_zp);
        } else {
            for at in (0..k16).step_by(16) {
                let (wv, xv) = (vld1q_s8(wp.add(at)), vld1q_s8(xp.add(at)));
                // w·x − w·zp = w·(x − zp) in i16: exact, it fits.
                let lo = vmlsl_s8(
                    vmull_s8(vget_low_s8(wv), vget_low_s8(xv)),
                    vget_low_s8(wv),
                    vget_low_s8(zp16),
                );
                let hi = vmlsl_high_s8(vmull_high_s8(wv, xv), wv, zp16);
                acc = vpadalq_s16(vpadalq_s16(acc, lo), hi);
            }
        }
        if k8 > k16 {
            let (wv, xv) = (vld1_s8(wp.add(k16)), vld1_s8(xp.add(k16)));
            let d = vmlsl_s8(vmull_s8(wv, xv), wv, vget_low_s8(zp16));
            acc = vpadalq_s16(acc, d);
        }
        vaddvq_s32(acc) // wrapping, like the reference's sum
    };
    for (&w, &x) in w[k8..].iter().zip(&x[k8..]) {
        sum = sum.wrapping_add(w as i32 * (x as i32 - zp));
    }
    sum
}

/// f16 weights: [`fc_f32`] on them widened ([`widened`]), equal to
/// [`super::reference::fc_f16`] bit for bit.
pub(crate) fn fc_f16(x: &[f32], p: DenseF<'_, f16>, y: &mut [f32], scratch: &mut [u8]) {
    if !widened(p, crate::kernels::neon::widen_f16, |o, p| {
        fc_f32(x, p, &mut y[o], scratch)
    }) {
        super::reference::fc_f16(x, p, y, scratch)
    }
}

/// f32 weights, f32 activations: `y[o] = bias[o] + Σ_k w[o,k]·x[k]`, summed in `k` order.
pub(crate) fn fc_f32(x: &[f32], p: DenseF<'_, f32>, y: &mut [f32], _scratch: &mut [u8]) {
    let k = x.len();
    debug_assert_eq!(p.weight.len(), y.len() * k);
    let o4 = y.len() / 4 * 4;
    for o in (0..o4).step_by(4) {
        // Rows o..o+4 of the weights, [4, K]; lane l of `acc` is output o + l.
        let rows: [&[f32]; 4] = core::array::from_fn(|l| &p.weight[(o + l) * k..][..k]);
        let (k4, mut acc);
        // SAFETY: NEON is baseline on aarch64; each 4-lane load reads `rows[l][at..at + 4]`
        // with `at + 4 ≤ k4 ≤ k`, inside the row; `p.bias[o..o + 4]` and `y[o..o + 4]` exist
        // since `o + 4 ≤ o4 ≤ y.len() == p.bias.len()`.
        unsafe {
            k4 = k / 4 * 4;
            acc = vdupq_n_f32(0.0);
            for at in (0..k4).step_by(4) {
                // Transpose the 4×4 block rows[l][at..at + 4] into columns t: [w[o+l, at+t]]_l.
                let r = rows.map(|r| vld1q_f32(r.as_ptr().add(at)));
                let (a, b) = (vtrn1q_f32(r[0], r[1]), vtrn2q_f32(r[0], r[1]));
                let (c, d) = (vtrn1q_f32(r[2], r[3]), vtrn2q_f32(r[2], r[3]));
                let cols = [
                    vreinterpretq_f32_f64(vtrn1q_f64(
                        vreinterpretq_f64_f32(a),
                        vreinterpretq_f64_f32(c),
                    )),
                    vreinterpretq_f32_f64(vtrn1q_f64(
                        vreinterpretq_f64_f32(b),
                        vreinterpretq_f64_f32(d),
                    )),
                    vreinterpretq_f32_f64(vtrn2q_f64(
                        vreinterpretq_f64_f32(a),
                        vreinterpretq_f64_f32(c),
                    )),
                    vreinterpretq_f32_f64(vtrn2q_f64(
                        vreinterpretq_f64_f32(b),
                        vreinterpretq_f64_f32(d),
                    )),
                ];
                let xv = vld1q_f32(x.as_ptr().add(at));
                // k order: at, at+1, at+2, at+3; rounded product, then rounded sum.
                acc = vaddq_f32(acc, vmulq_f32(cols[0], vdupq_laneq_f32::<0>(xv)));
                acc = vaddq_f32(acc, vmulq_f32(cols[1], vdupq_laneq_f32::<1>(xv)));
                acc = vaddq_f32(acc, vmulq_f32(cols[2], vdupq_laneq_f32::<2>(xv)));
                acc = vaddq_f32(acc, vmulq_f32(cols[3], vdupq_laneq_f32::<3>(xv)));
            }
        }
        let mut sums = [0.0f32; 4];
        // SAFETY: `sums` holds 4 f32.
        unsafe { vst1q_f32(sums.as_mut_ptr(), acc) };
        for (l, sum) in sums.iter_mut().enumerate() {
            for at in k4..k {
                *sum += rows[l][at] * x[at];
            }
            y[o + l] = p.bias[o + l] + *sum;
        }
    }
    // The last `O mod 4` outputs: the reference's loop.
    for (o, y_o) in y.iter_mut().enumerate().skip(o4) {
        let w_o = &p.weight[o * k..][..k]; // [K]
        let mut sum = 0.0f32;
        for (w, x) in w_o.iter().zip(x) {
            sum += w * x;
        }
        *y_o = p.bias[o] + sum;
    }
}
