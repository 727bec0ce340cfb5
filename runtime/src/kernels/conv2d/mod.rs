//! 2-D convolution (cross-correlation, zero padding): `conv2d_f32`, `conv2d_f16`,
//! `conv2d_s8`.

mod reference;

use kestrel_format::{ConvGeom, Dense, Layer};

use super::{DenseF, DenseS8, Elem, Io};

/// f32 and f16 weights run on f32 activations, int8 weights on int8 activations with both
/// quantizations known.
pub(crate) fn supports(params: &Dense<'_>, layer: &Layer<'_>, elem: Elem) -> bool {
    match (params, elem) {
        (Dense::F32 { .. } | Dense::F16 { .. }, Elem::F32) => true,
        (Dense::I8 { .. }, Elem::I8) => layer.in_quant.is_some() && layer.out_quant.is_some(),
        _ => false,
    }
}

/// The reference needs no scratch.
pub(crate) fn scratch_len(_layer: &Layer<'_>, _elem: Elem) -> usize {
    0
}

/// Runs the layer on `io`.
pub(crate) fn dispatch(geom: ConvGeom, params: &Dense<'_>, layer: &Layer<'_>, io: Io<'_>) {
    let (xd, yd) = (layer.input.into(), layer.output.into());
    match (*params, io, layer.in_quant, layer.out_quant) {
        (Dense::F32 { weight, bias }, Io::F32 { x, y }, ..) => {
            reference::conv2d_f32(x, xd, DenseF { weight, bias }, geom, yd, y)
        }
        (Dense::F16 { weight, bias }, Io::F32 { x, y }, ..) => {
            reference::conv2d_f16(x, xd, DenseF { weight, bias }, geom, yd, y)
        }
        (
            Dense::I8 {
                weight,
                bias,
                multiplier,
                shift,
                ..
            },
            Io::S8 { x, y },
            Some(qi),
            Some(qo),
        ) => {
            let p = DenseS8 {
                weight,
                bias,
                multiplier,
                shift,
                zp_in: qi.zero_point,
                zp_out: qo.zero_point,
            };
            reference::conv2d_s8(x, xd, p, geom, yd, y)
        }
        _ => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}
