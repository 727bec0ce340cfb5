//! ReLU, in place: `relu_f32`, `relu_s8`.
//!
//! No SIMD variant, because none would pay: the reference's loops (`max` per element)
//! compile to vector instructions on every target with SIMD (SSE2, the x86-64 baseline;
//! NEON on aarch64). int8 `lenet`, `kestrel eval --layer-times` medians, AMD EPYC (Zen 4),
//! plain release build: ReLU on 12×28×28 0.27 µs, on 24×10×10 0.10 µs, of a 19.2 µs
//! network (f32 `lenet`: 0.67 µs and 0.20 µs of 123 µs).

mod reference;

use kestrel_format::Layer;

use super::{Elem, InPlace};

/// f32 always; int8 needs the input's zero point.
pub(crate) fn supports(layer: &Layer<'_>, elem: Elem) -> bool {
    elem == Elem::F32 || layer.in_quant.is_some()
}

/// In place, no scratch.
pub(crate) fn scratch_len(_layer: &Layer<'_>, _elem: Elem) -> usize {
    0
}

/// Runs the layer on `xy`.
pub(crate) fn dispatch(layer: &Layer<'_>, xy: InPlace<'_>) {
    match (xy, layer.in_quant) {
        #[cfg(feature = "f32")]
        (InPlace::F32(xy), _) => reference::relu_f32(xy),
        #[cfg(feature = "int8")]
        (InPlace::S8(xy), Some(q)) => reference::relu_s8(xy, q.zero_point),
        #[cfg(feature = "int8")]
        (InPlace::S8(_), None) => debug_assert!(false, "Plan::new admits only supported layers"),
        #[cfg(not(all(feature = "f32", feature = "int8")))]
        _ => debug_assert!(false, "Plan::new admits only the precisions built"),
    }
}
