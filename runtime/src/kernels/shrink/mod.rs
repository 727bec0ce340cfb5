//! Soft threshold per channel (sparse-code encoders), in place: `shrink_f32`, `shrink_s8`.

pub(crate) mod reference;

use kestrel_format::{Layer, Thresholds};

use super::{Elem, InPlace};

/// f32 thresholds on f32 activations; i32 thresholds on int8 activations with a zero point.
pub(crate) fn supports(theta: &Thresholds<'_>, layer: &Layer<'_>, elem: Elem) -> bool {
    match theta {
        Thresholds::F32(_) => elem == Elem::F32,
        Thresholds::I32(_) => elem == Elem::I8 && layer.in_quant.is_some(),
    }
}

/// In place, no scratch.
pub(crate) fn scratch_len(_layer: &Layer<'_>, _elem: Elem) -> usize {
    0
}

/// Runs the layer on `xy`.
pub(crate) fn dispatch(theta: &Thresholds<'_>, layer: &Layer<'_>, xy: InPlace<'_>) {
    match (theta, xy, layer.in_quant) {
        #[cfg(feature = "f32")]
        (Thresholds::F32(t), InPlace::F32(xy), _) => reference::shrink_f32(xy, t),
        #[cfg(feature = "int8")]
        (Thresholds::I32(t), InPlace::S8(xy), Some(q)) => reference::shrink_s8(xy, q.zero_point, t),
        _ => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}
