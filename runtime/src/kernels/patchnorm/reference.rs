//! Scalar reference patch normalization, in place on `xy` `[N]` (the whole `[C, H, W]`
//! input in CHW order): the specification.
//!
//! ```text
//! m = (Σ x) / N            x ← x − m
//! contrast = Some(eps):    r = sqrt((Σ x²) / N)   x ← x / max(r, eps)
//! ```
//! Sums run in f32 from 0 in CHW order; `N` is converted to f32 once.

use kestrel_format::quant::{dequantize, quantize_f32};
use kestrel_format::QParams;

/// f32 activations (also [`crate::sparse::Problem::preprocess`]'s normalization).
pub(crate) fn patchnorm_f32(xy: &mut [f32], contrast: Option<f32>) {
    let n = xy.len() as f32;
    let mut sum = 0.0f32;
    for &v in xy.iter() {
        sum += v;
    }
    let m = sum / n;
    let mut sq = 0.0f32;
    for v in xy.iter_mut() {
        *v -= m;
        sq += *v * *v;
    }
    if let Some(eps) = contrast {
        let d = libm::sqrtf(sq / n).max(eps);
        for v in xy.iter_mut() {
            *v /= d;
        }
    }
}

/// int8 activations: [`patchnorm_f32`]'s arithmetic on the dequantized codes (`qi`), each
/// result quantized with `qo` ([`quantize_f32`]). No f32 copy is kept: the statistics are
/// recomputed from the codes.
pub(crate) fn patchnorm_s8(xy: &mut [i8], qi: QParams, contrast: Option<f32>, qo: QParams) {
    let x = |q: i8| dequantize(q, qi.scale, qi.zero_point);
    let n = xy.len() as f32;
    let mut sum = 0.0f32;
    for &q in xy.iter() {
        sum += x(q);
    }
    let m = sum / n;
    let mut sq = 0.0f32;
    for &q in xy.iter() {
        let v = x(q) - m;
        sq += v * v;
    }
    let d = contrast.map(|eps| libm::sqrtf(sq / n).max(eps));
    for q in xy.iter_mut() {
        let v = x(*q) - m;
        let v = match d {
            Some(d) => v / d,
            None => v,
        };
        *q = quantize_f32(v, qo.scale, qo.zero_point);
    }
}
