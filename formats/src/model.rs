//! The validated, zero-copy view of a model file: [`Model::from_bytes`] checks everything
//! once, so that the runtime's loop never has to.

use half::f16;

use crate::desc::{DType, LayerDesc, ModelDesc, Op, Precision, QParams, Requant, Shape, TensorRef};
use crate::header::{Header, HEADER_LEN, TENSOR_ALIGN};
use crate::quant::{requant_in_range, MAX_ELEMENTS, NEGLIGIBLE_CODE_SCALE};
use crate::{Error, Field, MAX_LAYERS};

mod sparse;

/// Index used in errors about the model input rather than a layer.
pub const INPUT: usize = usize::MAX;

/// Parameters of a convolution or linear layer, typed and borrowed from the file.
#[derive(Debug, Clone, Copy)]
pub enum Dense<'a> {
    /// f32 weights and biases.
    F32 {
        /// `[out, in…]`
        weight: &'a [f32],
        /// `[out]`
        bias: &'a [f32],
    },
    /// f16 weights, f32 biases.
    F16 {
        /// `[out, in…]`
        weight: &'a [f16],
        /// `[out]`
        bias: &'a [f32],
    },
    /// int8 weights, int32 biases and per-channel requantization.
    I8 {
        /// `[out, in…]`, symmetric (zero point 0).
        weight: &'a [i8],
        /// `[out]`, in units of `input_scale · weight_scale[c]`.
        bias: &'a [i32],
        /// `[out]`
        weight_scale: &'a [f32],
        /// `[out]`, each in `[2^30, 2^31)`.
        multiplier: &'a [i32],
        /// `[out]`, each in `[-31, 30]`.
        shift: &'a [i32],
    },
}

/// Shrinkage thresholds `[channels]`: f32 in float models, i32 in int8 models (in the units
/// of the value they threshold: code steps for [`Op::Shrink`], accumulator units for
/// [`Op::Lista`]). Every element is `≥ 0` (and finite).
#[derive(Debug, Clone, Copy)]
pub enum Thresholds<'a> {
    /// Float models.
    F32(&'a [f32]),
    /// int8 models.
    I32(&'a [i32]),
}

/// [`Op::Lista`]'s matrix `S` (column-major `[n, n]`) and thresholds, typed by precision.
#[derive(Debug, Clone, Copy)]
pub enum Lateral<'a> {
    /// f32 `S`.
    F32 {
        /// `S`, column-major.
        s: &'a [f32],
        /// `θ`: `[n]` for every step, or `[(steps + 1)·n]`, one per step.
        theta: &'a [f32],
    },
    /// f16 `S` (widened on the fly), f32 thresholds.
    F16 {
        /// `S`, column-major.
        s: &'a [f16],
        /// As in [`Lateral::F32`].
        theta: &'a [f32],
    },
    /// int8 `S` with per-row scales; thresholds and rescalings per row `i`.
    I8 {
        /// `S` codes, column-major.
        s: &'a [i8],
        /// `θ` (`[n]` or `[(steps + 1)·n]`, as in [`Lateral::F32`]) in row `i`'s
        /// accumulator units.
        theta: &'a [i32],
        /// `[n]`, each finite and `> 0`.
        s_scale: &'a [f32],
        /// `b` codes → accumulator units: multipliers `[n]`.
        in_multiplier: &'a [i32],
        /// … and shifts `[n]`.
        in_shift: &'a [i32],
        /// Accumulator units → output code steps: multipliers `[n]`.
        out_multiplier: &'a [i32],
        /// … and shifts `[n]`.
        out_shift: &'a [i32],
    },
}

/// Convolution geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
}

/// A layer's operation with its tensors resolved.
#[derive(Debug, Clone, Copy)]
pub enum LayerKind<'a> {
    /// See [`Op::Conv2d`].
    Conv2d {
        /// Geometry.
        geom: ConvGeom,
        /// Weights and biases.
        params: Dense<'a>,
    },
    /// See [`Op::Linear`].
    Linear {
        /// Weights and biases.
        params: Dense<'a>,
    },
    /// See [`Op::Relu`].
    Relu,
    /// See [`Op::Tanh`]; `table` in int8 models.
    Tanh {
        /// 256 entries indexed by `q + 128`.
        table: Option<&'a [i8]>,
    },
    /// See [`Op::Abs`]; `table` in int8 models.
    Abs {
        /// 256 entries indexed by `q + 128`.
        table: Option<&'a [i8]>,
    },
    /// See [`Op::MaxPool2d`].
    MaxPool2d {
        /// Window.
        k: usize,
        /// Stride.
        stride: usize,
    },
    /// See [`Op::AvgPool2d`].
    AvgPool2d {
        /// Window.
        k: usize,
        /// Stride.
        stride: usize,
    },
    /// See [`Op::Lcn`].
    Lcn {
        /// Window side.
        size: usize,
        /// Divisor floor.
        eps: f32,
        /// `size*size` weights summing to 1.
        window: &'a [f32],
    },
    /// See [`Op::Flatten`].
    Flatten,
    /// See [`Op::PatchNorm`].
    PatchNorm {
        /// Contrast floor, if contrast normalization is on.
        contrast: Option<f32>,
    },
    /// See [`Op::Shrink`].
    Shrink {
        /// One threshold per input channel.
        theta: Thresholds<'a>,
    },
    /// See [`Op::Gain`].
    Gain {
        /// `[c]` gains.
        gain: &'a [f32],
        /// int8 models: `(multiplier, shift)`, `[c]` each.
        rescale: Option<(&'a [i32], &'a [i32])>,
    },
    /// See [`Op::Lista`].
    Lista {
        /// Recurrent steps (`≥ 1`).
        steps: usize,
        /// `S` and `θ`.
        lateral: Lateral<'a>,
    },
    /// See [`Op::Dictionary`].
    Dictionary {
        /// `D`, row-major `[k, n]`.
        atoms: &'a [f32],
        /// `λ`.
        lambda: f32,
        /// `L`.
        lipschitz: f32,
        /// `Dᵀ/L`, row-major `[n, k]`.
        fista_weight: &'a [f32],
        /// `I − DᵀD/L`, `[n, n]`.
        fista_s: &'a [f32],
    },
}

impl LayerKind<'_> {
    /// The op's lower-case name, as [`Op::name`] spells it.
    pub const fn name(&self) -> &'static str {
        match self {
            LayerKind::Conv2d { .. } => "conv2d",
            LayerKind::Linear { .. } => "linear",
            LayerKind::Relu => "relu",
            LayerKind::Tanh { .. } => "tanh",
            LayerKind::Abs { .. } => "abs",
            LayerKind::MaxPool2d { .. } => "maxpool2d",
            LayerKind::AvgPool2d { .. } => "avgpool2d",
            LayerKind::Lcn { .. } => "lcn",
            LayerKind::Flatten => "flatten",
            LayerKind::PatchNorm { .. } => "patchnorm",
            LayerKind::Shrink { .. } => "shrink",
            LayerKind::Gain { .. } => "gain",
            LayerKind::Lista { .. } => "lista",
            LayerKind::Dictionary { .. } => "dictionary",
        }
    }
}

/// One validated layer.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// The operation and its tensors.
    pub kind: LayerKind<'a>,
    /// Input shape.
    pub input: Shape,
    /// Output shape.
    pub output: Shape,
    /// Quantization of the input (int8 models): the previous layer's output quantization.
    pub in_quant: Option<QParams>,
    /// Quantization of the output (int8 models).
    pub out_quant: Option<QParams>,
}

/// A validated model borrowing everything from the caller's bytes.
///
/// ```
/// use kestrel_format::{Error, Model};
/// assert!(matches!(Model::from_bytes(b"KST"), Err(Error::Truncated { .. })));
/// assert!(matches!(Model::from_bytes(b"ONNX...."), Err(Error::BadMagic { .. })));
/// ```
#[derive(Debug, Clone)]
pub struct Model<'a> {
    /// The decoded metadata.
    pub desc: ModelDesc<'a>,
    layers: heapless::Vec<Layer<'a>, MAX_LAYERS>,
    file_len: usize,
}

impl<'a> Model<'a> {
    /// Checks `bytes` completely (header, version, CRC, alignment, metadata, every tensor
    /// reference, every shape, every quantization parameter) and returns the typed view.
    ///
    /// `bytes` must start at a 16-byte aligned address: tensors sit at 16-byte aligned
    /// offsets of the file, so that f32, f16 and i32 slices can be borrowed in place. Use
    /// [`crate::Aligned16`] / [`crate::include_model!`] for flash, or an aligned copy on a host.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Model<'a>, Error> {
        let header = Header::parse(bytes)?;
        let payload = &bytes[HEADER_LEN..];
        let computed = crc32fast::hash(payload);
        if computed != header.crc {
            return Err(Error::BadChecksum {
                expected: header.crc,
                computed,
            });
        }
        let address_mod = bytes.as_ptr() as usize % TENSOR_ALIGN;
        if address_mod != 0 {
            return Err(Error::Misaligned {
                align: TENSOR_ALIGN,
                address_mod,
            });
        }
        let meta = &bytes[HEADER_LEN..HEADER_LEN + header.meta_len];
        let desc: ModelDesc<'a> = match postcard::take_from_bytes(meta) {
            Ok((d, [])) => d,
            _ => return Err(Error::BadMetadata { offset: HEADER_LEN }),
        };
        let data = &bytes[header.data_offset..];
        let layers = validate(&desc, data)?;
        Ok(Model {
            desc,
            layers,
            file_len: bytes.len(),
        })
    }

    /// The layers, in execution order.
    pub fn layers(&self) -> &[Layer<'a>] {
        &self.layers
    }

    /// The model's arithmetic.
    pub fn precision(&self) -> Precision {
        self.desc.precision
    }

    /// Input shape.
    pub fn input_shape(&self) -> Shape {
        self.desc.input.shape
    }

    /// Output shape (the last layer's).
    pub fn output_shape(&self) -> Shape {
        // Validation guarantees at least one layer.
        self.layers
            .last()
            .map_or(self.desc.input.shape, |l| l.output)
    }

    /// Size of the whole file in bytes.
    pub fn file_len(&self) -> usize {
        self.file_len
    }
}

/// Borrows a typed slice for `t`, checking type, bounds and alignment.
pub(crate) fn tensor<T: bytemuck::Pod>(
    data: &[u8],
    t: TensorRef,
    want: DType,
    layer: usize,
    field: Field,
) -> Result<&[T], Error> {
    if t.dtype != want {
        return Err(Error::WrongDType { layer, field });
    }
    let offset = t.offset as usize;
    let len = (t.len as usize).checked_mul(want.size());
    let oob = Error::TensorOutOfBounds {
        layer,
        field,
        offset,
        len: len.unwrap_or(usize::MAX),
        data_len: data.len(),
    };
    let len = len.ok_or(oob)?;
    let end = offset.checked_add(len).ok_or(oob)?;
    if end > data.len() || !offset.is_multiple_of(TENSOR_ALIGN) {
        return Err(oob);
    }
    bytemuck::try_cast_slice(&data[offset..end]).map_err(|_| oob)
}

pub(crate) fn expect_len(
    len: usize,
    expected: usize,
    layer: usize,
    field: Field,
) -> Result<(), Error> {
    if len == expected {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            layer,
            field,
            expected,
            got: len,
        })
    }
}

fn check_qparams(q: Option<QParams>, want: bool, layer: usize, field: Field) -> Result<(), Error> {
    match (q, want) {
        (None, false) => Ok(()),
        (Some(q), true) => {
            if q.scale.is_finite() && q.scale > 0.0 && (-128..=127).contains(&q.zero_point) {
                Ok(())
            } else {
                Err(Error::BadQuantParam {
                    layer,
                    field,
                    index: 0,
                })
            }
        }
        _ => Err(Error::QuantMismatch { layer, field }),
    }
}

fn check_shape(s: Shape, layer: usize, field: Field) -> Result<usize, Error> {
    match s.checked_len() {
        Some(n) if n > 0 && n <= MAX_ELEMENTS => Ok(n),
        _ => Err(Error::ShapeMismatch {
            layer,
            field,
            expected: MAX_ELEMENTS,
            got: s.checked_len().unwrap_or(usize::MAX),
        }),
    }
}

/// Output side of a sliding window over `n` (with padding), or `None` if it does not fit.
fn window_out(n: usize, k: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = n.checked_add(2 * pad)?;
    if k == 0 || stride == 0 || padded < k {
        return None;
    }
    Some((padded - k) / stride + 1)
}

fn validate<'a>(
    desc: &ModelDesc<'a>,
    data: &'a [u8],
) -> Result<heapless::Vec<Layer<'a>, MAX_LAYERS>, Error> {
    let int8 = desc.precision == Precision::Int8;
    let input = desc.input;
    if !(input.mean.is_finite() && input.std.is_finite() && input.std > 0.0) {
        return Err(Error::BadQuantParam {
            layer: INPUT,
            field: Field::Normalization,
            index: 0,
        });
    }
    check_shape(input.shape, INPUT, Field::InputShape)?;
    check_qparams(input.quant, int8, INPUT, Field::InputQuant)?;
    if desc.layers.is_empty() {
        return Err(Error::NoLayers);
    }
    let mut out = heapless::Vec::new();
    let mut prev_shape = input.shape;
    let mut prev_quant = input.quant;
    for (i, l) in desc.layers.iter().enumerate() {
        if l.input != prev_shape {
            return Err(Error::ChainMismatch {
                layer: i,
                previous: prev_shape.dims(),
                input: l.input.dims(),
            });
        }
        check_shape(l.output, i, Field::OutputShape)?;
        check_qparams(l.out_quant, int8, i, Field::OutputQuant)?;
        let at = At {
            precision: desc.precision,
            in_quant: prev_quant,
            model_input: input.shape,
            last: i + 1 == desc.layers.len(),
            index: i,
        };
        let kind = validate_layer(&at, l, data)?;
        let layer = Layer {
            kind,
            input: l.input,
            output: l.output,
            in_quant: prev_quant,
            out_quant: l.out_quant,
        };
        // Capacity equals the metadata's own capacity, so this cannot fail.
        let _ = out.push(layer);
        prev_shape = l.output;
        prev_quant = l.out_quant;
    }
    let outputs = prev_shape.len();
    if !desc.classes.is_empty() && desc.classes.len() != outputs {
        return Err(Error::ClassCount {
            classes: desc.classes.len(),
            outputs,
        });
    }
    no_overlaps(desc)?;
    Ok(out)
}

/// Every tensor has its own bytes: [`Error::TensorsOverlap`] for the first pair that
/// shares any (empty tensors share nothing). Runs after every reference was checked in
/// bounds; plain loops over at most 32 × 7 tensors, computed in `u64`.
fn no_overlaps(desc: &ModelDesc<'_>) -> Result<(), Error> {
    let range = |t: TensorRef| {
        let start = u64::from(t.offset);
        (start, start + u64::from(t.len) * t.dtype.size() as u64)
    };
    let layers = &desc.layers;
    for i in 0..layers.len() {
        let mine = layers[i].op.tensors();
        for j in 0..=i {
            let theirs = layers[j].op.tensors();
            for (k, &(field, a)) in mine.iter().enumerate() {
                let (a0, a1) = range(a);
                // Within a layer, each pair once.
                let others = if j == i { &theirs[..k] } else { &theirs[..] };
                for &(other_field, b) in others {
                    let (b0, b1) = range(b);
                    if a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1 {
                        return Err(Error::TensorsOverlap {
                            layer: i,
                            field,
                            other_layer: j,
                            other_field,
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// `c·h·w` for an error message, saturating instead of wrapping on 32-bit targets.
fn saturating_len(c: u32, h: usize, w: usize) -> usize {
    (c as usize).saturating_mul(h).saturating_mul(w)
}

/// Every element finite ([`Error::BadValue`] naming the first that is not).
fn all_finite<T: Copy>(
    v: &[T],
    is_finite: impl Fn(T) -> bool,
    layer: usize,
    field: Field,
) -> Result<(), Error> {
    match v.iter().position(|&x| !is_finite(x)) {
        None => Ok(()),
        Some(index) => Err(Error::BadValue {
            layer,
            field,
            index,
        }),
    }
}

/// A convolution's or linear layer's weights and biases (every float finite), and in int8
/// models its requantization, checked against the scales it is derived from.
fn dense<'a>(
    at: &At,
    l: &LayerDesc,
    (weight, bias, requant): (TensorRef, TensorRef, Option<Requant>),
    (out_c, per_out): (usize, usize),
    data: &'a [u8],
) -> Result<Dense<'a>, Error> {
    let i = at.index;
    let n_w = out_c.checked_mul(per_out).ok_or(Error::SizeOverflow {
        layer: i,
        field: Field::Weight,
    })?;
    let finite_bias = |b: &'a [f32]| all_finite(b, f32::is_finite, i, Field::Bias).map(|()| b);
    let d = match (at.precision, requant) {
        (Precision::F32, None) => Dense::F32 {
            weight: tensor(data, weight, DType::F32, i, Field::Weight)
                .and_then(|w| all_finite(w, f32::is_finite, i, Field::Weight).map(|()| w))?,
            bias: tensor(data, bias, DType::F32, i, Field::Bias).and_then(finite_bias)?,
        },
        (Precision::F16, None) => Dense::F16 {
            weight: tensor(data, weight, DType::F16, i, Field::Weight)
                .and_then(|w| all_finite(w, f16::is_finite, i, Field::Weight).map(|()| w))?,
            bias: tensor(data, bias, DType::F32, i, Field::Bias).and_then(finite_bias)?,
        },
        (Precision::Int8, Some(r)) => {
            let weight_scale: &[f32] =
                tensor(data, r.weight_scale, DType::F32, i, Field::WeightScale)?;
            let multiplier: &[i32] = tensor(data, r.multiplier, DType::I32, i, Field::Multiplier)?;
            let shift: &[i32] = tensor(data, r.shift, DType::I32, i, Field::Shift)?;
            expect_len(weight_scale.len(), out_c, i, Field::WeightScale)?;
            expect_len(multiplier.len(), out_c, i, Field::Multiplier)?;
            expect_len(shift.len(), out_c, i, Field::Shift)?;
            if let Some(c) = weight_scale
                .iter()
                .position(|s| !(s.is_finite() && *s > 0.0))
            {
                return Err(Error::BadQuantParam {
                    layer: i,
                    field: Field::WeightScale,
                    index: c,
                });
            }
            for c in 0..out_c {
                if !requant_in_range(multiplier[c], 0) {
                    return Err(Error::RequantOutOfRange {
                        layer: i,
                        field: Field::Multiplier,
                        channel: c,
                        value: multiplier[c],
                    });
                }
                if !requant_in_range(1 << 30, shift[c]) {
                    return Err(Error::RequantOutOfRange {
                        layer: i,
                        field: Field::Shift,
                        channel: c,
                        value: shift[c],
                    });
                }
            }
            if let (Some(inq), Some(outq)) = (at.in_quant, l.out_quant) {
                requant_consistent(
                    (inq.scale, weight_scale, outq.scale),
                    (multiplier, shift),
                    i,
                )?;
            }
            Dense::I8 {
                weight: tensor(data, weight, DType::I8, i, Field::Weight)?,
                bias: tensor(data, bias, DType::I32, i, Field::Bias)?,
                weight_scale,
                multiplier,
                shift,
            }
        }
        _ => {
            return Err(Error::QuantMismatch {
                layer: i,
                field: Field::Multiplier,
            })
        }
    };
    let (wl, bl) = match d {
        Dense::F32 { weight, bias } => (weight.len(), bias.len()),
        Dense::F16 { weight, bias } => (weight.len(), bias.len()),
        Dense::I8 { weight, bias, .. } => (weight.len(), bias.len()),
    };
    expect_len(wl, n_w, i, Field::Weight)?;
    expect_len(bl, out_c, i, Field::Bias)?;
    Ok(d)
}

/// Each channel's `(multiplier, shift)` must stand for `in_scale · weight_scale[c] /
/// out_scale` (the exporter's derivation) to within 1 part in a million: a multiplier that
/// disagrees with the scales beside it means the file was edited or corrupted.
fn requant_consistent(
    (in_scale, weight_scale, out_scale): (f32, &[f32], f32),
    (multiplier, shift): (&[i32], &[i32]),
    layer: usize,
) -> Result<(), Error> {
    let derived = Derived {
        num: Some(weight_scale),
        a: in_scale,
        den: None,
        b: out_scale,
        codes_in: false,
    };
    rescale_consistent(&derived, (multiplier, shift), (layer, Field::Multiplier))
}

/// What a per-channel rescaling is derived from: `real[c] = num[c] · a / (den[c] · b)`
/// (an absent `num` or `den` is 1). `codes_in`: the rescaled values are int8 code
/// differences, so a real below [`NEGLIGIBLE_CODE_SCALE`] may be stored as any multiplier
/// below it too (every output is 0 either way).
pub(crate) struct Derived<'s> {
    pub num: Option<&'s [f32]>,
    pub a: f32,
    pub den: Option<&'s [f32]>,
    pub b: f32,
    pub codes_in: bool,
}

/// Each channel `c`'s `(multiplier[c], shift[c])` stands for `derived`'s real to within
/// 1 part in a million ([`Error::RequantMismatch`] otherwise). In f32, which every
/// Cortex-M4F and up computes in hardware (one rounding of each of the four operands is
/// under 10⁻⁷ relative), and one function for every rescaling, to keep firmware small.
pub(crate) fn rescale_consistent(
    derived: &Derived<'_>,
    (multiplier, shift): (&[i32], &[i32]),
    (layer, field): (usize, Field),
) -> Result<(), Error> {
    let at = |v: Option<&[f32]>, c: usize| v.and_then(|v| v.get(c)).copied().unwrap_or(1.0);
    for (channel, (&m, &s)) in multiplier.iter().zip(shift).enumerate() {
        let real = at(derived.num, channel) * derived.a / (at(derived.den, channel) * derived.b);
        let stored = m as f32 * pow2(s - 31);
        let close = if derived.codes_in && real < NEGLIGIBLE_CODE_SCALE {
            stored < NEGLIGIBLE_CODE_SCALE
        } else {
            (stored - real).abs() <= real * 1e-6
        };
        if !(close && real.is_finite() && real >= 0.0) {
            return Err(Error::RequantMismatch {
                layer,
                field,
                channel,
                stored: (m, s),
                expected: multiplier_of(real),
            });
        }
    }
    Ok(())
}

/// `(multiplier, shift)` of a positive normal f32 `real` (exact: its 24-bit significand
/// shifted into `[2^30, 2^31)`), or `(0, 0)` where the format cannot hold it.
fn multiplier_of(real: f32) -> (i32, i32) {
    let bits = real.to_bits();
    let exp = ((bits >> 23) & 0xFF) as i32;
    if real.is_sign_negative() || exp == 0 || exp == 0xFF {
        return (0, 0);
    }
    // real = 1.f · 2^(exp − 127) = (significand · 2^7) · 2^(shift − 31), shift = exp − 126.
    let significand = (bits & 0x7F_FFFF) | 0x80_0000;
    let shift = exp - 126;
    if !(-31..=30).contains(&shift) {
        return (0, 0);
    }
    ((significand << 7) as i32, shift)
}

/// `2^e` for the shifts a requantization allows (`e` in `[-62, -1]` after range checks),
/// exact in `f32`, without libm.
fn pow2(e: i32) -> f32 {
    f32::from_bits(((127 + e.clamp(-126, 127)) as u32) << 23)
}

fn table(t: Option<TensorRef>, int8: bool, data: &[u8], i: usize) -> Result<Option<&[i8]>, Error> {
    match (t, int8) {
        (None, false) => Ok(None),
        (Some(t), true) => {
            let tab: &[i8] = tensor(data, t, DType::I8, i, Field::Table)?;
            expect_len(tab.len(), 256, i, Field::Table)?;
            Ok(Some(tab))
        }
        _ => Err(Error::QuantMismatch {
            layer: i,
            field: Field::Table,
        }),
    }
}

/// Where a layer sits: what its validation needs besides its own description.
pub(crate) struct At {
    /// The model's arithmetic.
    pub precision: Precision,
    /// Quantization of the layer's input (int8 models).
    pub in_quant: Option<QParams>,
    /// The model's input shape.
    pub model_input: Shape,
    /// Whether this is the last layer.
    pub last: bool,
    /// Layer index.
    pub index: usize,
}

/// Element-wise ops: the output shape is the input shape.
pub(crate) fn same_shape(l: &LayerDesc, i: usize) -> Result<(), Error> {
    if l.input == l.output {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            layer: i,
            field: Field::OutputShape,
            expected: l.input.len(),
            got: l.output.len(),
        })
    }
}

/// Ops that pass int8 codes through unchanged must keep the input's quantization.
pub(crate) fn same_quant(at: &At, l: &LayerDesc) -> Result<(), Error> {
    if at.precision != Precision::Int8 || l.out_quant == at.in_quant {
        Ok(())
    } else {
        Err(Error::QuantMismatch {
            layer: at.index,
            field: Field::OutputQuant,
        })
    }
}

fn validate_layer<'a>(at: &At, l: &LayerDesc, data: &'a [u8]) -> Result<LayerKind<'a>, Error> {
    let (precision, i) = (at.precision, at.index);
    let int8 = precision == Precision::Int8;
    let (inp, outp) = (l.input, l.output);
    let same_shape = || same_shape(l, i);
    let same_quant = || same_quant(at, l);
    let kind = match l.op {
        Op::Conv2d {
            kh,
            kw,
            stride,
            pad,
            weight,
            bias,
            requant,
        } => {
            let geom = ConvGeom {
                kh: kh as usize,
                kw: kw as usize,
                stride: stride as usize,
                pad: pad as usize,
            };
            if geom.pad >= geom.kh.min(geom.kw) {
                return Err(Error::BadGeometry { layer: i });
            }
            let oh = window_out(inp.h as usize, geom.kh, geom.stride, geom.pad)
                .ok_or(Error::BadGeometry { layer: i })?;
            let ow = window_out(inp.w as usize, geom.kw, geom.stride, geom.pad)
                .ok_or(Error::BadGeometry { layer: i })?;
            if (oh, ow) != (outp.h as usize, outp.w as usize) {
                return Err(Error::ShapeMismatch {
                    layer: i,
                    field: Field::OutputShape,
                    expected: saturating_len(outp.c, oh, ow),
                    got: outp.len(),
                });
            }
            // Checked: 66,052 channels × 255 × 255 taps wraps to 64,004 in 32 bits.
            let per_out = (inp.c as usize)
                .checked_mul(geom.kh)
                .and_then(|n| n.checked_mul(geom.kw))
                .ok_or(Error::SizeOverflow {
                    layer: i,
                    field: Field::Weight,
                })?;
            let params = dense(
                at,
                l,
                (weight, bias, requant),
                (outp.c as usize, per_out),
                data,
            )?;
            LayerKind::Conv2d { geom, params }
        }
        Op::Linear {
            weight,
            bias,
            requant,
        } => {
            if outp.h != 1 || outp.w != 1 {
                return Err(Error::ShapeMismatch {
                    layer: i,
                    field: Field::OutputShape,
                    expected: outp.c as usize,
                    got: outp.len(),
                });
            }
            let params = dense(
                at,
                l,
                (weight, bias, requant),
                (outp.c as usize, inp.len()),
                data,
            )?;
            LayerKind::Linear { params }
        }
        Op::Relu => {
            same_shape()?;
            same_quant()?;
            LayerKind::Relu
        }
        Op::Tanh { table: t } => {
            same_shape()?;
            LayerKind::Tanh {
                table: table(t, int8, data, i)?,
            }
        }
        Op::Abs { table: t } => {
            same_shape()?;
            LayerKind::Abs {
                table: table(t, int8, data, i)?,
            }
        }
        Op::MaxPool2d { k, stride } | Op::AvgPool2d { k, stride } => {
            let (k, stride) = (k as usize, stride as usize);
            let oh =
                window_out(inp.h as usize, k, stride, 0).ok_or(Error::BadGeometry { layer: i })?;
            let ow =
                window_out(inp.w as usize, k, stride, 0).ok_or(Error::BadGeometry { layer: i })?;
            if (outp.c, outp.h as usize, outp.w as usize) != (inp.c, oh, ow) {
                return Err(Error::ShapeMismatch {
                    layer: i,
                    field: Field::OutputShape,
                    expected: saturating_len(inp.c, oh, ow),
                    got: outp.len(),
                });
            }
            same_quant()?;
            if matches!(l.op, Op::MaxPool2d { .. }) {
                LayerKind::MaxPool2d { k, stride }
            } else {
                LayerKind::AvgPool2d { k, stride }
            }
        }
        Op::Lcn { size, eps, window } => {
            same_shape()?;
            let size = size as usize;
            if size.is_multiple_of(2) || !(eps.is_finite() && eps > 0.0) {
                return Err(Error::BadGeometry { layer: i });
            }
            let w: &[f32] = tensor(data, window, DType::F32, i, Field::Window)?;
            expect_len(w.len(), size * size, i, Field::Window)?;
            if w.iter().any(|v| !v.is_finite()) {
                return Err(Error::BadQuantParam {
                    layer: i,
                    field: Field::Window,
                    index: 0,
                });
            }
            // A weighted mean: the weights sum to 1 (the trainer's Gaussian is normalized).
            // Summed in f32 (hardware on a Cortex-M4F), compensated so that even a 255×255
            // window of equal weights sums to 1 within 10⁻⁶.
            let (mut sum, mut carry) = (0f32, 0f32);
            for &v in w {
                let y = v - carry;
                let t = sum + y;
                carry = (t - sum) - y;
                sum = t;
            }
            if (sum - 1.0).abs() > 1e-3 {
                return Err(Error::WindowSum {
                    layer: i,
                    // Saturating cast (NaN → 0; the window is finite, checked above).
                    sum_ppm: i64::from((sum * 1e6) as i32),
                });
            }
            LayerKind::Lcn {
                size,
                eps,
                window: w,
            }
        }
        Op::PatchNorm { contrast } => sparse::patch_norm(l, i, contrast)?,
        Op::Shrink { theta } => sparse::shrink(at, l, theta, data)?,
        Op::Gain { gain, rescale } => sparse::gain(at, l, gain, rescale, data)?,
        Op::Lista {
            s,
            theta,
            steps,
            quant,
        } => sparse::lista(at, l, (s, theta, steps, quant), data)?,
        Op::Dictionary {
            atoms,
            lambda,
            lipschitz,
            fista_weight,
            fista_s,
        } => sparse::dictionary(
            at,
            l,
            (atoms, lambda, lipschitz, fista_weight, fista_s),
            data,
        )?,
        Op::Flatten => {
            if outp != Shape::new(inp.len() as u32, 1, 1) {
                return Err(Error::ShapeMismatch {
                    layer: i,
                    field: Field::OutputShape,
                    expected: inp.len(),
                    got: outp.len(),
                });
            }
            same_quant()?;
            LayerKind::Flatten
        }
    };
    Ok(kind)
}
