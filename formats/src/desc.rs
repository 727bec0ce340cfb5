//! The metadata block: what the file says about the network, encoded with postcard.
//!
//! Tensors are not inside this block: a [`TensorRef`] names a byte range of the aligned
//! data section that follows it. New operations are appended to [`Op`] (postcard encodes
//! the variant index), so older files keep decoding.

use serde::{Deserialize, Serialize};

use crate::{Field, MAX_CLASSES, MAX_LAYERS};

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DType {
    /// IEEE 754 binary32, little endian.
    F32,
    /// IEEE 754 binary16 (`half::f16`), little endian.
    F16,
    /// Two's complement 8-bit.
    I8,
    /// Two's complement 32-bit, little endian.
    I32,
}

impl DType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::I8 => 1,
        }
    }
}

/// A tensor in the data section: element type, byte offset from the start of the data
/// section (a multiple of [`crate::TENSOR_ALIGN`]) and number of elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorRef {
    /// Element type.
    pub dtype: DType,
    /// Byte offset within the data section.
    pub offset: u32,
    /// Number of elements.
    pub len: u32,
}

/// The arithmetic a model runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    /// f32 weights, f32 activations.
    F32,
    /// f16 weights, f32 biases and activations (weights widened on the fly).
    F16,
    /// int8 per-output-channel symmetric weights, int32 biases, int8 asymmetric
    /// activations, fixed-point requantization.
    Int8,
}

/// Activation shape, channels first: `[channels, height, width]`. Vectors are `[n, 1, 1]`.
///
/// A validated model guarantees `c*h*w <= MAX_ELEMENTS`, so [`Shape::len`] cannot overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Channels (feature maps).
    pub c: u32,
    /// Height.
    pub h: u32,
    /// Width.
    pub w: u32,
}

impl Shape {
    /// A `[c, h, w]` shape.
    pub const fn new(c: u32, h: u32, w: u32) -> Self {
        Shape { c, h, w }
    }
    /// Number of elements, `c*h*w` (wrapping; exact for shapes of a validated model).
    pub const fn len(&self) -> usize {
        (self.c as usize)
            .wrapping_mul(self.h as usize)
            .wrapping_mul(self.w as usize)
    }
    /// `c*h*w` if it fits in `usize`.
    pub const fn checked_len(&self) -> Option<usize> {
        match (self.c as usize).checked_mul(self.h as usize) {
            Some(ch) => ch.checked_mul(self.w as usize),
            None => None,
        }
    }
    /// True when any dimension is zero.
    pub const fn is_empty(&self) -> bool {
        self.c == 0 || self.h == 0 || self.w == 0
    }
    /// As an array, for messages.
    pub const fn dims(&self) -> [u32; 3] {
        [self.c, self.h, self.w]
    }
}

/// Affine int8 quantization: `real = scale * (q - zero_point)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QParams {
    /// Positive, finite step.
    pub scale: f32,
    /// The int8 value that stands for real 0, in `[-128, 127]`.
    pub zero_point: i32,
}

/// Requantization of a convolution or linear layer's int32 accumulators (int8 models).
///
/// For output channel `c`: `acc = bias[c] + Σ w[c,·]·(x − zp_in)`, then
/// `y = clamp(zp_out + round(acc · mult[c] · 2^(shift[c] − 31)))`, where the rounding is the
/// single rounding rule of [`crate::quant::requantize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requant {
    /// f32 per output channel: `w_real = w_scale[c] * w_q`.
    pub weight_scale: TensorRef,
    /// i32 per output channel, in `[2^30, 2^31)`.
    pub multiplier: TensorRef,
    /// i32 per output channel, in `[-31, 30]`.
    pub shift: TensorRef,
}

/// One operation. Shapes live in [`LayerDesc`]; this holds what the op needs besides.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// 2-D convolution (cross-correlation), zero padding.
    /// Weight `[out_c, in_c, kh, kw]`, bias `[out_c]` (f32, or i32 in int8 models).
    Conv2d {
        /// Kernel height.
        kh: u8,
        /// Kernel width.
        kw: u8,
        /// Stride (both axes).
        stride: u8,
        /// Zero padding on every side.
        pad: u8,
        /// Weights.
        weight: TensorRef,
        /// Biases.
        bias: TensorRef,
        /// int8 models only.
        requant: Option<Requant>,
    },
    /// Fully connected: weight `[out, in]`, bias `[out]`.
    Linear {
        /// Weights.
        weight: TensorRef,
        /// Biases.
        bias: TensorRef,
        /// int8 models only.
        requant: Option<Requant>,
    },
    /// `max(x, 0)`. In int8 models: `max(q, zero_point)` (output quant = input quant).
    Relu,
    /// `tanh(x)`. int8 models carry a 256-entry i8 table indexed by `q + 128`.
    Tanh {
        /// int8 only.
        table: Option<TensorRef>,
    },
    /// `|x|`. int8 models carry a 256-entry i8 table indexed by `q + 128`.
    Abs {
        /// int8 only.
        table: Option<TensorRef>,
    },
    /// Max pooling, no padding. int8: output quant = input quant.
    MaxPool2d {
        /// Window size.
        k: u8,
        /// Stride.
        stride: u8,
    },
    /// Average pooling, no padding. int8: output quant = input quant, sum divided with
    /// rounding half away from zero.
    AvgPool2d {
        /// Window size.
        k: u8,
        /// Stride.
        stride: u8,
    },
    /// Local contrast normalization (Jarrett et al. 2009), zero padding at borders:
    /// `v = x − Σ_{i,p,q} w_pq x_i / C`, `σ = √(Σ_{i,p,q} w_pq v_i² / C)`,
    /// `y = v / max(mean(σ), σ, eps)`. The window `w` (`size × size`, f32, sums to 1) is stored.
    /// int8 models compute it in f32 between dequantization and quantization.
    Lcn {
        /// Window side (odd).
        size: u8,
        /// Floor of the divisor.
        eps: f32,
        /// f32 window, `size*size`.
        window: TensorRef,
    },
    /// Reshape `[c, h, w]` to `[c*h*w, 1, 1]` (a no-op on the data).
    Flatten,

    // ---- Sparse-code encoders (appended: version-1 readers reject them cleanly) ----
    /// Per-sample patch normalization over the whole input `[c, h, w]` (`n = c·h·w`), in
    /// f32, sums taken in CHW order from 0: `m = (Σ xᵢ)/n`, `xᵢ ← xᵢ − m`; then with
    /// `contrast = Some(eps)`: `r = sqrt((Σ xᵢ²)/n)` over the centered values,
    /// `xᵢ ← xᵢ / max(r, eps)`. Same shape in and out. int8 models compute it in f32
    /// between dequantization and quantization (like [`Op::Lcn`]).
    PatchNorm {
        /// Contrast floor `eps` (finite, `> 0`), or `None` for mean removal only.
        contrast: Option<f32>,
    },
    /// Soft threshold per channel: `y = sign(x)·max(|x| − θ[c], 0)`, same shape in and out.
    /// Float models: `theta` is f32 `[c]`, each finite and `≥ 0`. int8 models: `theta` is i32
    /// `[c]` in input code steps, each `≥ 0`, applied to `d = q − zero_point`
    /// (`y = zero_point + sign(d)·max(|d| − θ[c], 0)`; output quant = input quant).
    Shrink {
        /// Thresholds, one per channel.
        theta: TensorRef,
    },
    /// Per-channel gain `y = g[c]·x`, same shape in and out. `gain` is f32 `[c]` (finite).
    /// int8 models: `g[c] > 0` and `rescale` maps input codes to output codes,
    /// `y = clamp(zp_out + requantize(q − zp_in, multiplier[c], shift[c]))`, the multiplier
    /// standing for `g[c]·in_scale/out_scale`.
    Gain {
        /// Gains, one per channel.
        gain: TensorRef,
        /// int8 models only.
        rescale: Option<Rescale>,
    },
    /// The LISTA recurrence (Gregor & LeCun 2010) on a code vector: input `b [n, 1, 1]`
    /// (a linear layer's `W x + bias`), output `h [n, 1, 1]`:
    /// `h ← shrink_θ₀(b)`, then for `t = 1..=steps`, `h ← shrink_θ_t(b + S h)`.
    ///
    /// `s` is `S` stored **column-major** (`s[j·n + i] = S[i, j]`: row `j` of the tensor is
    /// column `j` of `S`, so a sparse `h` needs only the columns of its non-zeros): f32 or f16
    /// by precision, i8 in int8 models (symmetric, per output row `i`, scale `s_scale[i]`).
    /// `theta`: `[n]`, one `θ` for every step, or `[(steps + 1)·n]`, step `t`'s `θ_t` at
    /// `t·n..` (learned per step, as Kestrel's trainer exports them); f32 in float models;
    /// in int8 models i32 in the accumulator units of row `i` (`s_scale[i]·h_scale`).
    ///
    /// int8, per step and row `i`: `acc = Σ_j s_q[j·n+i]·(h_q[j] − zp_h)` (i32, wrapping);
    /// `u = b_acc[i] + acc` (saturating) with `b_acc[i] = requantize(b_q[i] − zp_b,
    /// quant.input[i])` computed once per run; `v = sign(u)·max(|u| − θ_t[i], 0)`;
    /// `h_q[i] = clamp(zp_h + requantize(v, quant.output[i]))`. `h`'s quantization is the
    /// layer's `out_quant`, `b`'s the previous layer's.
    Lista {
        /// `S`, column-major `[n, n]`.
        s: TensorRef,
        /// Thresholds `[n]` or `[(steps + 1)·n]`.
        theta: TensorRef,
        /// Recurrent steps after the first shrink (`≥ 1`).
        steps: u8,
        /// int8 models only.
        quant: Option<ListaQuant>,
    },
    /// The sparse-coding problem the model's codes approximate, `min_h ½‖x − D h‖² + λ‖h‖₁`
    /// over the model's preprocessed input `x` (`k = c·h·w` of the model input, after a
    /// leading [`Op::PatchNorm`] if there is one), so that a device can run exact FISTA
    /// ([`Op::Lista`]'s step with `S = I − DᵀD/L`, `b = Dᵀx/L`, `θ = λ/L`) and compute
    /// energies. The identity on its input `[n, 1, 1]` at run time; only as the last layer.
    /// Tensors are f32 in every precision.
    Dictionary {
        /// `D`, row-major `[k, n]`: column `j` is atom `j` (unit norm).
        atoms: TensorRef,
        /// `λ > 0`.
        lambda: f32,
        /// `L ≥ ‖DᵀD‖₂ > 0`, FISTA's step is `1/L`.
        lipschitz: f32,
        /// `Dᵀ/L`, row-major `[n, k]` (a linear layer's weight layout).
        fista_weight: TensorRef,
        /// `I − DᵀD/L`, `[n, n]` (symmetric).
        fista_s: TensorRef,
    },
}

/// A per-channel fixed-point rescaling of int8 codes (or accumulators): channel `c` is
/// multiplied by `multiplier[c] · 2^(shift[c] − 31)` with
/// [`requantize`](crate::quant::requantize)'s single rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rescale {
    /// i32 per channel, in `[2^30, 2^31)`.
    pub multiplier: TensorRef,
    /// i32 per channel, in `[-31, 30]`.
    pub shift: TensorRef,
}

/// int8 parameters of [`Op::Lista`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListaQuant {
    /// f32 `[n]`: `S[i, j] = s_scale[i] · s_q[j·n + i]`.
    pub s_scale: TensorRef,
    /// Input codes `b_q − zp_b` to row `i`'s accumulator units: `b_scale/(s_scale[i]·h_scale)`.
    pub input: Rescale,
    /// Row `i`'s accumulator to output code steps: `s_scale[i]`.
    pub output: Rescale,
}

/// Most tensors one op references ([`Op::tensors`]): an int8 LISTA layer's seven.
pub const MAX_OP_TENSORS: usize = 7;

impl Op {
    /// Every tensor the op references, with the field it fills (what a validator or a
    /// tool walking the data section needs, without knowing the op).
    pub fn tensors(&self) -> heapless::Vec<(Field, TensorRef), MAX_OP_TENSORS> {
        type Tensors = heapless::Vec<(Field, TensorRef), MAX_OP_TENSORS>;
        // At most MAX_OP_TENSORS per op, by the arms below, so no push can fail.
        fn put(v: &mut Tensors, field: Field, t: TensorRef) {
            let _ = v.push((field, t));
        }
        let mut v = Tensors::new();
        match *self {
            Op::Conv2d {
                weight,
                bias,
                requant,
                ..
            }
            | Op::Linear {
                weight,
                bias,
                requant,
            } => {
                put(&mut v, Field::Weight, weight);
                put(&mut v, Field::Bias, bias);
                if let Some(r) = requant {
                    put(&mut v, Field::WeightScale, r.weight_scale);
                    put(&mut v, Field::Multiplier, r.multiplier);
                    put(&mut v, Field::Shift, r.shift);
                }
            }
            Op::Tanh { table: Some(t) } | Op::Abs { table: Some(t) } => {
                put(&mut v, Field::Table, t)
            }
            Op::Lcn { window, .. } => put(&mut v, Field::Window, window),
            Op::Shrink { theta } => put(&mut v, Field::Theta, theta),
            Op::Gain { gain, rescale } => {
                put(&mut v, Field::Gain, gain);
                if let Some(r) = rescale {
                    put(&mut v, Field::Multiplier, r.multiplier);
                    put(&mut v, Field::Shift, r.shift);
                }
            }
            Op::Lista {
                s, theta, quant, ..
            } => {
                put(&mut v, Field::Lateral, s);
                put(&mut v, Field::Theta, theta);
                if let Some(q) = quant {
                    put(&mut v, Field::LateralScale, q.s_scale);
                    put(&mut v, Field::ListaInput, q.input.multiplier);
                    put(&mut v, Field::ListaInput, q.input.shift);
                    put(&mut v, Field::ListaOutput, q.output.multiplier);
                    put(&mut v, Field::ListaOutput, q.output.shift);
                }
            }
            Op::Dictionary {
                atoms,
                fista_weight,
                fista_s,
                ..
            } => {
                put(&mut v, Field::Atoms, atoms);
                put(&mut v, Field::FistaWeight, fista_weight);
                put(&mut v, Field::FistaS, fista_s);
            }
            Op::Tanh { table: None }
            | Op::Abs { table: None }
            | Op::Relu
            | Op::MaxPool2d { .. }
            | Op::AvgPool2d { .. }
            | Op::Flatten
            | Op::PatchNorm { .. } => {}
        }
        v
    }

    /// A short lower-case name for tables.
    pub const fn name(&self) -> &'static str {
        match self {
            Op::Conv2d { .. } => "conv2d",
            Op::Linear { .. } => "linear",
            Op::Relu => "relu",
            Op::Tanh { .. } => "tanh",
            Op::Abs { .. } => "abs",
            Op::MaxPool2d { .. } => "maxpool2d",
            Op::AvgPool2d { .. } => "avgpool2d",
            Op::Lcn { .. } => "lcn",
            Op::Flatten => "flatten",
            Op::PatchNorm { .. } => "patchnorm",
            Op::Shrink { .. } => "shrink",
            Op::Gain { .. } => "gain",
            Op::Lista { .. } => "lista",
            Op::Dictionary { .. } => "dictionary",
        }
    }
}

/// One layer: an op with the shapes it reads and writes and, in int8 models, the
/// quantization of what it writes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerDesc {
    /// The operation.
    pub op: Op,
    /// Input activation shape.
    pub input: Shape,
    /// Output activation shape.
    pub output: Shape,
    /// int8 models: quantization of the output activations.
    pub out_quant: Option<QParams>,
}

/// What the network expects as input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Input shape (e.g. `[1, 28, 28]`).
    pub shape: Shape,
    /// Pixels `p` in `0..=255` become `x = (p/255 − mean) / std`.
    pub mean: f32,
    /// See `mean`.
    pub std: f32,
    /// int8 models: quantization of `x`.
    pub quant: Option<QParams>,
}

/// Where the model came from and how well it did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Provenance<'a> {
    /// Architecture name (e.g. `lenet`).
    pub arch: &'a str,
    /// Dataset description (e.g. the data directory).
    pub dataset: &'a str,
    /// Training images used.
    pub train_samples: u32,
    /// Epochs trained.
    pub epochs: u32,
    /// Float test accuracy measured by the trainer, in `[0, 1]` (NaN if not measured).
    pub float_accuracy: f32,
    /// Trainer version that wrote the file.
    pub trainer: &'a str,
}

/// The whole metadata block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDesc<'a> {
    /// Model name.
    pub name: &'a str,
    /// Arithmetic.
    pub precision: Precision,
    /// Input.
    pub input: InputSpec,
    /// Layers, in execution order.
    pub layers: heapless::Vec<LayerDesc, MAX_LAYERS>,
    /// Class names, index = output unit (may be empty for encoders).
    #[serde(borrow)]
    pub classes: heapless::Vec<&'a str, MAX_CLASSES>,
    /// Provenance.
    #[serde(borrow)]
    pub provenance: Provenance<'a>,
}
