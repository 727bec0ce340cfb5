//! Straightforward implementations written independently of the kernels: explicit padded
//! copies, f64 for float math, i64/i128 for integer math. The tests compare the runtime
//! against these.

use std::{vec, vec::Vec};

use kestrel_format::{Dense, Lateral, Layer, LayerKind, QParams, Shape, Thresholds};

fn dims(s: Shape) -> (usize, usize, usize) {
    (s.c as usize, s.h as usize, s.w as usize)
}

/// `[C, H, W]` → `[C, H + 2·ph, W + 2·pw]` filled with `fill` around.
fn pad<T: Copy>(x: &[T], s: Shape, ph: usize, pw: usize, fill: T) -> Vec<T> {
    let (c, h, w) = dims(s);
    let (hp, wp) = (h + 2 * ph, w + 2 * pw);
    let mut out = vec![fill; c * hp * wp];
    for ci in 0..c {
        for i in 0..h {
            for j in 0..w {
                out[(ci * hp + i + ph) * wp + j + pw] = x[(ci * h + i) * w + j];
            }
        }
    }
    out
}

/// Real-valued weights and biases of a convolution or linear layer, as f64: f16 widened,
/// int8 dequantized (`w·weight_scale[o]`, `bias·in_scale·weight_scale[o]`).
pub(crate) fn real_params(d: &Dense<'_>, in_quant: Option<QParams>) -> (Vec<f64>, Vec<f64>) {
    match *d {
        Dense::F32 { weight, bias } => (
            weight.iter().map(|&v| v as f64).collect(),
            bias.iter().map(|&v| v as f64).collect(),
        ),
        Dense::F16 { weight, bias } => (
            weight.iter().map(|v| v.to_f64()).collect(),
            bias.iter().map(|&v| v as f64).collect(),
        ),
        Dense::I8 {
            weight,
            bias,
            weight_scale,
            ..
        } => {
            let s_in = in_quant.expect("int8 layer has an input scale").scale as f64;
            let per_out = weight.len() / bias.len();
            let w = weight
                .iter()
                .enumerate()
                .map(|(n, &q)| q as f64 * weight_scale[n / per_out] as f64)
                .collect();
            let b = bias
                .iter()
                .zip(weight_scale)
                .map(|(&b, &s)| b as f64 * s_in * s as f64)
                .collect();
            (w, b)
        }
    }
}

/// One layer in real (f64) arithmetic. For int8 layers this is the dequantized math: feed
/// dequantized inputs and quantize the result to compare.
pub(crate) fn real_layer(layer: &Layer<'_>, x: &[f64]) -> Vec<f64> {
    let (c, h, w) = dims(layer.input);
    let (oc, oh, ow) = dims(layer.output);
    match layer.kind {
        LayerKind::Conv2d { geom, params } => {
            let (wt, b) = real_params(&params, layer.in_quant);
            let xp = pad(x, layer.input, geom.pad, geom.pad, 0.0);
            let (hp, wp) = (h + 2 * geom.pad, w + 2 * geom.pad);
            let mut y = vec![0.0; oc * oh * ow];
            for o in 0..oc {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = b[o];
                        for ci in 0..c {
                            for p in 0..geom.kh {
                                for q in 0..geom.kw {
                                    let wv = wt[((o * c + ci) * geom.kh + p) * geom.kw + q];
                                    let r = i * geom.stride + p;
                                    let s = j * geom.stride + q;
                                    acc += wv * xp[(ci * hp + r) * wp + s];
                                }
                            }
                        }
                        y[(o * oh + i) * ow + j] = acc;
                    }
                }
            }
            y
        }
        LayerKind::Linear { params } => {
            let (wt, b) = real_params(&params, layer.in_quant);
            (0..oc)
                .map(|o| {
                    b[o] + (0..x.len())
                        .map(|k| wt[o * x.len() + k] * x[k])
                        .sum::<f64>()
                })
                .collect()
        }
        LayerKind::Relu => x.iter().map(|&v| if v > 0.0 { v } else { 0.0 }).collect(),
        LayerKind::Tanh { .. } => x.iter().map(|v| v.tanh()).collect(),
        LayerKind::Abs { .. } => x.iter().map(|v| v.abs()).collect(),
        LayerKind::MaxPool2d { k, stride } => pool(x, layer, k, stride, |win| {
            win.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        }),
        LayerKind::AvgPool2d { k, stride } => pool(x, layer, k, stride, |win| {
            win.iter().sum::<f64>() / win.len() as f64
        }),
        LayerKind::Lcn { size, eps, window } => lcn(x, layer.input, size, eps as f64, window),
        LayerKind::Flatten => x.to_vec(),
        LayerKind::PatchNorm { contrast } => patch_norm(x, contrast.map(|e| e as f64)),
        LayerKind::Shrink { theta } => {
            let Thresholds::F32(t) = theta else {
                panic!("real shrink needs float thresholds")
            };
            let hw = x.len() / t.len();
            (0..x.len())
                .map(|n| shrink(x[n], t[n / hw] as f64))
                .collect()
        }
        LayerKind::Gain { gain, .. } => {
            let hw = x.len() / gain.len();
            (0..x.len()).map(|n| gain[n / hw] as f64 * x[n]).collect()
        }
        LayerKind::Lista { steps, lateral } => lista(x, steps, lateral),
        LayerKind::Dictionary { .. } => x.to_vec(),
    }
}

/// `sign(v)·max(|v| − t, 0)`.
pub(crate) fn shrink(v: f64, t: f64) -> f64 {
    v.signum() * (v.abs() - t).max(0.0)
}

/// Mean removal, then division by `max(RMS, eps)`, in f64.
pub(crate) fn patch_norm(x: &[f64], eps: Option<f64>) -> Vec<f64> {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v: Vec<f64> = x.iter().map(|v| v - m).collect();
    let Some(eps) = eps else { return v };
    let r = (v.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
    v.iter().map(|v| v / r.max(eps)).collect()
}

/// The LISTA recurrence in f64 on real `S` (f16 widened, int8 dequantized per row).
fn lista(b: &[f64], steps: usize, lateral: Lateral<'_>) -> Vec<f64> {
    let n = b.len();
    let (s, theta): (Vec<f64>, Vec<f64>) = match lateral {
        Lateral::F32 { s, theta } => (
            s.iter().map(|&v| v as f64).collect(),
            theta.iter().map(|&v| v as f64).collect(),
        ),
        Lateral::F16 { s, theta } => (
            s.iter().map(|v| v.to_f64()).collect(),
            theta.iter().map(|&v| v as f64).collect(),
        ),
        Lateral::I8 { .. } => panic!("int8 LISTA is checked on codes"),
    };
    let mut h: Vec<f64> = (0..n)
        .map(|i| shrink(b[i], step_theta(&theta, n, 0)[i]))
        .collect();
    for t in 1..=steps {
        let theta = step_theta(&theta, n, t);
        h = (0..n)
            .map(|i| {
                let sh: f64 = (0..n).map(|j| s[j * n + i] * h[j]).sum();
                shrink(b[i] + sh, theta[i])
            })
            .collect();
    }
    h
}

/// Step `t`'s thresholds: `theta` is one `[n]` for every step or `[(steps + 1)·n]`.
fn step_theta<T>(theta: &[T], n: usize, t: usize) -> &[T] {
    if theta.len() == n {
        theta
    } else {
        &theta[t * n..(t + 1) * n]
    }
}

/// Pools every `k × k` window with `f`.
fn pool<T: Copy, Y>(
    x: &[T],
    layer: &Layer<'_>,
    k: usize,
    stride: usize,
    f: impl Fn(&[T]) -> Y,
) -> Vec<Y> {
    let (c, h, w) = dims(layer.input);
    let (_, oh, ow) = dims(layer.output);
    let mut y = Vec::new();
    for ci in 0..c {
        for i in 0..oh {
            for j in 0..ow {
                let mut win = Vec::new();
                for p in 0..k {
                    for q in 0..k {
                        win.push(x[(ci * h + i * stride + p) * w + j * stride + q]);
                    }
                }
                y.push(f(&win));
            }
        }
    }
    y
}

/// Local contrast normalization in f64 with explicit zero-padded copies.
fn lcn(x: &[f64], s: Shape, size: usize, eps: f64, window: &[f32]) -> Vec<f64> {
    let (c, h, w) = dims(s);
    let r = size / 2;
    let (hp, wp) = (h + 2 * r, w + 2 * r);
    let weighted_mean = |t: &[f64]| {
        let tp = pad(t, s, r, r, 0.0);
        let mut m = vec![0.0; h * w];
        for j in 0..h {
            for k in 0..w {
                let mut acc = 0.0;
                for ci in 0..c {
                    for p in 0..size {
                        for q in 0..size {
                            acc += window[p * size + q] as f64 * tp[(ci * hp + j + p) * wp + k + q];
                        }
                    }
                }
                m[j * w + k] = acc / c as f64;
            }
        }
        m
    };
    let m = weighted_mean(x);
    let v: Vec<f64> = (0..x.len()).map(|n| x[n] - m[n % (h * w)]).collect();
    let v2: Vec<f64> = v.iter().map(|v| v * v).collect();
    let sd: Vec<f64> = weighted_mean(&v2).iter().map(|v| v.sqrt()).collect();
    let mean_sd = sd.iter().sum::<f64>() / (h * w) as f64;
    (0..x.len())
        .map(|n| v[n] / mean_sd.max(sd[n % (h * w)]).max(eps))
        .collect()
}

/// `round(x / scale) + zero_point`, half away from zero, clamped to int8.
pub(crate) fn quantize(x: f64, q: QParams) -> i8 {
    ((x / q.scale as f64).round() + q.zero_point as f64).clamp(-128.0, 127.0) as i8
}

/// `scale · (q − zero_point)` in f64.
pub(crate) fn dequantize(q: i8, p: QParams) -> f64 {
    p.scale as f64 * (q as i64 - p.zero_point as i64) as f64
}

/// `acc · multiplier · 2^(shift − 31)` rounded half up, in i128.
fn requantize(acc: i64, multiplier: i32, shift: i32) -> i128 {
    let n = 31 - shift;
    let prod = acc as i128 * multiplier as i128;
    (prod + (1i128 << (n - 1))) >> n
}

/// The int8 code of channel `o` for accumulator `acc` (bias included).
fn dense_out(d: &Dense<'_>, o: usize, acc: i64, zp_out: i32) -> i8 {
    let Dense::I8 {
        multiplier, shift, ..
    } = *d
    else {
        panic!("int8 layer with float parameters")
    };
    (zp_out as i128 + requantize(acc, multiplier[o], shift[o])).clamp(-128, 127) as i8
}

/// One int8 layer on codes: exact integer formulas, except LCN (f64 between dequantization
/// and quantization, so within one code of the runtime).
pub(crate) fn int8_layer(layer: &Layer<'_>, x: &[i8]) -> Vec<i8> {
    let qi = layer.in_quant.expect("int8 input quant");
    let qo = layer.out_quant.expect("int8 output quant");
    let (c, h, w) = dims(layer.input);
    let (oc, oh, ow) = dims(layer.output);
    let int_params = |d: &Dense<'_>| match *d {
        Dense::I8 { weight, bias, .. } => (weight.to_vec(), bias.to_vec()),
        _ => panic!("int8 layer with float parameters"),
    };
    match layer.kind {
        LayerKind::Conv2d { geom, params } => {
            let (wt, b) = int_params(&params);
            // Padding is real zero: the code zp_in.
            let xp = pad(x, layer.input, geom.pad, geom.pad, qi.zero_point as i8);
            let (hp, wp) = (h + 2 * geom.pad, w + 2 * geom.pad);
            let mut y = vec![0; oc * oh * ow];
            for o in 0..oc {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut acc = b[o] as i64;
                        for ci in 0..c {
                            for p in 0..geom.kh {
                                for q in 0..geom.kw {
                                    let wv = wt[((o * c + ci) * geom.kh + p) * geom.kw + q];
                                    let (r, s) = (i * geom.stride + p, j * geom.stride + q);
                                    let xv = xp[(ci * hp + r) * wp + s] as i64;
                                    acc += wv as i64 * (xv - qi.zero_point as i64);
                                }
                            }
                        }
                        y[(o * oh + i) * ow + j] = dense_out(&params, o, acc, qo.zero_point);
                    }
                }
            }
            y
        }
        LayerKind::Linear { params } => {
            let (wt, b) = int_params(&params);
            (0..oc)
                .map(|o| {
                    let dot: i64 = (0..x.len())
                        .map(|k| wt[o * x.len() + k] as i64 * (x[k] as i64 - qi.zero_point as i64))
                        .sum();
                    dense_out(&params, o, b[o] as i64 + dot, qo.zero_point)
                })
                .collect()
        }
        LayerKind::Relu => x
            .iter()
            .map(|&q| (q as i32).max(qi.zero_point) as i8)
            .collect(),
        LayerKind::Tanh { table } | LayerKind::Abs { table } => {
            let t = table.expect("int8 table");
            x.iter().map(|&q| t[(q as i16 + 128) as usize]).collect()
        }
        LayerKind::MaxPool2d { k, stride } => {
            pool(x, layer, k, stride, |win| *win.iter().max().unwrap())
        }
        LayerKind::AvgPool2d { k, stride } => pool(x, layer, k, stride, |win| {
            let sum: i64 = win.iter().map(|&q| q as i64).sum();
            (sum as f64 / win.len() as f64).round() as i8 // f64::round: half away from zero
        }),
        LayerKind::Lcn { .. } => {
            let real: Vec<f64> = x.iter().map(|&q| dequantize(q, qi)).collect();
            real_layer(layer, &real)
                .iter()
                .map(|&v| quantize(v, qo))
                .collect()
        }
        LayerKind::Flatten | LayerKind::Dictionary { .. } => x.to_vec(),
        LayerKind::PatchNorm { .. } => {
            let real: Vec<f64> = x.iter().map(|&q| dequantize(q, qi)).collect();
            real_layer(layer, &real)
                .iter()
                .map(|&v| quantize(v, qo))
                .collect()
        }
        LayerKind::Shrink { theta } => {
            let Thresholds::I32(t) = theta else {
                panic!("int8 shrink needs i32 thresholds")
            };
            let hw = x.len() / t.len();
            let zp = qi.zero_point as i64;
            (0..x.len())
                .map(|n| {
                    let d = x[n] as i64 - zp;
                    let t = t[n / hw] as i64;
                    (zp + d.signum() * (d.abs() - t).max(0)) as i8
                })
                .collect()
        }
        LayerKind::Gain { rescale, .. } => {
            let (m, sh) = rescale.expect("int8 gain has a rescaling");
            let hw = x.len() / m.len();
            (0..x.len())
                .map(|n| {
                    let c = n / hw;
                    let r = requantize(x[n] as i64 - qi.zero_point as i64, m[c], sh[c]);
                    (qo.zero_point as i128 + r).clamp(-128, 127) as i8
                })
                .collect()
        }
        LayerKind::Lista { steps, lateral } => lista_s8(x, qi, qo, steps, lateral),
    }
}

/// The int8 LISTA formulas of `kestrel_format::Op::Lista` in wide integers.
fn lista_s8(b: &[i8], qb: QParams, qh: QParams, steps: usize, lateral: Lateral<'_>) -> Vec<i8> {
    let Lateral::I8 {
        s,
        theta,
        in_multiplier,
        in_shift,
        out_multiplier,
        out_shift,
        ..
    } = lateral
    else {
        panic!("int8 LISTA with float S")
    };
    let n = b.len();
    let sat = |v: i128| v.clamp(i32::MIN as i128, i32::MAX as i128);
    let b_acc: Vec<i128> = (0..n)
        .map(|i| {
            let d = b[i] as i64 - qb.zero_point as i64;
            sat(requantize(d, in_multiplier[i], in_shift[i]))
        })
        .collect();
    let out = |step: usize, i: usize, acc: i128| {
        let u = sat(b_acc[i] + acc);
        let t = step_theta(theta, n, step)[i] as i128;
        let v = u.signum() * (u.abs() - t).max(0);
        let r = sat(requantize(v as i64, out_multiplier[i], out_shift[i]));
        (qh.zero_point as i128 + r).clamp(-128, 127) as i8
    };
    let mut h: Vec<i8> = (0..n).map(|i| out(0, i, 0)).collect();
    for step in 1..=steps {
        h = (0..n)
            .map(|i| {
                let acc: i64 = (0..n)
                    .map(|j| s[j * n + i] as i64 * (h[j] as i64 - qh.zero_point as i64))
                    .sum();
                out(step, i, acc as i32 as i128) // the i32 accumulator wraps
            })
            .collect();
    }
    h
}

/// Float comparison: `|got − want| ≤ tol + |want|·tol`.
pub(crate) fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (n, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(
            err <= tol + w.abs() * tol,
            "{what}: element {n}: got {g}, want {w} (error {err:e})"
        );
    }
}

/// int8 comparison within `lsb` codes.
pub(crate) fn assert_codes(got: &[i8], want: &[i8], lsb: i32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (n, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as i32 - w as i32).abs() <= lsb,
            "{what}: element {n}: got {g}, want {w}"
        );
    }
}
