//! Export of a PSD checkpoint's dense encoder: a Kestrel model file that maps a raw patch
//! to its sparse code on the no_std runtime, in f32, f16 or int8 (docs/FORMAT.md,
//! "Sparse-code encoders").
//!
//! | encoder | layers |
//! |---|---|
//! | `tanh` | `PatchNorm` → `Linear` → `Tanh` → `Gain` → `Dictionary` |
//! | `shrink` | `PatchNorm` → `Linear` → `Shrink` → `Dictionary` |
//! | `lista:T` | `PatchNorm` → `Linear` → `Lista { steps: T }` → `Dictionary` |
//! | `--conv` tanh / shrink | `Conv2d` → `Tanh` → `Gain` / `Conv2d` → `Shrink`, whole images ([`conv`]) |
//!
//! The model takes raw pixels (`x = p/255`: input mean 0, std 1) and repeats the training
//! preprocessing in its `PatchNorm` layer, so a device feeds camera pixels as they are. The
//! trailing `Dictionary` carries `D`, `λ` and FISTA's operators, so a device can also compute
//! exact codes and energies (`kestrel_runtime::sparse`).
//!
//! int8 follows the convnet export ([`crate::export`]): per-row symmetric weights, int32
//! biases, per-tensor asymmetric activations calibrated on training patches; `tanh` becomes a
//! table, the gain a per-atom rescaling (a negative gain is folded into its row of `W` and
//! `b`, since `g·tanh(u) = |g|·tanh(sign(g)·u)`), shrink thresholds become input code steps
//! and LISTA's `S` per-row int8 with thresholds in accumulator units.

use kestrel_format::quant::quantize_multiplier;
use kestrel_format::{
    AlignedBuf, DataBuilder, InputSpec, LayerDesc, ListaQuant, Model, ModelDesc, Op, Precision,
    Provenance, QParams, Rescale, Shape, TensorRef,
};

use crate::error::{Error, Result};
use crate::export::{qparams, quantize_dense, table, Quant};
use crate::patches::{normalize_patch, unit, Dataset, Part, PatchOptions};
use crate::psd::model::{shrink, EncoderKind, PsdModel};

pub mod conv;

/// Training patches used for int8 calibration.
pub const CALIBRATION_PATCHES: usize = 2000;
/// Seed of the calibration patch sample (any fixed value: the sample must not change).
const CALIBRATION_SEED: u64 = 0x5eed_ca1b;

/// Raw pixels of `n` training patches of the checkpoint's data directory (or `dir`), drawn
/// reproducibly: what int8 calibration runs the float encoder on.
pub fn calibration_patches(
    model: &PsdModel,
    dir: Option<&std::path::Path>,
) -> Result<Vec<Vec<u8>>> {
    let dir = dir.unwrap_or(&model.meta.data_dir);
    let set = Dataset::open(dir)?;
    let opts = PatchOptions {
        size: model.meta.patch,
        contrast: model.meta.contrast,
    };
    let patches = set.sample(Part::Train, CALIBRATION_PATCHES, &opts, CALIBRATION_SEED)?;
    Ok(patches
        .origins
        .iter()
        .map(|o| set.pixels(o, model.meta.patch))
        .collect())
}

/// The float encoder's intermediate values on one raw patch, in the exported layer order.
struct Trace {
    /// After `PatchNorm`.
    x: Vec<f32>,
    /// `W x + b`.
    b: Vec<f32>,
    /// `tanh(b)` (tanh encoders).
    t: Vec<f32>,
    /// Every code vector the encoder writes (each LISTA step's; the final one last).
    h: Vec<Vec<f32>>,
}

/// The dense encoder after the gain sign is folded into `W` and `b` (see the module docs).
struct Dense<'m> {
    m: &'m PsdModel,
    k: usize,
    n: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
    gain: Vec<f32>,
}

impl<'m> Dense<'m> {
    fn new(m: &'m PsdModel) -> Result<Dense<'m>> {
        let k = m.meta.channels * m.meta.patch * m.meta.patch;
        let n = m.meta.atoms;
        let bad = |what: &str, expected: usize, got: usize| {
            Err(Error::Other(format!(
                "PSD checkpoint: {what} has {got} values, expected {expected} ({n} atoms × {k} inputs)"
            )))
        };
        if m.meta.conv {
            return Err(Error::Other(
                "PSD checkpoint: a convolutional encoder is exported by export_encoder::conv::export_conv"
                    .into(),
            ));
        }
        if m.weight.len() != n * k {
            return bad("weight", n * k, m.weight.len());
        }
        if m.bias.len() != n {
            return bad("bias", n, m.bias.len());
        }
        if m.dictionary.len() != n * k {
            return bad("dictionary", n * k, m.dictionary.len());
        }
        let (mut weight, mut bias) = (m.weight.clone(), m.bias.clone());
        let mut gain = vec![1.0; n];
        match m.meta.encoder {
            EncoderKind::Tanh => {
                let g = m.gain.as_ref().ok_or_else(|| missing("gain"))?;
                if g.len() != n {
                    return bad("gain", n, g.len());
                }
                for (i, &gi) in g.iter().enumerate() {
                    gain[i] = gi.abs();
                    if gi < 0.0 {
                        weight[i * k..(i + 1) * k].iter_mut().for_each(|w| *w = -*w);
                        bias[i] = -bias[i];
                    }
                }
            }
            EncoderKind::Shrink | EncoderKind::Lista { .. } => {
                let t = m.theta.as_ref().ok_or_else(|| missing("theta"))?;
                // Lista: one `[n]` per step.
                let len = (m.meta.encoder.steps() + 1) * n;
                if t.len() != len {
                    return bad("theta", len, t.len());
                }
                if let Some(i) = t.iter().position(|&v| !(v >= 0.0 && v.is_finite())) {
                    return Err(Error::Other(format!(
                        "PSD checkpoint: theta[{i}] = {} (thresholds must be finite and ≥ 0)",
                        t[i]
                    )));
                }
            }
        }
        if let EncoderKind::Lista { .. } = m.meta.encoder {
            let s = m.lateral.as_ref().ok_or_else(|| missing("S"))?;
            if s.len() != n * n {
                return bad("S", n * n, s.len());
            }
        }
        Ok(Dense {
            m,
            k,
            n,
            weight,
            bias,
            gain,
        })
    }

    fn trace(&self, raw: &[u8]) -> Trace {
        let (k, n) = (self.k, self.n);
        let mut x: Vec<f32> = raw.iter().map(|&p| unit(p)).collect();
        normalize_patch(&mut x, self.m.meta.contrast);
        let b: Vec<f32> = (0..n)
            .map(|i| {
                let row = &self.weight[i * k..(i + 1) * k];
                self.bias[i] + row.iter().zip(&x).map(|(w, v)| w * v).sum::<f32>()
            })
            .collect();
        let mut t = Vec::new();
        let mut h = Vec::new();
        match self.m.meta.encoder {
            EncoderKind::Tanh => {
                t = b.iter().map(|v| v.tanh()).collect();
                h.push(t.iter().zip(&self.gain).map(|(v, g)| v * g).collect());
            }
            EncoderKind::Shrink => {
                let theta = self.m.theta.as_deref().unwrap_or_default();
                h.push(b.iter().zip(theta).map(|(&v, &th)| shrink(v, th)).collect());
            }
            EncoderKind::Lista { steps } => {
                let theta = self.m.theta.as_deref().unwrap_or_default();
                let s = self.m.lateral.as_deref().unwrap_or_default();
                let mut cur: Vec<f32> =
                    b.iter().zip(theta).map(|(&v, &th)| shrink(v, th)).collect();
                for step in 1..=usize::from(steps) {
                    h.push(cur.clone());
                    let theta = &theta[step * n..(step + 1) * n];
                    cur = (0..n)
                        .map(|i| {
                            let row = &s[i * n..(i + 1) * n];
                            let u = b[i] + row.iter().zip(&cur).map(|(a, c)| a * c).sum::<f32>();
                            shrink(u, theta[i])
                        })
                        .collect();
                }
                h.push(cur);
            }
        }
        Trace { x, b, t, h }
    }
}

fn missing(name: &str) -> Error {
    Error::Other(format!(
        "PSD checkpoint: the encoder's `{name}` tensor is missing"
    ))
}

/// `[lo, hi]` of values, accumulated.
#[derive(Clone, Copy)]
struct Range(f32, f32);

impl Range {
    const EMPTY: Range = Range(f32::INFINITY, f32::NEG_INFINITY);
    fn add(&mut self, v: &[f32]) {
        for &x in v {
            self.0 = self.0.min(x);
            self.1 = self.1.max(x);
        }
    }
    fn q(self) -> QParams {
        qparams(self.0, self.1)
    }
}

/// Activation quantization of each stage, from the float encoder on `calib`.
struct Calibration {
    x: QParams,
    b: QParams,
    t: QParams,
    h: QParams,
}

fn calibrate(enc: &Dense, calib: &[Vec<u8>]) -> Result<Calibration> {
    if calib.is_empty() {
        return Err(Error::Other(
            "int8 export needs calibration patches; none were given".into(),
        ));
    }
    let mut r = [Range::EMPTY; 4];
    for raw in calib {
        let t = enc.trace(raw);
        r[0].add(&t.x);
        r[1].add(&t.b);
        r[2].add(&t.t);
        for h in &t.h {
            r[3].add(h);
        }
    }
    Ok(Calibration {
        x: r[0].q(),
        b: r[1].q(),
        t: if matches!(enc.m.meta.encoder, EncoderKind::Tanh) {
            r[2].q()
        } else {
            r[3].q()
        },
        h: r[3].q(),
    })
}

/// [`kestrel_format::quant::NEGLIGIBLE_CODE_SCALE`], the validator's bound, in f64.
const NEGLIGIBLE_CODE_SCALE: f64 = kestrel_format::quant::NEGLIGIBLE_CODE_SCALE as f64;

/// A per-channel rescaling by `real[c]`, or a typed error naming the layer and channel.
/// `codes_in`: the rescaled values are int8 code differences, so a multiplier too small to
/// represent (a dead atom's gain, even 0) is stored as the smallest one, with the same
/// all-zero outputs.
fn rescale(
    data: &mut DataBuilder,
    real: &[f64],
    layer: usize,
    what: &str,
    codes_in: bool,
) -> Result<Rescale> {
    let mut m = Vec::with_capacity(real.len());
    let mut s = Vec::with_capacity(real.len());
    for (c, &r) in real.iter().enumerate() {
        let r = if codes_in && (0.0..NEGLIGIBLE_CODE_SCALE).contains(&r) {
            2f64.powi(-32)
        } else {
            r
        };
        let (mc, sc) = quantize_multiplier(r).ok_or_else(|| Error::Shape {
            layer,
            op: "export",
            message: format!("{what} scale {r:e} of channel {c} is outside [2^-32, 2^30)"),
        })?;
        m.push(mc);
        s.push(sc);
    }
    Ok(Rescale {
        multiplier: data.i32(&m),
        shift: data.i32(&s),
    })
}

/// Largest eigenvalue of `DᵀD` (`D` row-major `[k, n]`), by power iteration in f64, with a
/// relative margin of 1e-3 so that `1/L` is a safe FISTA step.
pub fn lipschitz(d: &[f32], k: usize, n: usize) -> f32 {
    let mut v = vec![1.0f64 / (n as f64).sqrt(); n];
    let mut lambda = 0.0;
    for _ in 0..1000 {
        // w = Dᵀ (D v)
        let dv: Vec<f64> = (0..k)
            .map(|r| (0..n).map(|j| d[r * n + j] as f64 * v[j]).sum())
            .collect();
        let mut w = vec![0f64; n];
        for r in 0..k {
            for j in 0..n {
                w[j] += d[r * n + j] as f64 * dv[r];
            }
        }
        let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            break;
        }
        let next = norm;
        v = w.into_iter().map(|x| x / norm).collect();
        if (next - lambda).abs() <= 1e-9 * next {
            lambda = next;
            break;
        }
        lambda = next;
    }
    (lambda * 1.001).max(f64::MIN_POSITIVE) as f32
}

/// The `Dictionary` layer's tensors: `D`, `λ`, `L`, `Dᵀ/L` and `I − DᵀD/L`.
fn dictionary_op(data: &mut DataBuilder, d: &[f32], k: usize, n: usize, lambda: f32) -> Op {
    let l = lipschitz(d, k, n);
    let mut w = vec![0f32; n * k];
    for r in 0..k {
        for j in 0..n {
            w[j * k + r] = d[r * n + j] / l;
        }
    }
    let mut s = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            let g: f64 = (0..k)
                .map(|r| d[r * n + i] as f64 * d[r * n + j] as f64)
                .sum();
            s[i * n + j] = (if i == j { 1.0 } else { 0.0 } - g / l as f64) as f32;
        }
    }
    Op::Dictionary {
        atoms: data.f32(d),
        lambda,
        lipschitz: l,
        fista_weight: data.f32(&w),
        fista_s: data.f32(&s),
    }
}

/// `S` (row-major `[n, n]`) stored column-major as the `Lista` op wants it.
fn column_major(s: &[f32], n: usize) -> Vec<f32> {
    let mut c = vec![0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            c[j * n + i] = s[i * n + j];
        }
    }
    c
}

/// Builds the model file of a dense PSD encoder. `calib` (raw pixels of training patches,
/// see [`calibration_patches`]) is needed for int8 only. The bytes are validated by the
/// format crate and planned by the runtime before return.
pub fn export_psd(m: &PsdModel, quant: Quant, calib: &[Vec<u8>]) -> Result<Vec<u8>> {
    let enc = Dense::new(m)?;
    let (k, n) = (enc.k, enc.n);
    if !(m.meta.lambda.is_finite() && m.meta.lambda > 0.0) {
        return Err(Error::Other(format!(
            "PSD checkpoint: lambda = {} (must be finite and > 0)",
            m.meta.lambda
        )));
    }
    let precision = Precision::from(quant);
    let cal = match quant {
        Quant::Int8 => Some(calibrate(&enc, calib)?),
        _ => None,
    };
    let patch = Shape::new(
        m.meta.channels as u32,
        m.meta.patch as u32,
        m.meta.patch as u32,
    );
    let code = Shape::new(n as u32, 1, 1);
    let mut data = DataBuilder::new();
    let mut layers = heapless::Vec::<LayerDesc, { kestrel_format::MAX_LAYERS }>::new();
    let mut push = |op: Op, input: Shape, output: Shape, q: Option<QParams>| {
        push_layer(&mut layers, op, input, output, q)
    };

    push(
        Op::PatchNorm {
            contrast: m.meta.contrast,
        },
        patch,
        patch,
        cal.as_ref().map(|c| c.x),
    )?;
    let (weight, bias, requant) = match &cal {
        None if quant == Quant::F16 => (data.f16(&enc.weight), data.f32(&enc.bias), None),
        None => (data.f32(&enc.weight), data.f32(&enc.bias), None),
        Some(c) => {
            let d = quantize_dense(&enc.weight, &enc.bias, c.x, c.b, 1)?;
            let requant = kestrel_format::Requant {
                weight_scale: data.f32(&d.weight_scale),
                multiplier: data.i32(&d.multiplier),
                shift: data.i32(&d.shift),
            };
            (data.i8(&d.weight), data.i32(&d.bias), Some(requant))
        }
    };
    push(
        Op::Linear {
            weight,
            bias,
            requant,
        },
        patch,
        code,
        cal.as_ref().map(|c| c.b),
    )?;
    // Quantization of the codes (the encoder's output and the dictionary's input).
    let mut codes_q = cal.as_ref().map(|c| c.h);
    match m.meta.encoder {
        EncoderKind::Tanh => {
            push(
                Op::Tanh {
                    table: cal.as_ref().map(|c| data.i8(&table(f32::tanh, c.b, c.t))),
                },
                code,
                code,
                cal.as_ref().map(|c| c.t),
            )?;
            let rescale = match &cal {
                None => None,
                Some(c) => {
                    let real: Vec<f64> = enc
                        .gain
                        .iter()
                        .map(|&g| g as f64 * c.t.scale as f64 / c.h.scale as f64)
                        .collect();
                    Some(rescale(&mut data, &real, 3, "gain", true)?)
                }
            };
            let gain = match &cal {
                // int8 gains must be > 0: a zero gain (a dead atom) becomes the smallest
                // rescaling, which still writes the zero code.
                Some(_) => enc.gain.iter().map(|&g| g.max(f32::MIN_POSITIVE)).collect(),
                None => enc.gain.clone(),
            };
            push(
                Op::Gain {
                    gain: data.f32(&gain),
                    rescale,
                },
                code,
                code,
                cal.as_ref().map(|c| c.h),
            )?;
        }
        EncoderKind::Shrink => {
            let theta = m.theta.as_deref().unwrap_or_default();
            let theta = match &cal {
                None => data.f32(theta),
                Some(c) => {
                    let t: Vec<i32> = theta
                        .iter()
                        .map(|&t| (t as f64 / c.b.scale as f64).round().min(i32::MAX as f64) as i32)
                        .collect();
                    data.i32(&t)
                }
            };
            codes_q = cal.as_ref().map(|c| c.b);
            push(Op::Shrink { theta }, code, code, codes_q)?;
        }
        EncoderKind::Lista { steps } => {
            let theta = m.theta.as_deref().unwrap_or_default();
            let s = m.lateral.as_deref().unwrap_or_default();
            let (s_ref, theta_ref, quant) = match &cal {
                None if quant == Quant::F16 => {
                    (data.f16(&column_major(s, n)), data.f32(theta), None)
                }
                None => (data.f32(&column_major(s, n)), data.f32(theta), None),
                Some(c) => lista_s8(&mut data, s, theta, n, c)?,
            };
            push(
                Op::Lista {
                    s: s_ref,
                    theta: theta_ref,
                    steps,
                    quant,
                },
                code,
                code,
                cal.as_ref().map(|c| c.h),
            )?;
        }
    }
    let dict = dictionary_op(&mut data, &m.dictionary, k, n, m.meta.lambda);
    push(dict, code, code, codes_q)?;

    let name = format!("psd {}", m.meta.encoder);
    let dataset = m.meta.data_dir.to_string_lossy();
    let desc = ModelDesc {
        name: &name,
        precision,
        input: InputSpec {
            shape: patch,
            mean: 0.0,
            std: 1.0,
            quant: cal.as_ref().map(|_| qparams(0.0, 1.0)),
        },
        layers,
        classes: heapless::Vec::new(),
        provenance: provenance(m, &name, &dataset),
    };
    finish(&desc, &data)
}

/// Appends a layer to an exported encoder's description.
pub(crate) fn push_layer(
    layers: &mut heapless::Vec<LayerDesc, { kestrel_format::MAX_LAYERS }>,
    op: Op,
    input: Shape,
    output: Shape,
    out_quant: Option<QParams>,
) -> Result<()> {
    layers
        .push(LayerDesc {
            op,
            input,
            output,
            out_quant,
        })
        .map_err(|_| {
            Error::Other(format!(
                "an encoder model holds at most {} layers",
                kestrel_format::MAX_LAYERS
            ))
        })
}

/// The provenance of an exported encoder: `name` as its arch, the checkpoint's data
/// directory, training patches (or images) and epochs.
pub(crate) fn provenance<'a>(m: &PsdModel, name: &'a str, dataset: &'a str) -> Provenance<'a> {
    Provenance {
        arch: name,
        dataset,
        train_samples: m.meta.train_patches.min(u32::MAX as usize) as u32,
        epochs: m.meta.epochs_done.min(u32::MAX as usize) as u32,
        float_accuracy: f32::NAN,
        trainer: concat!("kestrel ", env!("CARGO_PKG_VERSION")),
    }
}

/// int8 `Lista` tensors: `S` per-row symmetric int8 (column-major), thresholds in each row's
/// accumulator units `s_scale[i]·h_scale` (`theta` is `[(T+1)·n]`, one `[n]` per step), `b`
/// rescaled into them, rows back to `h` codes.
fn lista_s8(
    data: &mut DataBuilder,
    s: &[f32],
    theta: &[f32],
    n: usize,
    c: &Calibration,
) -> Result<(TensorRef, TensorRef, Option<ListaQuant>)> {
    // Per-row scales, floored so that the input rescaling `b_scale / (s_scale·h_scale)`
    // stays at most 2^20 for a row of all but zero weights (a dead atom): `b` in accumulator
    // units (up to 255·2^20) then leaves the i32 accumulator room for `S h`, and the row's
    // weights quantize to 0, as they are.
    let floor = (c.b.scale as f64 / (c.h.scale as f64 * 2f64.powi(20))) as f32;
    let mut s_scale = vec![1f32; n];
    for (i, sc) in s_scale.iter_mut().enumerate() {
        let m = s[i * n..(i + 1) * n]
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        if m > 0.0 {
            *sc = (m / 127.0).max(floor);
        }
    }
    let mut q = vec![0i8; n * n];
    for i in 0..n {
        for j in 0..n {
            q[j * n + i] = (s[i * n + j] / s_scale[i]).round().clamp(-127.0, 127.0) as i8;
        }
    }
    let h = c.h.scale as f64;
    // One `[n]` per step, each row in its own accumulator units.
    let theta_q: Vec<i32> = theta
        .iter()
        .zip(s_scale.iter().cycle())
        .map(|(&t, &ss)| (t as f64 / (ss as f64 * h)).round().min(i32::MAX as f64) as i32)
        .collect();
    let input: Vec<f64> = s_scale
        .iter()
        .map(|&ss| c.b.scale as f64 / (ss as f64 * h))
        .collect();
    let output: Vec<f64> = s_scale.iter().map(|&ss| ss as f64).collect();
    let quant = ListaQuant {
        s_scale: data.f32(&s_scale),
        input: rescale(data, &input, 2, "LISTA input", true)?,
        output: rescale(data, &output, 2, "LISTA output", false)?,
    };
    Ok((data.i8(&q), data.i32(&theta_q), Some(quant)))
}

/// Encodes `desc`, then proves the file loads and plans before anyone flashes it.
pub(crate) fn finish(desc: &ModelDesc<'_>, data: &DataBuilder) -> Result<Vec<u8>> {
    let bytes = kestrel_format::encode(desc, data)
        .map_err(|e| Error::Other(format!("encoding model: {e}")))?;
    let aligned = AlignedBuf::new(&bytes);
    let model = Model::from_bytes(&aligned).map_err(|e| Error::Model {
        path: "<exported model>".into(),
        source: e,
    })?;
    kestrel_runtime::Plan::new(&model).map_err(Error::Runtime)?;
    Ok(bytes)
}

/// `kestrel export` of a PSD checkpoint: int8 calibrates on training patches of `calib_dir`
/// (default: the checkpoint's data directory).
///
/// A convolutional checkpoint (`meta.conv`) goes to [`conv::export`].
pub fn export(m: &PsdModel, quant: Quant, calib_dir: Option<&std::path::Path>) -> Result<Vec<u8>> {
    if m.meta.conv {
        return conv::export(m, quant, calib_dir);
    }
    let calib = match quant {
        Quant::Int8 => calibration_patches(m, calib_dir)?,
        _ => Vec::new(),
    };
    export_psd(m, quant, &calib)
}
