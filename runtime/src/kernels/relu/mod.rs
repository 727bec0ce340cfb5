//! ReLU, in place: `relu_f32`, `relu_s8`.

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
