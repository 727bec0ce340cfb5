//! Export of a convolutional PSD checkpoint's encoder (`meta.conv`, from
//! `kestrel psd train --conv`): a Kestrel model that maps a whole raw image `[c, H, W]` to its
//! code maps `[atoms, H, W]`, built from the runtime's existing ops.
//!
//! | encoder | layers |
//! |---|---|
//! | `tanh` | input `(p/255 − mean)/std` → `Conv2d` (stride 1, pad `(K − 1)/2`) → `Tanh` → `Gain` |
//! | `shrink` | input `(p/255 − mean)/std` → `Conv2d` (stride 1, pad `(K − 1)/2`) → `Shrink` |
//!
//! The input normalization is training's ([`crate::psd::train::train_conv`]): the mean and
//! standard deviation of `p/255` over the training part of the checkpoint's data directory
//! ([`Dataset::pixel_stats`]), no contrast normalization; the input size is that of its
//! training images (which must all be the same size). There is no `Dictionary` layer (it
//! describes dense problems only).
//!
//! int8 is the dense export's scheme ([`super`]): per-map symmetric filters, int32 biases,
//! per-tensor activations calibrated on [`CALIBRATION_IMAGES`] whole training images, `tanh`
//! as a table, the gain a per-map rescaling (a negative gain folded into its filter and
//! bias), shrink thresholds in input code steps.

use std::path::Path;

use kestrel_format::{
    DataBuilder, InputSpec, LayerDesc, ModelDesc, Op, Precision, QParams, Requant, Shape,
};

use super::{finish, push_layer, rescale, Range};
use crate::backend::cpu::Cpu;
use crate::data::Normalize;
use crate::error::{Error, Result};
use crate::export::{qparams, quantize_dense, table, Quant};
use crate::patches::{Dataset, Part, Region};
use crate::psd::conv::{encode_images, ConvEncoderParams, ConvNonlin};
use crate::psd::model::{shrink, EncoderKind, PsdModel};

/// Whole training images used for int8 calibration (the first ones of the training part).
pub const CALIBRATION_IMAGES: usize = 500;

/// Images per batch of the calibration pass.
const CALIBRATION_BATCH: usize = 50;

/// The exported model's input: the training pixel statistics and the image size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvInput {
    /// `(p/255 − mean) / std` of the training part.
    pub norm: Normalize,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
}

fn bad(field: impl Into<String>, message: String) -> Error {
    Error::PsdCheckpoint {
        field: field.into(),
        message,
    }
}

/// Raw pixels of a region, row-major.
fn region_pixels(ds: &Dataset, r: &Region) -> Vec<u8> {
    let p = &ds.pictures[r.image];
    (r.top..r.top + r.rows)
        .flat_map(|y| p.pixels[y * p.cols + r.left..y * p.cols + r.left + r.cols].iter())
        .copied()
        .collect()
}

/// The input of `m`'s exported model: the pixel statistics and image size of the training
/// part of its data directory. A typed error if the training images differ in size.
pub fn input_of(m: &PsdModel) -> Result<ConvInput> {
    let ds = Dataset::open(&m.meta.data_dir)?;
    input_from(&ds)
}

fn input_from(ds: &Dataset) -> Result<ConvInput> {
    let regions = ds.regions(Part::Train);
    let first = regions.first().ok_or_else(|| Error::Config {
        path: ds.dir.clone(),
        message: "no training images to take the input size and statistics from".into(),
    })?;
    if let Some(r) = regions
        .iter()
        .find(|r| (r.rows, r.cols) != (first.rows, first.cols))
    {
        return Err(Error::Config {
            path: ds.dir.clone(),
            message: format!(
                "training images of {}×{} and {}×{}: an exported convolutional encoder has one \
                 input size",
                first.rows, first.cols, r.rows, r.cols
            ),
        });
    }
    Ok(ConvInput {
        norm: ds.pixel_stats(Part::Train),
        rows: first.rows,
        cols: first.cols,
    })
}

/// Raw pixels of the first [`CALIBRATION_IMAGES`] training images of `dir` of the input's
/// size: what int8 calibration runs the float encoder on.
pub fn calibration_images(dir: &Path, input: &ConvInput) -> Result<Vec<Vec<u8>>> {
    let ds = Dataset::open(dir)?;
    let images: Vec<Vec<u8>> = ds
        .regions(Part::Train)
        .iter()
        .filter(|r| (r.rows, r.cols) == (input.rows, input.cols))
        .take(CALIBRATION_IMAGES)
        .map(|r| region_pixels(&ds, r))
        .collect();
    if images.is_empty() {
        return Err(Error::Config {
            path: dir.to_path_buf(),
            message: format!(
                "no training images of {}×{} (the exported input size) to calibrate int8 on",
                input.rows, input.cols
            ),
        });
    }
    Ok(images)
}

/// The convolutional encoder after validation, the gain sign folded into the filters.
struct Conv<'m> {
    m: &'m PsdModel,
    c: usize,
    k: usize,
    n: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
    /// `|gain|` (tanh) or θ (shrink).
    scale: Vec<f32>,
}

/// The float encoder's intermediate values on a batch of images.
struct Trace {
    /// `W ⋆ x + b`, `[n, H, W]`.
    u: Vec<f32>,
    /// `tanh(u)` (tanh encoders).
    t: Vec<f32>,
    /// The code maps.
    h: Vec<f32>,
}

impl<'m> Conv<'m> {
    fn new(m: &'m PsdModel) -> Result<Conv<'m>> {
        let meta = &m.meta;
        if !meta.conv {
            return Err(bad(
                "conv",
                "false: a dense encoder is exported by export_encoder::export_psd".into(),
            ));
        }
        let (c, k, n) = (meta.channels, meta.patch, meta.atoms);
        if n == 0 || c == 0 {
            return Err(bad(
                "atoms",
                format!("need at least one atom and one channel (got {n} atoms, {c} channels)"),
            ));
        }
        if k == 0 || k.is_multiple_of(2) || k > u8::MAX as usize {
            return Err(bad(
                "patch",
                format!("{k}: convolutional filters need an odd side in 1..=255"),
            ));
        }
        let flen = n * c * k * k;
        let check = |name: &str, v: &[f32], len: usize| -> Result<()> {
            if v.len() != len {
                return Err(bad(
                    name,
                    format!(
                        "{} values, expected {len} ({n} maps × {c} channels × {k}×{k})",
                        v.len()
                    ),
                ));
            }
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(bad(
                    format!("{name}[{i}]"),
                    format!("{} (not finite)", v[i]),
                ));
            }
            Ok(())
        };
        check("weight", &m.weight, flen)?;
        check("dictionary", &m.dictionary, flen)?;
        if m.bias.len() != n {
            return Err(bad(
                "bias",
                format!("{} values, expected {n} (one per map)", m.bias.len()),
            ));
        }
        check("bias", &m.bias, n)?;
        let (mut weight, mut bias) = (m.weight.clone(), m.bias.clone());
        let per = c * k * k;
        let scale = match meta.encoder {
            EncoderKind::Tanh => {
                let g = m.gain.as_ref().ok_or_else(|| {
                    bad("gain", "missing (tanh encoders need one per map)".into())
                })?;
                if g.len() != n {
                    return Err(bad(
                        "gain",
                        format!("{} values, expected {n} (one per map)", g.len()),
                    ));
                }
                check("gain", g, n)?;
                for (i, &gi) in g.iter().enumerate() {
                    if gi < 0.0 {
                        weight[i * per..(i + 1) * per]
                            .iter_mut()
                            .for_each(|w| *w = -*w);
                        bias[i] = -bias[i];
                    }
                }
                g.iter().map(|v| v.abs()).collect()
            }
            EncoderKind::Shrink => {
                let t = m.theta.as_ref().ok_or_else(|| {
                    bad("theta", "missing (shrink encoders need one per map)".into())
                })?;
                if t.len() != n {
                    return Err(bad(
                        "theta",
                        format!("{} values, expected {n} (one per map)", t.len()),
                    ));
                }
                if let Some(i) = t.iter().position(|&v| !(v >= 0.0 && v.is_finite())) {
                    return Err(bad(
                        format!("theta[{i}]"),
                        format!("{} (thresholds must be finite and ≥ 0)", t[i]),
                    ));
                }
                t.clone()
            }
            EncoderKind::Lista { .. } => {
                return Err(bad(
                    "encoder",
                    format!("{}: LISTA has no convolutional form", meta.encoder),
                ))
            }
        };
        Ok(Conv {
            m,
            c,
            k,
            n,
            weight,
            bias,
            scale,
        })
    }

    /// The float encoder on raw images of `input`'s size (one after another in `raw`), on
    /// the trainer's CPU backend: `u` is the convolution of a shrink encoder with `θ = 0`
    /// (`shrink_0(u) = u`) and the folded filters.
    fn trace(&self, input: &ConvInput, raw: &[&[u8]]) -> Result<Trace> {
        let x: Vec<f32> = raw
            .iter()
            .flat_map(|im| im.iter().map(|&p| input.norm.apply(p)))
            .collect();
        let params = ConvEncoderParams {
            nonlin: ConvNonlin::Shrink,
            channels: self.c,
            kernel: self.k,
            atoms: self.n,
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            scale: vec![0.0; self.n],
        };
        let u = encode_images(&Cpu::new(), &params, input.rows, input.cols, raw.len(), &x)?;
        let plane = input.rows * input.cols;
        let (t, h) = match self.m.meta.encoder {
            EncoderKind::Tanh => {
                let t: Vec<f32> = u.iter().map(|v| v.tanh()).collect();
                let h = t
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v * self.scale[i / plane % self.n])
                    .collect();
                (t, h)
            }
            _ => {
                let h = u
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| shrink(v, self.scale[i / plane % self.n]))
                    .collect();
                (Vec::new(), h)
            }
        };
        Ok(Trace { u, t, h })
    }
}

/// Builds the model file of a convolutional PSD encoder for images of `input`'s size.
/// `calib` (raw training images of that size, see [`calibration_images`]) is needed for int8
/// only. The bytes are validated by the format crate and planned by the runtime before return.
pub fn export_conv(
    m: &PsdModel,
    quant: Quant,
    input: &ConvInput,
    calib: &[Vec<u8>],
) -> Result<Vec<u8>> {
    let enc = Conv::new(m)?;
    let (c, k, n) = (enc.c, enc.k, enc.n);
    let (rows, cols) = (input.rows, input.cols);
    if k > rows || k > cols {
        return Err(Error::PatchTooLarge {
            patch: k,
            image: "the exported input".into(),
            rows,
            cols,
        });
    }
    if !(input.norm.std > 0.0 && input.norm.std.is_finite() && input.norm.mean.is_finite()) {
        return Err(bad(
            "input statistics",
            format!(
                "mean {} std {} (need finite, std > 0)",
                input.norm.mean, input.norm.std
            ),
        ));
    }
    let image_len = c * rows * cols;
    let in_q = qparams(input.norm.apply(0), input.norm.apply(255));
    // (u, t, h) quantization.
    let cal: Option<(QParams, QParams, QParams)> = match quant {
        Quant::Int8 => {
            if calib.is_empty() {
                return Err(Error::Other(
                    "int8 export needs calibration images; none were given".into(),
                ));
            }
            let mut r = [Range::EMPTY; 3];
            if let Some((i, raw)) = calib.iter().enumerate().find(|(_, v)| v.len() != image_len) {
                return Err(Error::Other(format!(
                    "calibration image {i} has {} pixels, expected {image_len} ({c}×{rows}×{cols})",
                    raw.len()
                )));
            }
            let images: Vec<&[u8]> = calib.iter().map(Vec::as_slice).collect();
            for chunk in images.chunks(CALIBRATION_BATCH) {
                let t = enc.trace(input, chunk)?;
                r[0].add(&t.u);
                r[1].add(&t.t);
                r[2].add(&t.h);
            }
            Some((r[0].q(), r[1].q(), r[2].q()))
        }
        _ => None,
    };

    let img = Shape::new(c as u32, rows as u32, cols as u32);
    let code = Shape::new(n as u32, rows as u32, cols as u32);
    let mut data = DataBuilder::new();
    let mut layers = heapless::Vec::<LayerDesc, { kestrel_format::MAX_LAYERS }>::new();
    let mut push = |op: Op, input: Shape, output: Shape, q: Option<QParams>| {
        push_layer(&mut layers, op, input, output, q)
    };

    let (weight, bias, requant) = match cal {
        None if quant == Quant::F16 => (data.f16(&enc.weight), data.f32(&enc.bias), None),
        None => (data.f32(&enc.weight), data.f32(&enc.bias), None),
        Some((uq, _, _)) => {
            let d = quantize_dense(&enc.weight, &enc.bias, in_q, uq, 0)?;
            let requant = Requant {
                weight_scale: data.f32(&d.weight_scale),
                multiplier: data.i32(&d.multiplier),
                shift: data.i32(&d.shift),
            };
            (data.i8(&d.weight), data.i32(&d.bias), Some(requant))
        }
    };
    push(
        Op::Conv2d {
            kh: k as u8,
            kw: k as u8,
            stride: 1,
            pad: (k / 2) as u8,
            weight,
            bias,
            requant,
        },
        img,
        code,
        cal.map(|q| q.0),
    )?;
    match m.meta.encoder {
        EncoderKind::Tanh => {
            push(
                Op::Tanh {
                    table: cal.map(|(uq, tq, _)| data.i8(&table(f32::tanh, uq, tq))),
                },
                code,
                code,
                cal.map(|q| q.1),
            )?;
            let rescale = match cal {
                None => None,
                Some((_, tq, hq)) => {
                    let real: Vec<f64> = enc
                        .scale
                        .iter()
                        .map(|&g| g as f64 * tq.scale as f64 / hq.scale as f64)
                        .collect();
                    Some(rescale(&mut data, &real, 2, "gain", true)?)
                }
            };
            let gain: Vec<f32> = match cal {
                // int8 gains must be > 0: a zero gain (a dead map) becomes the smallest
                // rescaling, which still writes the zero code.
                Some(_) => enc
                    .scale
                    .iter()
                    .map(|&g| g.max(f32::MIN_POSITIVE))
                    .collect(),
                None => enc.scale.clone(),
            };
            push(
                Op::Gain {
                    gain: data.f32(&gain),
                    rescale,
                },
                code,
                code,
                cal.map(|q| q.2),
            )?;
        }
        _ => {
            let theta = match cal {
                None => data.f32(&enc.scale),
                Some((uq, _, _)) => {
                    let t: Vec<i32> = enc
                        .scale
                        .iter()
                        .map(|&t| (t as f64 / uq.scale as f64).round().min(i32::MAX as f64) as i32)
                        .collect();
                    data.i32(&t)
                }
            };
            push(Op::Shrink { theta }, code, code, cal.map(|q| q.0))?;
        }
    }

    let name = format!("conv psd {}", m.meta.encoder);
    let dataset = m.meta.data_dir.to_string_lossy();
    let desc = ModelDesc {
        name: &name,
        precision: Precision::from(quant),
        input: InputSpec {
            shape: img,
            mean: input.norm.mean,
            std: input.norm.std,
            quant: cal.map(|_| in_q),
        },
        layers,
        classes: heapless::Vec::new(),
        provenance: super::provenance(m, &name, &dataset),
    };
    finish(&desc, &data)
}

/// `kestrel export` of a convolutional PSD checkpoint: the input statistics and size come
/// from the checkpoint's data directory; int8 calibrates on training images of `calib_dir`
/// (default: that directory).
pub fn export(m: &PsdModel, quant: Quant, calib_dir: Option<&Path>) -> Result<Vec<u8>> {
    let ds = Dataset::open(&m.meta.data_dir)?;
    let input = input_from(&ds)?;
    let calib = match (quant, calib_dir) {
        (Quant::Int8, Some(dir)) => calibration_images(dir, &input)?,
        (Quant::Int8, None) => ds
            .regions(Part::Train)
            .iter()
            .take(CALIBRATION_IMAGES)
            .map(|r| region_pixels(&ds, r))
            .collect(),
        _ => Vec::new(),
    };
    export_conv(m, quant, &input, &calib)
}
