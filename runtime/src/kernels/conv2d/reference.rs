//! Scalar reference convolutions: the specification.
//!
//! Shapes: `x` `[C, H, W]`, `weight` `[OC, C, KH, KW]`, `bias` `[OC]`, `y` `[OC, OH, OW]`,
//! with `OH = (H + 2·pad − KH) / stride + 1` (likewise `OW`).
//!
//! `y[o,i,j] = bias[o] + Σ_{c,p,q} weight[o,c,p,q] · x[c, i·stride+p−pad, j·stride+q−pad]`,
//! where `x` outside `[0,H)×[0,W)` is zero.

use half::f16;
use kestrel_format::ConvGeom;

use crate::kernels::{tap, DenseF, DenseS8, Dims, Widen};

/// f32 weights, f32 activations.
pub(crate) fn conv2d_f32(
    x: &[f32],
    xd: Dims,
    p: DenseF<'_, f32>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [f32],
    _scratch: &mut [u8],
) {
    conv2d_float(x, xd, p, g, yd, y)
}

/// f16 weights widened on the fly; f32 biases, activations and arithmetic.
pub(crate) fn conv2d_f16(
    x: &[f32],
    xd: Dims,
    p: DenseF<'_, f16>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [f32],
    _scratch: &mut [u8],
) {
    conv2d_float(x, xd, p, g, yd, y)
}

/// The float convolution: the sum runs in f32 in `(c, p, q)` order, then the bias is added.
fn conv2d_float<W: Widen>(
    x: &[f32],
    xd: Dims,
    p: DenseF<'_, W>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [f32],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    debug_assert_eq!(p.weight.len(), yd.c * xd.c * g.kh * g.kw);
    let per_out = xd.c * g.kh * g.kw;
    for o in 0..yd.c {
        let w_o = &p.weight[o * per_out..][..per_out]; // [C, KH, KW]
        for i in 0..yd.h {
            for j in 0..yd.w {
                let mut sum = 0.0f32;
                for c in 0..xd.c {
                    for kp in 0..g.kh {
                        let Some(r) = tap(i, kp, g.stride, g.pad, xd.h) else {
                            continue;
                        };
                        for kq in 0..g.kw {
                            let Some(s) = tap(j, kq, g.stride, g.pad, xd.w) else {
                                continue;
                            };
                            let wv = w_o[(c * g.kh + kp) * g.kw + kq].widen();
                            sum += wv * x[(c * xd.h + r) * xd.w + s];
                        }
                    }
                }
                y[(o * yd.h + i) * yd.w + j] = p.bias[o] + sum;
            }
        }
    }
}

/// int8: per output channel `o`,
/// `acc = bias[o] + Σ_{c,p,q} w[o,c,p,q] · (x[c, ·, ·] − zp_in)` in i32 (padding is real
/// zero, i.e. code `zp_in`, and contributes nothing), then
/// `y = clamp(zp_out + requantize(acc, multiplier[o], shift[o]), -128, 127)`.
pub(crate) fn conv2d_s8(
    x: &[i8],
    xd: Dims,
    p: DenseS8<'_>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [i8],
    _scratch: &mut [u8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    debug_assert_eq!(p.weight.len(), yd.c * xd.c * g.kh * g.kw);
    let per_out = xd.c * g.kh * g.kw;
    for o in 0..yd.c {
        let w_o = &p.weight[o * per_out..][..per_out]; // [C, KH, KW]
        for i in 0..yd.h {
            for j in 0..yd.w {
                let mut sum = 0i32;
                for c in 0..xd.c {
                    for kp in 0..g.kh {
                        let Some(r) = tap(i, kp, g.stride, g.pad, xd.h) else {
                            continue;
                        };
                        for kq in 0..g.kw {
                            let Some(s) = tap(j, kq, g.stride, g.pad, xd.w) else {
                                continue;
                            };
                            let wv = w_o[(c * g.kh + kp) * g.kw + kq] as i32;
                            let xv = x[(c * xd.h + r) * xd.w + s] as i32 - p.zp_in;
                            sum = sum.wrapping_add(wv * xv);
                        }
                    }
                }
                y[(o * yd.h + i) * yd.w + j] = p.output(o, sum);
            }
        }
    }
}
