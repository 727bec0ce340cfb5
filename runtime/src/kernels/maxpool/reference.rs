//! Scalar reference max pooling: the specification.
//!
//! Shapes: `x` `[C, H, W]`, `y` `[C, OH, OW]` with `OH = (H − k) / stride + 1` (likewise
//! `OW`); `y[c,i,j] = max_{p,q < k} x[c, i·stride + p, j·stride + q]`.

use crate::kernels::{pool_window, Dims};

/// f32: the maximum, folded in `(p, q)` order with `f32::max` (which skips NaN).
pub(crate) fn maxpool_f32(
    x: &[f32],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [f32],
    _scratch: &mut [u8],
) {
    debug_assert_eq!(y.len(), yd.len());
    for (o, y) in y.iter_mut().enumerate() {
        let mut window = pool_window(x, xd, k, stride, yd, o);
        let first = window.next().unwrap_or(0.0); // k ≥ 1: never empty
        *y = window.fold(first, f32::max);
    }
}

/// int8: the maximum code (the quantization is monotonic and unchanged).
pub(crate) fn maxpool_s8(
    x: &[i8],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [i8],
    _scratch: &mut [u8],
) {
    debug_assert_eq!(y.len(), yd.len());
    for (o, y) in y.iter_mut().enumerate() {
        *y = pool_window(x, xd, k, stride, yd, o).max().unwrap_or(0); // never empty
    }
}
