//! Per-sample patch normalization (sparse-code encoders), in place: `patchnorm_f32`,
//! `patchnorm_s8`.

pub(crate) mod reference;

use kestrel_format::Layer;

use super::{Elem, InPlace};

/// f32 always; int8 needs both quantizations.
pub(crate) fn supports(layer: &Layer<'_>, elem: Elem) -> bool {
    elem == Elem::F32 || (layer.in_quant.is_some() && layer.out_quant.is_some())
}

/// In place, no scratch (int8 recomputes the statistics from the codes).
pub(crate) fn scratch_len(_layer: &Layer<'_>, _elem: Elem) -> usize {
    0
}

/// Runs the layer on `xy`.
pub(crate) fn dispatch(contrast: Option<f32>, layer: &Layer<'_>, xy: InPlace<'_>) {
    match (xy, layer.in_quant, layer.out_quant) {
        #[cfg(feature = "f32")]
        (InPlace::F32(xy), ..) => reference::patchnorm_f32(xy, contrast),
        #[cfg(feature = "int8")]
        (InPlace::S8(xy), Some(qi), Some(qo)) => reference::patchnorm_s8(xy, qi, contrast, qo),
        _ => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}
