//! Scalar reference `tanh(x)`, in place on `xy` `[N]`: the specification.

/// `tanh(x)` with `libm::tanhf`.
pub(crate) fn tanh_f32(xy: &mut [f32]) {
    for v in xy {
        *v = libm::tanhf(*v);
    }
}
