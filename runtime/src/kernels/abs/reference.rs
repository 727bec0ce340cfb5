//! Scalar reference `|x|`, in place on `xy` `[N]`: the specification.

/// `|x|` with `libm::fabsf`.
pub(crate) fn abs_f32(xy: &mut [f32]) {
    for v in xy {
        *v = libm::fabsf(*v);
    }
}
