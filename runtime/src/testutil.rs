//! Builds small models for the tests with kestrel-format's writer (a dev-dependency with
//! `std`): a list of [`Spec`]s becomes a validated file with seeded random parameters and,
//! for int8 models, consistent quantization.

use std::{vec, vec::Vec};

use kestrel_format::quant::{dequantize, quantize_f32, quantize_multiplier};
use kestrel_format::{
    encode, AlignedBuf, DataBuilder, InputSpec, LayerDesc, ModelDesc, Op, Precision, Provenance,
    QParams, Requant, Shape,
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
            Spec::Relu | Spec::Tanh | Spec::Abs | Spec::Lcn { .. } => Some(input),
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

/// A 16-byte aligned, zeroed arena of at least `len` bytes.
pub(crate) fn arena(len: usize) -> Vec<u128> {
    vec![0u128; len.div_ceil(16)]
}

/// Bytes of an aligned arena.
pub(crate) fn bytes_mut(a: &mut [u128]) -> &mut [u8] {
    bytemuck::cast_slice_mut(a)
}
