//! Scalar reference local contrast normalization: the specification.
//!
//! Shapes: `x`, `y` `[C, H, W]`; `window` `[S, S]` (stored, sums to 1), `r = S / 2`;
//! scratch: the maps `m`, `s` `[H, W]`. `x` and `v` are zero outside `[0,H)×[0,W)`.
//!
//! ```text
//! m[j,k] = Σ_{i,p,q} window[p,q] · x[i, j+p−r, k+q−r] / C      (weighted local mean)
//! v      = x − m                                               (broadcast over channels)
//! s[j,k] = sqrt(Σ_{i,p,q} window[p,q] · v[i, j+p−r, k+q−r]² / C)
//! c      = Σ_{j,k} s[j,k] / (H·W)
//! y      = v / max(max(c, s[j,k]), eps)
//! ```
//! Sums run in f32 in the order written (`i`, then `p`, then `q`; `j`, then `k`).

use kestrel_format::quant::{dequantize, quantize_f32};
use kestrel_format::QParams;

use crate::kernels::{tap, Dims};

/// The layer's constants.
#[derive(Clone, Copy)]
pub(crate) struct Lcn<'p> {
    /// Window side `S` (odd).
    pub size: usize,
    /// Floor of the divisor.
    pub eps: f32,
    /// `[S, S]`.
    pub window: &'p [f32],
}

/// f32 activations.
pub(crate) fn lcn_f32(x: &[f32], xd: Dims, lcn: Lcn<'_>, scratch: &mut [f32], y: &mut [f32]) {
    debug_assert_eq!(y.len(), xd.len());
    lcn_core(|n| x[n], xd, lcn, scratch, |n, v| y[n] = v);
}

/// int8 activations: exactly `lcn_f32` between [`dequantize`] with `qi` and
/// [`quantize_f32`] with `qo`, element by element (so no f32 copy of the tensor is kept).
pub(crate) fn lcn_s8(
    x: &[i8],
    qi: QParams,
    xd: Dims,
    lcn: Lcn<'_>,
    scratch: &mut [f32],
    qo: QParams,
    y: &mut [i8],
) {
    debug_assert_eq!(y.len(), xd.len());
    let x_at = |n: usize| dequantize(x[n], qi.scale, qi.zero_point);
    lcn_core(x_at, xd, lcn, scratch, |n, v| {
        y[n] = quantize_f32(v, qo.scale, qo.zero_point)
    });
}

/// The computation, reading the input through `x_at(flat index)` and writing each output
/// through `out(flat index, value)`; `scratch` holds `m` then `s`.
fn lcn_core(
    x_at: impl Fn(usize) -> f32,
    xd: Dims,
    lcn: Lcn<'_>,
    scratch: &mut [f32],
    mut out: impl FnMut(usize, f32),
) {
    let hw = xd.h * xd.w;
    debug_assert_eq!(scratch.len(), 2 * hw);
    debug_assert_eq!(lcn.window.len(), lcn.size * lcn.size);
    let (m, s) = scratch.split_at_mut(hw);
    let channels = xd.c as f32;

    for j in 0..xd.h {
        for k in 0..xd.w {
            let x = |i: usize, row: usize, col: usize| x_at((i * xd.h + row) * xd.w + col);
            m[j * xd.w + k] = window_sum(xd, lcn, j, k, x) / channels;
        }
    }
    let mut s_sum = 0.0f32;
    for j in 0..xd.h {
        for k in 0..xd.w {
            let v2 = |i: usize, row: usize, col: usize| {
                let v = x_at((i * xd.h + row) * xd.w + col) - m[row * xd.w + col];
                v * v
            };
            let sd = libm::sqrtf(window_sum(xd, lcn, j, k, v2) / channels);
            s[j * xd.w + k] = sd;
            s_sum += sd;
        }
    }
    let c = s_sum / hw as f32;
    for i in 0..xd.c {
        for jk in 0..hw {
            let n = i * hw + jk;
            let v = x_at(n) - m[jk];
            out(n, v / c.max(s[jk]).max(lcn.eps));
        }
    }
}

/// `Σ_{i,p,q} window[p,q] · f(i, row, col)` over the window centred on `(j, k)`, skipping
/// the zero padding.
fn window_sum(
    xd: Dims,
    lcn: Lcn<'_>,
    j: usize,
    k: usize,
    f: impl Fn(usize, usize, usize) -> f32,
) -> f32 {
    let r = lcn.size / 2;
    let mut acc = 0.0f32;
    for i in 0..xd.c {
        for p in 0..lcn.size {
            let Some(row) = tap(j, p, 1, r, xd.h) else {
                continue;
            };
            for q in 0..lcn.size {
                let Some(col) = tap(k, q, 1, r, xd.w) else {
                    continue;
                };
                acc += lcn.window[p * lcn.size + q] * f(i, row, col);
            }
        }
    }
    acc
}
