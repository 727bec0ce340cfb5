//! Scalar reference average pooling: the specification.
//!
//! Shapes: `x` `[C, H, W]`, `y` `[C, OH, OW]` with `OH = (H − k) / stride + 1` (likewise
//! `OW`); `y[c,i,j] = Σ_{p,q < k} x[c, i·stride + p, j·stride + q] / k²`.

use crate::kernels::{pool_window, Dims};

/// f32: the sum in `(p, q)` order, divided by `k·k` as f32.
pub(crate) fn avgpool_f32(
    x: &[f32],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [f32],
    _scratch: &mut [u8],
) {
    debug_assert_eq!(y.len(), yd.len());
    let n = (k * k) as f32;
    for (o, y) in y.iter_mut().enumerate() {
        let sum = pool_window(x, xd, k, stride, yd, o).fold(0.0f32, |s, v| s + v);
        *y = sum / n;
    }
}

/// int8: the i32 sum of codes divided by `n = k·k`, rounding half away from zero
/// (`(sum + n/2) / n` for `sum ≥ 0`, else `(sum − n/2) / n`, `/` truncating). The output
/// keeps the input's quantization: the mean of the codes is the code of the mean.
pub(crate) fn avgpool_s8(
    x: &[i8],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [i8],
    _scratch: &mut [u8],
) {
    debug_assert_eq!(y.len(), yd.len());
    // k ≤ 255, so n ≤ 65 025 and |sum| ≤ 128·n fits in i32.
    let n = (k * k) as i32;
    for (o, y) in y.iter_mut().enumerate() {
        let sum = pool_window(x, xd, k, stride, yd, o).fold(0i32, |s, v| s + v as i32);
        let mean = if sum >= 0 {
            (sum + n / 2) / n
        } else {
            (sum - n / 2) / n
        };
        *y = mean.clamp(-128, 127) as i8;
    }
}
