//! Scalar reference fully connected layers: the specification.
//!
//! Shapes: `x` `[K]` (the input flattened in CHW order), `weight` `[O, K]`, `bias` `[O]`,
//! `y` `[O]`; `y[o] = bias[o] + Σ_k weight[o,k] · x[k]`.

use half::f16;

use crate::kernels::{DenseF, DenseS8, Widen};

/// f32 weights, f32 activations.
// Outside tests only the reference build calls it (the AVX2 variant never falls back).
#[cfg_attr(kestrel_isa = "avx2", allow(dead_code))]
pub(crate) fn fc_f32(x: &[f32], p: DenseF<'_, f32>, y: &mut [f32], _scratch: &mut [u8]) {
    fc_float(x, p, y)
}

/// f16 weights widened on the fly; f32 biases, activations and arithmetic.
pub(crate) fn fc_f16(x: &[f32], p: DenseF<'_, f16>, y: &mut [f32], _scratch: &mut [u8]) {
    fc_float(x, p, y)
}

/// The float layer: the sum runs in f32 in `k` order, then the bias is added.
fn fc_float<W: Widen>(x: &[f32], p: DenseF<'_, W>, y: &mut [f32]) {
    let k = x.len();
    debug_assert_eq!(p.weight.len(), y.len() * k);
    for (o, y_o) in y.iter_mut().enumerate() {
        let w_o = &p.weight[o * k..][..k]; // [K]
        let mut sum = 0.0f32;
        for (w, x) in w_o.iter().zip(x) {
            sum += w.widen() * x;
        }
        *y_o = p.bias[o] + sum;
    }
}

/// int8: `acc = bias[o] + Σ_k w[o,k] · (x[k] − zp_in)` in i32, then
/// `y[o] = clamp(zp_out + requantize(acc, multiplier[o], shift[o]), -128, 127)`.
// Outside tests only the reference build calls it (the AVX2 variant never falls back).
#[cfg_attr(kestrel_isa = "avx2", allow(dead_code))]
pub(crate) fn fc_s8(x: &[i8], p: DenseS8<'_>, y: &mut [i8], _scratch: &mut [u8]) {
    let k = x.len();
    debug_assert_eq!(p.weight.len(), y.len() * k);
    for (o, y_o) in y.iter_mut().enumerate() {
        let w_o = &p.weight[o * k..][..k]; // [K]
        let mut sum = 0i32;
        for (&w, &x) in w_o.iter().zip(x) {
            sum = sum.wrapping_add(w as i32 * (x as i32 - p.zp_in));
        }
        *y_o = p.output(o, sum);
    }
}
