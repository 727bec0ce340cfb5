//! Export: a checkpoint becomes a Kestrel model file in f32, f16 or int8.
//!
//! int8 follows the usual integer-only scheme: symmetric per-output-channel int8 weights
//! (`scale = max|w_c| / 127`), int32 biases in units of `input_scale · weight_scale`,
//! asymmetric per-tensor int8 activations whose ranges are calibrated by running the float
//! network on training images, and a fixed-point requantization (multiplier in
//! `[2^30, 2^31)`, shift, single rounding half up — see `kestrel_format::quant`).
//! Ops that pass codes through (ReLU, pooling, flatten) share their producer's quantization;
//! a producer followed by a ReLU is calibrated on the ReLU's output, so the ReLU is folded
//! into its clamp. tanh and |x| become 256-entry lookup tables; LCN runs in f32 between a
//! dequantization and a quantization.

use kestrel_format::quant::{dequantize, quantize_f32, quantize_multiplier};
use kestrel_format::{
    AlignedBuf, DataBuilder, InputSpec, LayerDesc, Model, ModelDesc, Op, Precision, Provenance,
    QParams, Requant, Shape,
};

use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::config::LayerSpec;
use std::path::Path;

use crate::data::{Images, LoadOptions, Loaded, Split};
use crate::error::{Error, Result};
use crate::nn::Network;

/// Export precision (`--quant`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Quant {
    /// f32 weights and activations.
    F32,
    /// f16 weights, f32 compute.
    F16,
    /// int8 weights and activations.
    Int8,
}

impl From<Quant> for Precision {
    fn from(q: Quant) -> Precision {
        match q {
            Quant::F32 => Precision::F32,
            Quant::F16 => Precision::F16,
            Quant::Int8 => Precision::Int8,
        }
    }
}

/// Images used for int8 calibration when none are given.
pub const CALIBRATION_IMAGES: usize = 2000;

fn shape(s: [usize; 3]) -> Shape {
    Shape::new(s[0] as u32, s[1] as u32, s[2] as u32)
}

/// Quantization covering `[lo, hi]` (widened to contain 0, so that 0 is exact).
pub fn qparams(lo: f32, hi: f32) -> QParams {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    QParams { scale, zero_point }
}

/// Codes that pass through unchanged (same quantization in and out).
fn passthrough(l: &LayerSpec) -> bool {
    matches!(
        l,
        LayerSpec::Relu
            | LayerSpec::MaxPool2d { .. }
            | LayerSpec::AvgPool2d { .. }
            | LayerSpec::Flatten
            | LayerSpec::Dropout { .. }
    )
}

/// Per-layer output quantization for int8, from the float network's activations on
/// `calib` (one entry per arch layer).
fn calibrate<B: Backend>(
    net: &mut Network<B>,
    ckpt: &Checkpoint,
    calib: &Images,
) -> Result<Vec<QParams>> {
    let layers = &ckpt.arch.layers;
    let mut lo = vec![f32::INFINITY; layers.len()];
    let mut hi = vec![f32::NEG_INFINITY; layers.len()];
    let mut x = Vec::new();
    let idx: Vec<usize> = (0..calib.n).collect();
    for chunk in idx.chunks(250) {
        ckpt.normalize.batch(calib, chunk, &mut x);
        for (i, out) in net.forward_trace(&x, chunk.len())?.iter().enumerate() {
            for &v in out {
                lo[i] = lo[i].min(v);
                hi[i] = hi[i].max(v);
            }
        }
    }
    let mut q = vec![
        QParams {
            scale: 1.0,
            zero_point: 0
        };
        layers.len()
    ];
    let mut i = 0;
    while i < layers.len() {
        // The chain of pass-through layers after producer i shares its quantization; a ReLU
        // in the chain bounds the range from below (every later value went through it).
        let mut end = i;
        let (mut l, h) = (lo[i], hi[i]);
        while end + 1 < layers.len() && passthrough(&layers[end + 1]) {
            end += 1;
            if layers[end] == LayerSpec::Relu {
                l = l.max(0.0);
            }
        }
        let p = qparams(l, h);
        q[i..=end].fill(p);
        i = end + 1;
    }
    Ok(q)
}

/// Per-output-channel symmetric int8 weights and their scales.
fn quantize_weights(w: &[f32], out_c: usize) -> (Vec<i8>, Vec<f32>) {
    let per = w.len() / out_c;
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(out_c);
    for row in w.chunks(per) {
        let m = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let s = if m > 0.0 { m / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            row.iter()
                .map(|v| (v / s).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}

/// int8 parameters of one convolution or linear layer.
pub(crate) struct DenseS8 {
    pub(crate) weight: Vec<i8>,
    pub(crate) weight_scale: Vec<f32>,
    pub(crate) bias: Vec<i32>,
    pub(crate) multiplier: Vec<i32>,
    pub(crate) shift: Vec<i32>,
}

/// Quantizes weights per output channel, biases to int32 in units of
/// `in_scale · weight_scale[c]`, and the requantization `in_scale · weight_scale[c] / out_scale`.
pub(crate) fn quantize_dense(
    weight: &[f32],
    bias: &[f32],
    inq: QParams,
    outq: QParams,
    layer: usize,
) -> Result<DenseS8> {
    let (q, weight_scale) = quantize_weights(weight, bias.len());
    let mut d = DenseS8 {
        weight: q,
        weight_scale,
        bias: Vec::new(),
        multiplier: Vec::new(),
        shift: Vec::new(),
    };
    for (c, (&b, &ws)) in bias.iter().zip(&d.weight_scale).enumerate() {
        let acc_scale = inq.scale as f64 * ws as f64;
        d.bias.push(
            (b as f64 / acc_scale)
                .round()
                .clamp(i32::MIN as f64, i32::MAX as f64) as i32,
        );
        let real = acc_scale / outq.scale as f64;
        let (m, s) = quantize_multiplier(real).ok_or_else(|| Error::Shape {
            layer,
            op: "export",
            message: format!(
                "requantization scale {real:e} of channel {c} is outside [2^-32, 2^30)"
            ),
        })?;
        d.multiplier.push(m);
        d.shift.push(s);
    }
    Ok(d)
}

/// 256-entry table of `f` from `inq` codes to `outq` codes, indexed by `q + 128`.
pub(crate) fn table(f: impl Fn(f32) -> f32, inq: QParams, outq: QParams) -> Vec<i8> {
    (-128i32..=127)
        .map(|q| {
            quantize_f32(
                f(dequantize(q as i8, inq.scale, inq.zero_point)),
                outq.scale,
                outq.zero_point,
            )
        })
        .collect()
}

/// [`CALIBRATION_IMAGES`] training images of `dir` ([`Loaded::limit`]: the first of an
/// MNIST-format directory, spread over the classes of an image folder, resized to the
/// checkpoint's input), for int8 calibration.
pub fn calibration_set(ckpt: &Checkpoint, dir: &Path, skip_bad_images: bool) -> Result<Loaded> {
    let opts = LoadOptions {
        size: Some([ckpt.arch.input[1], ckpt.arch.input[2]]),
        skip_bad_images,
        classes: None,
    };
    Ok(crate::data::load_with(dir, Split::Train, &opts)?.limit(CALIBRATION_IMAGES))
}

/// Builds a Kestrel model file from a checkpoint. `calib` (int8 only) defaults to the
/// first [`CALIBRATION_IMAGES`] training images of the checkpoint's data directory.
/// The bytes are validated by the format crate and planned by the runtime before return.
pub fn export<B: Backend>(
    backend: B,
    ckpt: &Checkpoint,
    quant: Quant,
    calib: Option<&Images>,
) -> Result<Vec<u8>> {
    let mut net = Network::new(backend, &ckpt.arch, ckpt.train.seed)?;
    net.set_params(&ckpt.params)?;
    let precision = Precision::from(quant);
    let int8 = precision == Precision::Int8;
    let owned_calib;
    let qs = if int8 {
        let calib = match calib {
            Some(c) => c,
            None => {
                owned_calib = calibration_set(ckpt, &ckpt.data_dir, false)?.images;
                &owned_calib
            }
        };
        calibrate(&mut net, ckpt, calib)?
    } else {
        Vec::new()
    };
    let norm = ckpt.normalize;
    let in_quant = int8.then(|| qparams(norm.apply(0), norm.apply(255)));

    let mut data = DataBuilder::new();
    let mut layers = heapless::Vec::<LayerDesc, { kestrel_format::MAX_LAYERS }>::new();
    let params = net.params()?;
    let shapes = net.output_shapes().to_vec();
    let mut prev_shape = ckpt.arch.input;
    let mut prev_q = in_quant;
    for (i, spec) in ckpt.arch.layers.iter().enumerate() {
        let out_shape = shapes[i];
        let out_q = int8.then(|| qs[i]);
        // (input, output) quantization: present exactly in int8 exports.
        let q_io = prev_q.zip(out_q);
        let find = || {
            params
                .iter()
                .find(|p| p.layer == i)
                .ok_or_else(|| Error::Shape {
                    layer: i,
                    op: "export",
                    message: "checkpoint has no parameters for this layer".into(),
                })
        };
        // Weights/bias/requant of a conv or linear layer.
        let dense = |data: &mut DataBuilder| -> Result<(
            kestrel_format::TensorRef,
            kestrel_format::TensorRef,
            Option<Requant>,
        )> {
            let (weight, bias) = find()?.weight_bias();
            match (quant, q_io) {
                (Quant::F16, _) => Ok((data.f16(weight), data.f32(bias), None)),
                (Quant::F32, _) | (Quant::Int8, None) => {
                    Ok((data.f32(weight), data.f32(bias), None))
                }
                (Quant::Int8, Some((inq, outq))) => {
                    let d = quantize_dense(weight, bias, inq, outq, i)?;
                    let requant = Requant {
                        weight_scale: data.f32(&d.weight_scale),
                        multiplier: data.i32(&d.multiplier),
                        shift: data.i32(&d.shift),
                    };
                    Ok((data.i8(&d.weight), data.i32(&d.bias), Some(requant)))
                }
            }
        };
        let op = match *spec {
            LayerSpec::Dropout { .. } => {
                // Identity at inference: not exported.
                continue;
            }
            LayerSpec::Conv2d {
                kernel,
                stride,
                pad,
                ..
            } => {
                let (weight, bias, requant) = dense(&mut data)?;
                Op::Conv2d {
                    kh: kernel as u8,
                    kw: kernel as u8,
                    stride: stride as u8,
                    pad: pad as u8,
                    weight,
                    bias,
                    requant,
                }
            }
            LayerSpec::Linear { .. } => {
                let (weight, bias, requant) = dense(&mut data)?;
                Op::Linear {
                    weight,
                    bias,
                    requant,
                }
            }
            LayerSpec::Relu => Op::Relu,
            LayerSpec::Tanh => Op::Tanh {
                table: q_io.map(|(i, o)| data.i8(&table(f32::tanh, i, o))),
            },
            LayerSpec::Abs => Op::Abs {
                table: q_io.map(|(i, o)| data.i8(&table(f32::abs, i, o))),
            },
            LayerSpec::MaxPool2d { kernel, stride } => Op::MaxPool2d {
                k: kernel as u8,
                stride: stride.unwrap_or(kernel) as u8,
            },
            LayerSpec::AvgPool2d { kernel, stride } => Op::AvgPool2d {
                k: kernel as u8,
                stride: stride.unwrap_or(kernel) as u8,
            },
            LayerSpec::Lcn { size, eps, .. } => {
                let w = net.lcn_window(i)?.ok_or_else(|| Error::Shape {
                    layer: i,
                    op: "lcn",
                    message: "no window".into(),
                })?;
                Op::Lcn {
                    size: size as u8,
                    eps,
                    window: data.f32(&w),
                }
            }
            LayerSpec::Flatten => Op::Flatten,
        };
        let desc = LayerDesc {
            op,
            input: shape(prev_shape),
            output: shape(out_shape),
            out_quant: out_q,
        };
        layers.push(desc).map_err(|_| Error::Shape {
            layer: i,
            op: "export",
            message: format!("more than {} layers", kestrel_format::MAX_LAYERS),
        })?;
        prev_shape = out_shape;
        prev_q = out_q;
    }
    let classes_ref: Vec<&str> = ckpt.classes.iter().map(String::as_str).collect();
    let classes = heapless::Vec::from_slice(
        &classes_ref[..classes_ref.len().min(kestrel_format::MAX_CLASSES)],
    )
    .unwrap_or_default();
    let dataset = ckpt.data_dir.to_string_lossy();
    let desc = ModelDesc {
        name: &ckpt.arch.name,
        precision,
        input: InputSpec {
            shape: shape(ckpt.arch.input),
            mean: norm.mean,
            std: norm.std,
            quant: in_quant,
        },
        layers,
        classes,
        provenance: Provenance {
            arch: &ckpt.arch.name,
            dataset: &dataset,
            train_samples: ckpt.train_samples as u32,
            epochs: ckpt.epochs_done as u32,
            float_accuracy: ckpt.test_accuracy.unwrap_or(f32::NAN),
            trainer: concat!("kestrel ", env!("CARGO_PKG_VERSION")),
        },
    };
    let bytes = kestrel_format::encode(&desc, &data)
        .map_err(|e| Error::Other(format!("encoding model: {e}")))?;
    // Prove the file loads and plans before anyone flashes it.
    let aligned = AlignedBuf::new(&bytes);
    let model = Model::from_bytes(&aligned).map_err(|e| Error::Model {
        path: "<exported model>".into(),
        source: e,
    })?;
    kestrel_runtime::Plan::new(&model).map_err(Error::Runtime)?;
    Ok(bytes)
}
