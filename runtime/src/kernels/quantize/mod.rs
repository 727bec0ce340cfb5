//! The input stage (pixels or normalized values into the first activation buffer) and the
//! output dequantization of [`crate::Plan::run_f32`].

pub(crate) mod reference;
#[cfg(kestrel_isa = "avx2")]
pub(crate) mod x86;

// The variant this build runs (see `kernels/mod.rs`); same functions as `reference.rs`.
#[cfg(not(any(kestrel_isa = "avx2")))]
pub(crate) use reference as isa;
#[cfg(kestrel_isa = "avx2")]
pub(crate) use x86 as isa;

use super::table::Kernels;
use kestrel_format::{InputSpec, QParams};

use super::{Elem, InPlace};

/// What the caller hands in (the public [`crate::Input`], re-stated here so that the
/// kernels do not depend on the plan).
#[derive(Clone, Copy)]
pub(crate) enum Source<'i> {
    Pixels(&'i [u8]),
    Normalized(&'i [f32]),
}

/// f32 activations always; int8 activations need the input quantization.
pub(crate) fn supports(spec: &InputSpec, elem: Elem) -> bool {
    elem == Elem::F32 || spec.quant.is_some()
}

/// Writes the model input into `dst` (same length as the source).
pub(crate) fn dispatch(kernels: &Kernels, spec: &InputSpec, src: Source<'_>, dst: InPlace<'_>) {
    let (mean, std) = (spec.mean, spec.std);
    match (src, dst, spec.quant) {
        #[cfg(feature = "f32")]
        (Source::Pixels(p), InPlace::F32(y), _) => {
            kernel!(kernels, quantize::pixels_f32)(p, mean, std, y)
        }
        #[cfg(feature = "int8")]
        (Source::Pixels(p), InPlace::S8(y), Some(q)) => {
            kernel!(kernels, quantize::pixels_s8)(p, mean, std, q, y)
        }
        #[cfg(feature = "f32")]
        (Source::Normalized(x), InPlace::F32(y), _) => kernel!(kernels, quantize::copy_f32)(x, y),
        #[cfg(feature = "int8")]
        (Source::Normalized(x), InPlace::S8(y), Some(q)) => {
            kernel!(kernels, quantize::quantize_s8)(x, q, y)
        }
        #[cfg(feature = "int8")]
        (_, InPlace::S8(_), None) => debug_assert!(false, "Plan::new checked the quantization"),
        #[cfg(not(all(feature = "f32", feature = "int8")))]
        _ => debug_assert!(false, "Plan::new admits only the precisions built"),
    }
}

/// Dequantizes int8 output codes into `y`.
#[cfg(feature = "int8")]
pub(crate) fn dequantize(kernels: &Kernels, q: &[i8], qp: QParams, y: &mut [f32]) {
    kernel!(kernels, quantize::dequantize_s8)(q, qp, y)
}
