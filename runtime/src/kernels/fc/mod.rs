//! Fully connected (linear) layers: `fc_f32`, `fc_f16`, `fc_s8`. The input `[C, H, W]` is
//! read flattened in CHW order.

mod reference;

use kestrel_format::{Dense, Layer};

use super::{DenseArgs, Elem, Io};

/// See [`DenseArgs::supports`].
pub(crate) fn supports(params: &Dense<'_>, layer: &Layer<'_>, elem: Elem) -> bool {
    DenseArgs::supports(params, layer, elem)
}

/// The reference needs no scratch.
pub(crate) fn scratch_len(_layer: &Layer<'_>, _elem: Elem) -> usize {
    0
}

/// Runs the layer on `io`.
pub(crate) fn dispatch(params: &Dense<'_>, layer: &Layer<'_>, io: Io<'_>) {
    match (DenseArgs::new(params, layer), io) {
        (Some(DenseArgs::F32(p)), Io::F32 { x, y }) => reference::fc_f32(x, p, y),
        (Some(DenseArgs::F16(p)), Io::F32 { x, y }) => reference::fc_f16(x, p, y),
        (Some(DenseArgs::S8(p)), Io::S8 { x, y }) => reference::fc_s8(x, p, y),
        _ => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}
