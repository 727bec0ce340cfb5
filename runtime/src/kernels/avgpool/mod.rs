//! Average pooling, `k × k` window, stride, no padding: `avgpool_f32`, `avgpool_s8` (int8 output
//! keeps the input's quantization).

mod reference;

use kestrel_format::Layer;

use super::{Elem, Io};

/// Every activation type.
pub(crate) fn supports(_layer: &Layer<'_>, _elem: Elem) -> bool {
    true
}

/// The reference needs no scratch.
pub(crate) fn scratch_len(_layer: &Layer<'_>, _elem: Elem) -> usize {
    0
}

/// Runs the layer on `io`.
pub(crate) fn dispatch(k: usize, stride: usize, layer: &Layer<'_>, io: Io<'_>) {
    let (xd, yd) = (layer.input.into(), layer.output.into());
    match io {
        Io::F32 { x, y } => reference::avgpool_f32(x, xd, k, stride, yd, y),
        Io::S8 { x, y } => reference::avgpool_s8(x, xd, k, stride, yd, y),
    }
}
