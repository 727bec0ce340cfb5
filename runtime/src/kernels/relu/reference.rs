//! Scalar reference ReLU, in place on `xy` `[N]`: the specification.

/// `max(x, 0)`.
pub(crate) fn relu_f32(xy: &mut [f32]) {
    for v in xy {
        *v = v.max(0.0);
    }
}

/// `max(q, zero_point)`: the code of real 0 is `zero_point`, and the output keeps the
/// input's quantization.
pub(crate) fn relu_s8(xy: &mut [i8], zero_point: i32) {
    // The validator keeps zero points in [-128, 127].
    let zp = zero_point.clamp(-128, 127) as i8;
    for v in xy {
        *v = (*v).max(zp);
    }
}
