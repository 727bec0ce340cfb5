//! Scalar reference input normalization and (de)quantization: the specification. All
//! tensors are `[N]` (the input shape flattened in CHW order).

use kestrel_format::quant::{dequantize, quantize_f32};
use kestrel_format::QParams;

/// `x = (p / 255 − mean) / std`, exactly this f32 expression.
#[inline(always)]
fn normalize(p: u8, mean: f32, std: f32) -> f32 {
    (p as f32 / 255.0 - mean) / std
}

/// Pixels `0..=255` to normalized f32.
pub(crate) fn pixels_f32(p: &[u8], mean: f32, std: f32, y: &mut [f32]) {
    debug_assert_eq!(p.len(), y.len());
    for (y, &p) in y.iter_mut().zip(p) {
        *y = normalize(p, mean, std);
    }
}

/// Already normalized f32, copied.
pub(crate) fn copy_f32(x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (y, &x) in y.iter_mut().zip(x) {
        *y = x;
    }
}

/// Pixels `0..=255` to normalized f32, then to int8 codes with [`quantize_f32`].
pub(crate) fn pixels_s8(p: &[u8], mean: f32, std: f32, q: QParams, y: &mut [i8]) {
    debug_assert_eq!(p.len(), y.len());
    for (y, &p) in y.iter_mut().zip(p) {
        *y = quantize_f32(normalize(p, mean, std), q.scale, q.zero_point);
    }
}

/// Normalized f32 to int8 codes with [`quantize_f32`].
pub(crate) fn quantize_s8(x: &[f32], q: QParams, y: &mut [i8]) {
    debug_assert_eq!(x.len(), y.len());
    for (y, &x) in y.iter_mut().zip(x) {
        *y = quantize_f32(x, q.scale, q.zero_point);
    }
}

/// int8 codes to f32 with [`dequantize`]: `scale · (q − zero_point)`.
pub(crate) fn dequantize_s8(q: &[i8], qp: QParams, y: &mut [f32]) {
    debug_assert_eq!(q.len(), y.len());
    for (y, &q) in y.iter_mut().zip(q) {
        *y = dequantize(q, qp.scale, qp.zero_point);
    }
}
