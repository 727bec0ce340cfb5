//! Builds small models for the tests with kestrel-format's writer (a dev-dependency with
//! `std`): a list of [`Spec`]s becomes a validated file with seeded random parameters and,
//! for int8 models, consistent quantization.

use std::{vec, vec::Vec};

use kestrel_format::quant::{dequantize, quantize_f32, quantize_multiplier};
use kestrel_format::{
    encode, AlignedBuf, DataBuilder, InputSpec, LayerDesc, ListaQuant, ModelDesc, Op, Precision,
    Provenance, QParams, Requant, Rescale, Shape,
};

/// SplitMix64: small, seeded, good enough for test data.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi)`.
    pub(crate) fn f32(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
    /// Uniform in `lo..=hi`.
    pub(crate) fn int(&mut self, lo: i32, hi: i32) -> i32 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i32
    }
    pub(crate) fn f32s(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.f32(lo, hi)).collect()
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// One layer of a test model; shapes follow from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Spec {
    Conv {
        oc: u32,
        kh: u8,
        kw: u8,
        stride: u8,
        pad: u8,
    },
    Linear {
        out: u32,
    },
    Relu,
    Tanh,
    Abs,
    MaxPool {
        k: u8,
        stride: u8,
    },
    AvgPool {
        k: u8,
        stride: u8,
    },
    Lcn {
        size: u8,
        eps: f32,
    },
    Flatten,
    /// Patch normalization, with contrast floor `eps` if `Some`.
    PatchNorm {
        contrast: Option<f32>,
    },
    /// Soft threshold with random thresholds.
    Shrink,
    /// Per-channel positive gains.
    Gain,
    /// LISTA on an `[n, 1, 1]` input.
    Lista {
        steps: u8,
    },
    /// The last layer: a random unit-norm dictionary of the model input's `k` by `n`
    /// (the `[n, 1, 1]` input), with `lambda`.
    Dictionary {
        lambda: f32,
    },
}

fn window_out(n: u32, k: u8, stride: u8, pad: u8) -> Option<u32> {
    let padded = n + 2 * pad as u32;
    (k >= 1 && stride >= 1 && padded >= k as u32).then(|| (padded - k as u32) / stride as u32 + 1)
}

impl Spec {
    /// Output shape for `input`, or `None` if the geometry does not fit.
    pub(crate) fn output(self, input: Shape) -> Option<Shape> {
        let Shape { c, h, w } = input;
        match self {
            Spec::Conv {
                oc,
                kh,
                kw,
                stride,
                pad,
            } => {
                if pad >= kh.min(kw) {
                    return None;
                }
                let oh = window_out(h, kh, stride, pad)?;
                let ow = window_out(w, kw, stride, pad)?;
                Some(Shape::new(oc, oh, ow))
            }
            Spec::Linear { out } => Some(Shape::new(out, 1, 1)),
            Spec::MaxPool { k, stride } | Spec::AvgPool { k, stride } => Some(Shape::new(
                c,
                window_out(h, k, stride, 0)?,
                window_out(w, k, stride, 0)?,
            )),
            Spec::Flatten => Some(Shape::new(c * h * w, 1, 1)),
            Spec::Relu
            | Spec::Tanh
            | Spec::Abs
            | Spec::Lcn { .. }
            | Spec::PatchNorm { .. }
            | Spec::Shrink
            | Spec::Gain => Some(input),
            Spec::Lista { .. } | Spec::Dictionary { .. } => (h == 1 && w == 1).then_some(input),
        }
    }
}

/// Every op, valid for a `[3, 9, 7]` input.
pub(crate) const EVERY_OP: &[Spec] = &[
    Spec::Conv {
        oc: 5,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
    },
    Spec::Relu,
    Spec::Lcn { size: 3, eps: 0.05 },
    Spec::MaxPool { k: 2, stride: 1 },
    Spec::Tanh,
    Spec::Conv {
        oc: 3,
        kh: 2,
        kw: 3,
        stride: 2,
        pad: 0,
    },
    Spec::AvgPool { k: 2, stride: 1 },
    Spec::Abs,
    Spec::Flatten,
    Spec::Linear { out: 7 },
];

fn provenance() -> Provenance<'static> {
    Provenance {
        arch: "test",
        dataset: "random",
        train_samples: 0,
        epochs: 0,
        float_accuracy: f32::NAN,
        trainer: "testutil",
    }
}

/// Random int8 quantization of an activation of typical magnitude `range`.
fn act_quant(rng: &mut Rng, range: f32) -> QParams {
    QParams {
        scale: range / 100.0 * rng.f32(0.8, 1.25),
        zero_point: rng.int(-12, 12),
    }
}

/// An int8 table for `f`, from `qi` codes to `qo` codes.
fn table(f: impl Fn(f32) -> f32, qi: QParams, qo: QParams) -> Vec<i8> {
    (-128..=127)
        .map(|q| {
            let x = dequantize(q as i8, qi.scale, qi.zero_point);
            quantize_f32(f(x), qo.scale, qo.zero_point)
        })
        .collect()
}

/// Dense parameters of `out` channels of `per_out` inputs each.
fn dense(
    precision: Precision,
    out: usize,
    per_out: usize,
    qi: Option<QParams>,
    rng: &mut Rng,
    data: &mut DataBuilder,
) -> (
    kestrel_format::TensorRef,
    kestrel_format::TensorRef,
    Option<Requant>,
    Option<QParams>,
) {
    let n = out * per_out;
    let bound = 1.0 / (per_out as f32).sqrt();
    match (precision, qi) {
        (Precision::Int8, Some(qi)) => {
            let w: Vec<i8> = (0..n).map(|_| rng.int(-127, 127) as i8).collect();
            let ws = rng.f32s(out, 0.5, 2.0);
            let bias: Vec<i32> = (0..out).map(|_| rng.int(-3000, 3000)).collect();
            // |acc| ≈ 73·50·√per_out: aim the output at a few dozen codes.
            let qo = QParams {
                scale: qi.scale * 1.25 * (per_out as f32).sqrt() * 100.0,
                zero_point: rng.int(-12, 12),
            };
            let (mult, shift): (Vec<i32>, Vec<i32>) = ws
                .iter()
                .map(|&s| {
                    let real = qi.scale as f64 * s as f64 / qo.scale as f64;
                    quantize_multiplier(real).expect("multiplier in range")
                })
                .unzip();
            let requant = Requant {
                weight_scale: data.f32(&ws),
                multiplier: data.i32(&mult),
                shift: data.i32(&shift),
            };
            (data.i8(&w), data.i32(&bias), Some(requant), Some(qo))
        }
        (Precision::F16, _) => {
            let w = rng.f32s(n, -bound, bound);
            (
                data.f16(&w),
                data.f32(&rng.f32s(out, -0.5, 0.5)),
                None,
                None,
            )
        }
        _ => {
            let w = rng.f32s(n, -bound, bound);
            (
                data.f32(&w),
                data.f32(&rng.f32s(out, -0.5, 0.5)),
                None,
                None,
            )
        }
    }
}

/// A model of `specs` on `input`, with parameters drawn from `seed`. The first `k` layers
/// of a model are the same for every list that starts with the same `k` specs.
///
/// Panics if a spec does not fit its input (test code).
pub(crate) fn build(precision: Precision, input: Shape, specs: &[Spec], seed: u64) -> AlignedBuf {
    let mut rng = Rng::new(seed);
    let mut data = DataBuilder::new();
    let int8 = precision == Precision::Int8;
    let input_quant = int8.then(|| act_quant(&mut rng, 2.0));
    let mut desc = ModelDesc {
        name: "test",
        precision,
        input: InputSpec {
            shape: input,
            mean: 0.3,
            std: 0.4,
            quant: input_quant,
        },
        layers: Default::default(),
        classes: Default::default(),
        provenance: provenance(),
    };
    let (mut shape, mut q) = (input, input_quant);
    for &spec in specs {
        let output = spec.output(shape).expect("spec fits its input");
        let (op, out_quant) = match spec {
            Spec::Conv {
                kh,
                kw,
                stride,
                pad,
                ..
            } => {
                let per_out = (shape.c * kh as u32 * kw as u32) as usize;
                let (weight, bias, requant, qo) = dense(
                    precision,
                    output.c as usize,
                    per_out,
                    q,
                    &mut rng,
                    &mut data,
                );
                let op = Op::Conv2d {
                    kh,
                    kw,
                    stride,
                    pad,
                    weight,
                    bias,
                    requant,
                };
                (op, qo)
            }
            Spec::Linear { out } => {
                let (weight, bias, requant, qo) =
                    dense(precision, out as usize, shape.len(), q, &mut rng, &mut data);
                (
                    Op::Linear {
                        weight,
                        bias,
                        requant,
                    },
                    qo,
                )
            }
            Spec::Relu => (Op::Relu, q),
            Spec::Tanh | Spec::Abs => {
                let (f, qo): (fn(f32) -> f32, _) = match spec {
                    Spec::Tanh => (
                        libm::tanhf,
                        q.map(|_| QParams {
                            scale: 1.0 / 127.0,
                            zero_point: 0,
                        }),
                    ),
                    _ => (
                        libm::fabsf,
                        q.map(|qi| QParams {
                            scale: qi.scale * 0.7,
                            zero_point: -100,
                        }),
                    ),
                };
                let t = q.zip(qo).map(|(qi, qo)| data.i8(&table(f, qi, qo)));
                match spec {
                    Spec::Tanh => (Op::Tanh { table: t }, qo),
                    _ => (Op::Abs { table: t }, qo),
                }
            }
            Spec::MaxPool { k, stride } => (Op::MaxPool2d { k, stride }, q),
            Spec::AvgPool { k, stride } => (Op::AvgPool2d { k, stride }, q),
            Spec::Lcn { size, eps } => {
                let raw = rng.f32s(size as usize * size as usize, 0.2, 1.0);
                let total: f32 = raw.iter().sum();
                let w: Vec<f32> = raw.iter().map(|v| v / total).collect();
                let qo = q.map(|_| act_quant(&mut rng, 3.0));
                let op = Op::Lcn {
                    size,
                    eps,
                    window: data.f32(&w),
                };
                (op, qo)
            }
            Spec::Flatten => (Op::Flatten, q),
            Spec::PatchNorm { contrast } => {
                let qo = q.map(|_| act_quant(&mut rng, 3.0));
                (Op::PatchNorm { contrast }, qo)
            }
            Spec::Shrink => {
                let c = shape.c as usize;
                let theta = match q {
                    Some(_) => data.i32(&(0..c).map(|_| rng.int(0, 40)).collect::<Vec<_>>()),
                    None => data.f32(&rng.f32s(c, 0.0, 0.6)),
                };
                (Op::Shrink { theta }, q)
            }
            Spec::Gain => {
                let g = rng.f32s(shape.c as usize, 0.3, 2.0);
                // The output follows the input's scale (see `lista`), so the rescaling
                // stays expressible after a chain of dense layers.
                let qo = q.map(|qi| {
                    let mut qo = act_quant(&mut rng, 3.0);
                    qo.scale *= (qi.scale / 0.02).max(1.0);
                    qo
                });
                let rescale = q.zip(qo).map(|(qi, qo)| {
                    let real = g
                        .iter()
                        .map(|&g| g as f64 * qi.scale as f64 / qo.scale as f64);
                    rescale(real, &mut data)
                });
                let gain = data.f32(&g);
                (Op::Gain { gain, rescale }, qo)
            }
            Spec::Lista { steps } => {
                let (op, qo) = lista(precision, shape.c as usize, steps, q, &mut rng, &mut data);
                (op, qo)
            }
            Spec::Dictionary { lambda } => {
                let op = dictionary(input.len(), shape.c as usize, lambda, &mut rng, &mut data);
                (op, q)
            }
        };
        let layer = LayerDesc {
            op,
            input: shape,
            output,
            out_quant,
        };
        desc.layers.push(layer).expect("at most MAX_LAYERS layers");
        (shape, q) = (output, out_quant);
    }
    AlignedBuf::new(&encode(&desc, &data).expect("encodes"))
}

/// Per-channel rescalings of the given real multipliers.
fn rescale(real: impl Iterator<Item = f64>, data: &mut DataBuilder) -> Rescale {
    let (m, s): (Vec<i32>, Vec<i32>) = real
        .map(|r| quantize_multiplier(r).unwrap_or_else(|| panic!("multiplier {r} out of range")))
        .unzip();
    Rescale {
        multiplier: data.i32(&m),
        shift: data.i32(&s),
    }
}

/// A contracting random `S` (`|S[i,j]| ≤ 0.6/√n`, column-major) with thresholds (one `[n]`
/// for every step, or one per step, at random); int8 with per-row scales and the rescalings
/// of `kestrel_format::Op::Lista`.
fn lista(
    precision: Precision,
    n: usize,
    steps: u8,
    qb: Option<QParams>,
    rng: &mut Rng,
    data: &mut DataBuilder,
) -> (Op, Option<QParams>) {
    let bound = 0.6 / (n as f32).sqrt();
    let s = rng.f32s(n * n, -bound, bound);
    let per_step = rng.int(0, 1) == 1;
    let theta = rng.f32s(
        if per_step {
            n * (steps as usize + 1)
        } else {
            n
        },
        0.0,
        0.4,
    );
    match (precision, qb) {
        (Precision::Int8, Some(qb)) => {
            // The codes live on the input's scale: after a chain of dense layers that scale
            // can be large, and a fixed code scale would put the input rescaling
            // (`qb.scale / (s_scale·qh.scale)`) past what a multiplier can express.
            let grow = (qb.scale / 0.02).max(1.0);
            let mut qh = act_quant(rng, 2.0);
            qh.scale *= grow;
            let s_q: Vec<i8> = (0..n * n).map(|_| rng.int(-127, 127) as i8).collect();
            let s_scale = rng
                .f32s(n, bound * 0.5, bound * 1.5)
                .iter()
                .map(|v| v / 127.0)
                .collect::<Vec<_>>();
            let unit = |i: usize| s_scale[i] as f64 * qh.scale as f64; // accumulator unit
            let theta_q: Vec<i32> = (0..theta.len())
                .map(|j| (theta[j] as f64 * grow as f64 / unit(j % n)).round() as i32)
                .collect();
            let input = rescale((0..n).map(|i| qb.scale as f64 / unit(i)), data);
            let output = rescale(s_scale.iter().map(|&v| v as f64), data);
            let quant = ListaQuant {
                s_scale: data.f32(&s_scale),
                input,
                output,
            };
            let op = Op::Lista {
                s: data.i8(&s_q),
                theta: data.i32(&theta_q),
                steps,
                quant: Some(quant),
            };
            (op, Some(qh))
        }
        (Precision::F16, _) => {
            let op = Op::Lista {
                s: data.f16(&s),
                theta: data.f32(&theta),
                steps,
                quant: None,
            };
            (op, None)
        }
        _ => {
            let op = Op::Lista {
                s: data.f32(&s),
                theta: data.f32(&theta),
                steps,
                quant: None,
            };
            (op, None)
        }
    }
}

/// The problem of a random `k × n` dictionary (unit-norm columns) in f64, as the format
/// stores it: `D` row-major, `L = 1.01·‖DᵀD‖₂` (power iteration), `Dᵀ/L`, `I − DᵀD/L`.
pub(crate) struct DictParams {
    pub d: Vec<f32>,
    pub lipschitz: f32,
    pub weight: Vec<f32>,
    pub s: Vec<f32>,
}

pub(crate) fn dict_params(k: usize, n: usize, rng: &mut Rng) -> DictParams {
    let mut d: Vec<f64> = (0..k * n).map(|_| rng.f32(-1.0, 1.0) as f64).collect();
    for j in 0..n {
        let norm = (0..k)
            .map(|r| d[r * n + j].powi(2))
            .sum::<f64>()
            .sqrt()
            .max(1e-3);
        for r in 0..k {
            d[r * n + j] /= norm;
        }
    }
    let gram: Vec<f64> = (0..n * n)
        .map(|ij| (0..k).map(|r| d[r * n + ij / n] * d[r * n + ij % n]).sum())
        .collect();
    // A random start: with unit-norm columns a constant vector can be an eigenvector of
    // the Gram matrix (always for n = 2), and not the largest.
    let mut v: Vec<f64> = (0..n).map(|_| rng.f32(0.5, 1.5) as f64).collect();
    let mut l = 0.0;
    for _ in 0..300 {
        let w: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| gram[i * n + j] * v[j]).sum())
            .collect();
        l = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        v = w.iter().map(|x| x / l.max(1e-30)).collect();
    }
    let l = (l * 1.01) as f32 as f64;
    DictParams {
        d: d.iter().map(|&v| v as f32).collect(),
        lipschitz: l as f32,
        weight: (0..n * k)
            .map(|ik| (d[(ik % k) * n + ik / k] / l) as f32)
            .collect(),
        s: (0..n * n)
            .map(|ij| ((ij / n == ij % n) as u8 as f64 - gram[ij] / l) as f32)
            .collect(),
    }
}

fn dictionary(k: usize, n: usize, lambda: f32, rng: &mut Rng, data: &mut DataBuilder) -> Op {
    let p = dict_params(k, n, rng);
    Op::Dictionary {
        atoms: data.f32(&p.d),
        lambda,
        lipschitz: p.lipschitz,
        fista_weight: data.f32(&p.weight),
        fista_s: data.f32(&p.s),
    }
}

/// A 16-byte aligned, zeroed arena of at least `len` bytes.
pub(crate) fn arena(len: usize) -> Vec<u128> {
    vec![0u128; len.div_ceil(16)]
}

/// Bytes of an aligned arena.
pub(crate) fn bytes_mut(a: &mut [u128]) -> &mut [u8] {
    bytemuck::cast_slice_mut(a)
}
