//! ARMv7E-M DSP average pooling: int8 with plain row loops (the sums are short and the
//! reference's per-element window iterator is what costs); f32 runs the reference.

use crate::kernels::Dims;

pub(crate) use super::reference::avgpool_f32;

/// int8: the window sum divided by `k·k`, rounding half away from zero, as the reference.
/// `x` `[C, H, W]`, `y` `[C, OH, OW]`.
pub(crate) fn avgpool_s8(
    x: &[i8],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    y: &mut [i8],
    _scratch: &mut [u8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    let n = (k * k) as i32;
    for c in 0..yd.c {
        for i in 0..yd.h {
            let y_row = &mut y[(c * yd.h + i) * yd.w..][..yd.w]; // [OW]
            let top = (c * xd.h + i * stride) * xd.w; // x[c, i·stride, 0]
            for (j, out) in y_row.iter_mut().enumerate() {
                let mut sum = 0i32;
                for p in 0..k {
                    for &v in &x[top + p * xd.w + j * stride..][..k] {
                        sum += v as i32;
                    }
                }
                let mean = if sum >= 0 {
                    (sum + n / 2) / n
                } else {
                    (sum - n / 2) / n
                };
                *out = mean.clamp(-128, 127) as i8;
            }
        }
    }
}
