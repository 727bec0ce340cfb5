//! Scalar reference LISTA recurrence: the specification.
//!
//! Shapes: `b`, `h` `[N]` (codes `[N, 1, 1]`), `S` **column-major** `[N, N]`
//! (`s[j·N + i] = S[i, j]`), `θ` `[N]`.
//!
//! ```text
//! h ← shrink_θ(b)
//! steps times:  h'[i] = shrink_θ[i](b[i] + Σ_{j ascending, h[j] ≠ 0} S[i, j]·h[j]);  h ← h'
//! ```
//! Float: the sum starts at `0.0` and adds each product (a plain multiply, then an add; no
//! fused multiply-add) in ascending `j`, then `b[i]` is added: a variant that runs many
//! rows `i` at once over the same ascending non-zero `j` gets the same bits.
//!
//! int8 (see `kestrel_format::Op::Lista`): `d_j = h_q[j] − zp_h`;
//! `acc_i = Σ_{d_j ≠ 0} s_q[j·N + i]·d_j` (i32, wrapping, so in any order);
//! `u_i = b_acc[i] ⊕ acc_i` (saturating) with `b_acc[i] = requantize(b_q[i] − zp_b, in[i])`;
//! `h_q[i] = clamp(zp_h + requantize(shrink(u_i, θ[i]), out[i]))`. The first shrink is the
//! same with `acc = 0`.

use half::f16;
use kestrel_format::quant::requantize;

use crate::kernels::shrink::reference::{shrink1_f32, shrink1_i64};
use crate::kernels::Widen;

/// int8 LISTA constants, all per row `[N]` except `s` (`[N, N]`, column-major).
#[derive(Clone, Copy)]
pub(crate) struct ListaS8<'p> {
    pub s: &'p [i8],
    pub theta: &'p [i32],
    pub in_multiplier: &'p [i32],
    pub in_shift: &'p [i32],
    pub out_multiplier: &'p [i32],
    pub out_shift: &'p [i32],
    /// Zero point of `b`'s codes (the previous layer's output).
    pub zp_b: i32,
    /// Zero point of `h`'s codes (the layer's output).
    pub zp_h: i32,
}

impl ListaS8<'_> {
    /// Calls `add(first, second)` for the non-zero code columns of `h_in` taken two at a
    /// time in ascending `j`, each as `(j, d_j)` with `d_j = h_q[j] − zp_h`; an odd last one
    /// pairs with itself and `d = 0` (adding `S[·, j]·0`). How the SIMD variants that
    /// multiply column pairs walk the codes.
    #[inline(always)]
    #[cfg_attr(not(any(kestrel_isa = "avx2", kestrel_isa = "dsp")), allow(dead_code))]
    pub(crate) fn column_pairs(
        &self,
        h_in: &[i8],
        mut add: impl FnMut((usize, i32), (usize, i32)),
    ) {
        // The pending non-zero column of a pair.
        let mut pending: Option<(usize, i32)> = None;
        for (j, &q) in h_in.iter().enumerate() {
            let d = q as i32 - self.zp_h;
            if d == 0 {
                continue;
            }
            match pending.take() {
                None => pending = Some((j, d)),
                Some(first) => add(first, (j, d)),
            }
        }
        if let Some((a, da)) = pending {
            add((a, da), (a, 0));
        }
    }

    /// `b_acc[i]`: row `i`'s input in its accumulator units.
    #[inline(always)]
    pub(crate) fn b_acc(&self, i: usize, b: i8) -> i32 {
        requantize(
            b as i32 - self.zp_b,
            self.in_multiplier[i],
            self.in_shift[i],
        )
    }

    /// Row `i`'s accumulator `Σ_{d_j ≠ 0} S[i, j]·d_j`, `d_j = h_in[j] − zp_h` (wrapping i32):
    /// the reference's, and the SIMD variants' for the rows left over from their blocks.
    #[inline(always)]
    pub(crate) fn row_acc(&self, i: usize, h_in: &[i8]) -> i32 {
        let n = h_in.len();
        let mut acc = 0i32;
        for (j, &q) in h_in.iter().enumerate() {
            let d = q as i32 - self.zp_h;
            if d != 0 {
                acc = acc.wrapping_add(self.s[j * n + i] as i32 * d);
            }
        }
        acc
    }

    /// Row `i`'s output code for the accumulator `acc` (`0` for the first shrink).
    #[inline(always)]
    pub(crate) fn output(&self, i: usize, b: i8, acc: i32) -> i8 {
        let u = self.b_acc(i, b).saturating_add(acc);
        // |v| ≤ |u| ≤ 2^31, and v = −2^31 only for u = i32::MIN: it fits an i32.
        let v = shrink1_i64(u as i64, self.theta[i] as i64) as i32;
        let r = requantize(v, self.out_multiplier[i], self.out_shift[i]);
        self.zp_h.saturating_add(r).clamp(-128, 127) as i8
    }
}

/// The first float shrink: `h = shrink_θ(b)`.
pub(crate) fn lista_first_f32(b: &[f32], theta: &[f32], h: &mut [f32]) {
    debug_assert!(b.len() == h.len() && theta.len() == h.len());
    for ((h, &b), &t) in h.iter_mut().zip(b).zip(theta) {
        *h = shrink1_f32(b, t);
    }
}

/// One float step, f32 `S`: `h = shrink_θ(b + S·h_in)` (module docs). Also FISTA's step
/// ([`crate::sparse`]).
pub(crate) fn lista_step_f32(s: &[f32], b: &[f32], theta: &[f32], h_in: &[f32], h: &mut [f32]) {
    step_float(s, b, theta, h_in, h)
}

/// One float step, f16 `S` widened on the fly.
pub(crate) fn lista_step_f16(s: &[f16], b: &[f32], theta: &[f32], h_in: &[f32], h: &mut [f32]) {
    step_float(s, b, theta, h_in, h)
}

fn step_float<W: Widen>(s: &[W], b: &[f32], theta: &[f32], h_in: &[f32], h: &mut [f32]) {
    let n = h.len();
    debug_assert!(s.len() == n * n && b.len() == n && theta.len() == n && h_in.len() == n);
    for (i, h) in h.iter_mut().enumerate() {
        *h = step_row(s, b, theta, h_in, i);
    }
}

/// Row `i` of a float step: `shrink_θ[i](b[i] + Σ_{h_in[j] ≠ 0} S[i, j]·h_in[j])`, summed
/// in ascending `j`. Also the SIMD variants' leftover rows.
#[inline]
pub(crate) fn step_row<W: Widen>(s: &[W], b: &[f32], theta: &[f32], h_in: &[f32], i: usize) -> f32 {
    let n = h_in.len();
    let mut acc = 0.0f32;
    for (j, &hj) in h_in.iter().enumerate() {
        if hj != 0.0 {
            acc += s[j * n + i].widen() * hj;
        }
    }
    shrink1_f32(b[i] + acc, theta[i])
}

/// The first int8 shrink: `h_q[i] = p.output(i, b_q[i], 0)`.
pub(crate) fn lista_first_s8(p: &ListaS8<'_>, b: &[i8], h: &mut [i8]) {
    debug_assert_eq!(b.len(), h.len());
    for (i, (h, &b)) in h.iter_mut().zip(b).enumerate() {
        *h = p.output(i, b, 0);
    }
}

/// One int8 step: `h_q[i] = p.output(i, b_q[i], acc_i)` (module docs); `acc` `[N]` is
/// scratch (the SIMD variants accumulate all rows there; this one row by row).
pub(crate) fn lista_step_s8(
    p: &ListaS8<'_>,
    b: &[i8],
    h_in: &[i8],
    _acc: &mut [i32],
    h: &mut [i8],
) {
    let n = h.len();
    debug_assert!(p.s.len() == n * n && b.len() == n && h_in.len() == n);
    for i in 0..n {
        h[i] = p.output(i, b[i], p.row_acc(i, h_in));
    }
}
