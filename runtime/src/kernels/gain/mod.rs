//! Per-channel gain (sparse-code encoders), in place: `gain_f32`, `gain_s8`.

pub(crate) mod reference;

use kestrel_format::Layer;

use super::{Elem, InPlace};

/// f32 activations without a rescaling; int8 activations with one and both quantizations.
pub(crate) fn supports(rescale: bool, layer: &Layer<'_>, elem: Elem) -> bool {
    match elem {
        Elem::F32 => !rescale,
        Elem::I8 => rescale && layer.in_quant.is_some() && layer.out_quant.is_some(),
    }
}

/// In place, no scratch.
pub(crate) fn scratch_len(_layer: &Layer<'_>, _elem: Elem) -> usize {
    0
}

/// Runs the layer on `xy`.
pub(crate) fn dispatch(
    gain: &[f32],
    rescale: Option<(&[i32], &[i32])>,
    layer: &Layer<'_>,
    xy: InPlace<'_>,
) {
    match (xy, rescale, layer.in_quant, layer.out_quant) {
        #[cfg(feature = "f32")]
        (InPlace::F32(xy), None, ..) => reference::gain_f32(xy, gain),
        #[cfg(feature = "int8")]
        (InPlace::S8(xy), Some(r), Some(qi), Some(qo)) => {
            reference::gain_s8(xy, qi.zero_point, r, qo.zero_point)
        }
        _ => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}
