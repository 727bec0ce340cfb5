//! 2-D convolution (cross-correlation, zero padding): `conv2d_f32`, `conv2d_f16`,
//! `conv2d_s8`.

mod reference;

use kestrel_format::{ConvGeom, Dense, Layer};

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
pub(crate) fn dispatch(geom: ConvGeom, params: &Dense<'_>, layer: &Layer<'_>, io: Io<'_>) {
    let (xd, yd) = (layer.input.into(), layer.output.into());
    match (DenseArgs::new(params, layer), io) {
        (Some(DenseArgs::F32(p)), Io::F32 { x, y }) => reference::conv2d_f32(x, xd, p, geom, yd, y),
        (Some(DenseArgs::F16(p)), Io::F32 { x, y }) => reference::conv2d_f16(x, xd, p, geom, yd, y),
        (Some(DenseArgs::S8(p)), Io::S8 { x, y }) => reference::conv2d_s8(x, xd, p, geom, yd, y),
        _ => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}
