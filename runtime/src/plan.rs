//! [`Plan`]: checks a model against this build's kernels once, lays out the arena, runs.

use kestrel_format::{
    Dense, Layer, LayerKind, Model, Precision, QParams, Shape, INPUT, MAX_LAYERS,
};

use crate::kernels::quantize::Source;
use crate::kernels::table::Kernels;
use crate::kernels::{
    abs, avgpool, conv2d, fc, lcn, maxpool, quantize, relu, tanh, Elem, InPlace, Io,
};
#[cfg(feature = "encoders")]
use crate::kernels::{gain, lista, patchnorm, shrink};
use crate::{Error, KernelSet};

/// Alignment of the arena and of every region in it, so that f32 and i32 views (and
/// 128-bit SIMD loads) are aligned.
const ALIGN: usize = 16;

/// `n` rounded up to a whole region. Saturates: a plan that large can never run, and
/// [`Plan::run`] reports it as [`Error::ArenaTooSmall`].
const fn region(n: usize) -> usize {
    n.saturating_add(ALIGN - 1) & !(ALIGN - 1)
}

/// The model input given to [`Plan::run`]: `c*h*w` values in CHW order.
#[derive(Debug, Clone, Copy)]
pub enum Input<'i> {
    /// Raw pixels `p` in `0..=255`, normalized as `x = (p as f32 / 255.0 − mean) / std`
    /// (the model's `desc.input`) and, in int8 models, quantized with
    /// [`quantize_f32`](kestrel_format::quant::quantize_f32) and `desc.input.quant`.
    Pixels(&'i [u8]),
    /// Already normalized `x` (int8 models quantize it as above).
    Normalized(&'i [f32]),
}

/// The model output, borrowed from the arena.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Output<'r> {
    /// f32 and f16 models.
    F32(&'r [f32]),
    /// int8 models: raw codes in the last layer's `out_quant`.
    I8(&'r [i8]),
}

/// Size and cost of one layer, from [`Plan::layer_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerStats {
    /// Stored parameters: weight plus bias elements of convolution and linear layers; 0 for
    /// every other op (LCN windows and int8 lookup tables are constants, not parameters).
    pub params: usize,
    /// Multiply-accumulates: `out_c·oh·ow·in_c·kh·kw` for a convolution, `out·in` for a
    /// linear layer, 0 for every other op (see `ops` for their work).
    pub macs: u64,
    /// The work of the layer, whatever the op ([`layer_ops`]): what [`Limits::max_ops`]
    /// bounds.
    pub ops: u64,
    /// Bytes of the input activations.
    pub in_bytes: usize,
    /// Bytes of the output activations (the same buffer as the input when `in_place`).
    pub out_bytes: usize,
    /// Scratch bytes the kernel uses.
    pub scratch_bytes: usize,
    /// The layer overwrites its input (element-wise ops and flatten).
    pub in_place: bool,
}

/// What a caller will spend on one model: checked by [`Plan::new`] (with
/// [`Limits::DEFAULT`]) and [`Plan::with_limits`] before anything runs, so that a model
/// file from an untrusted source cannot make a device compute for minutes or ask for more
/// memory than it has. [`Error::LimitExceeded`] names the limit and the model's figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most operations per inference: the sum of every layer's [`LayerStats::ops`] plus one
    /// per input element.
    pub max_ops: u64,
    /// Most arena bytes ([`Plan::arena_bytes`]).
    pub max_arena_bytes: usize,
    /// Most layers.
    pub max_layers: usize,
}

impl Limits {
    /// What [`Plan::new`] allows: 10¹⁰ operations per inference (a few seconds on a fast
    /// host core, minutes on a microcontroller; the shipped models need about 10⁶), an
    /// arena of up to 1 GiB and every layer the format allows. Pick your own with
    /// [`Plan::with_limits`].
    pub const DEFAULT: Limits = Limits {
        max_ops: 10_000_000_000,
        max_arena_bytes: 1 << 30,
        max_layers: MAX_LAYERS,
    };
    /// No limit.
    pub const NONE: Limits = Limits {
        max_ops: u64::MAX,
        max_arena_bytes: usize::MAX,
        max_layers: usize::MAX,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Which of the [`Limits`] a model exceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::max_ops`].
    Ops,
    /// [`Limits::max_arena_bytes`].
    ArenaBytes,
    /// [`Limits::max_layers`].
    Layers,
}

impl Limit {
    /// How errors name it.
    pub const fn name(self) -> &'static str {
        match self {
            Limit::Ops => "operations per inference",
            Limit::ArenaBytes => "arena bytes",
            Limit::Layers => "layer count",
        }
    }
}

/// The work of one layer, in the units its kernels loop over (saturating, in `u64` on
/// every target): multiply-accumulates for convolutions (`out·in_c·kh·kw`), linear layers
/// (`out·in`) and LISTA (`steps·n² + n`); window taps for pooling (`out·k²`) and LCN (two
/// weighted window sums over every channel, `2·c·h·w·size²`, plus `c·h·w`); one per element
/// for element-wise ops (three for patch normalization); none for flatten and the
/// dictionary (the identity at run time).
pub fn layer_ops(layer: &Layer<'_>) -> u64 {
    let len = |s: Shape| u64::from(s.c) * u64::from(s.h) * u64::from(s.w);
    let (inp, out) = (len(layer.input), len(layer.output));
    let sq = |k: usize| (k as u64).saturating_mul(k as u64);
    match &layer.kind {
        LayerKind::Conv2d { geom, .. } => {
            let taps = u64::from(layer.input.c) * (geom.kh as u64) * (geom.kw as u64);
            out.saturating_mul(taps)
        }
        LayerKind::Linear { .. } => out.saturating_mul(inp),
        LayerKind::MaxPool2d { k, .. } | LayerKind::AvgPool2d { k, .. } => {
            out.saturating_mul(sq(*k))
        }
        LayerKind::Lcn { size, .. } => inp
            .saturating_mul(sq(*size))
            .saturating_mul(2)
            .saturating_add(inp),
        LayerKind::Lista { steps, .. } => inp
            .saturating_mul(inp)
            .saturating_mul(*steps as u64)
            .saturating_add(inp),
        LayerKind::PatchNorm { .. } => inp.saturating_mul(3),
        LayerKind::Relu
        | LayerKind::Tanh { .. }
        | LayerKind::Abs { .. }
        | LayerKind::Shrink { .. }
        | LayerKind::Gain { .. } => inp,
        LayerKind::Flatten | LayerKind::Dictionary { .. } => 0,
    }
}

/// Byte offsets of one layer's regions in the aligned arena.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// Input buffer.
    x: usize,
    /// Output buffer (`== x` for in-place layers).
    y: usize,
    /// Scratch, between the two buffers.
    scratch: usize,
    /// Scratch bytes.
    scratch_len: usize,
}

impl Step {
    const EMPTY: Step = Step {
        x: 0,
        y: 0,
        scratch: 0,
        scratch_len: 0,
    };
}

/// A model checked against this build's kernels, with its arena layout.
///
/// Borrows the model; holds only offsets, so it is cheap to keep in a `static` or on the
/// stack next to the model.
#[derive(Debug, Clone)]
pub struct Plan<'m, 'a> {
    model: &'m Model<'a>,
    /// The kernel set this plan runs, and its table (without `std` the plan runs
    /// [`KernelSet::COMPILED`] and calls the constant [`Kernels::COMPILED`]).
    #[cfg(feature = "std")]
    set: KernelSet,
    #[cfg(feature = "std")]
    kernels: &'static Kernels,
    elem: Elem,
    steps: [Step; MAX_LAYERS],
    output: usize,
    arena_bytes: usize,
}

/// Element-wise layers overwrite their input buffer (`Dictionary` is the identity).
fn in_place(kind: &LayerKind<'_>) -> bool {
    matches!(
        kind,
        LayerKind::Relu
            | LayerKind::Tanh { .. }
            | LayerKind::Abs { .. }
            | LayerKind::Flatten
            | LayerKind::PatchNorm { .. }
            | LayerKind::Shrink { .. }
            | LayerKind::Gain { .. }
            | LayerKind::Dictionary { .. }
    )
}

/// The sparse-code encoder ops, which need the `encoders` feature.
fn is_encoder(kind: &LayerKind<'_>) -> bool {
    matches!(
        kind,
        LayerKind::PatchNorm { .. }
            | LayerKind::Shrink { .. }
            | LayerKind::Gain { .. }
            | LayerKind::Lista { .. }
            | LayerKind::Dictionary { .. }
    )
}

/// [`kernel_scratch`] of the encoder ops (the same for every kernel set).
#[cfg(feature = "encoders")]
fn encoder_scratch(layer: &Layer<'_>, elem: Elem) -> Option<usize> {
    let (ok, scratch) = match &layer.kind {
        LayerKind::PatchNorm { .. } => (
            patchnorm::supports(layer, elem),
            patchnorm::scratch_len(layer, elem),
        ),
        LayerKind::Shrink { theta } => (
            shrink::supports(theta, layer, elem),
            shrink::scratch_len(layer, elem),
        ),
        LayerKind::Gain { rescale, .. } => (
            gain::supports(rescale.is_some(), layer, elem),
            gain::scratch_len(layer, elem),
        ),
        LayerKind::Lista { lateral, .. } => (
            lista::supports(lateral, layer, elem),
            lista::scratch_len(layer, elem),
        ),
        // The identity; its tensors are f32 in every precision (for `crate::sparse`).
        LayerKind::Dictionary { .. } => (true, 0),
        _ => (false, 0),
    };
    ok.then_some(scratch)
}

/// Without the `encoders` feature [`Plan::new`] refuses encoder layers before this.
#[cfg(not(feature = "encoders"))]
fn encoder_scratch(_layer: &Layer<'_>, _elem: Elem) -> Option<usize> {
    None
}

/// Scratch bytes of `set`'s kernel for `layer`, or `None` if there is no kernel for it.
pub(crate) fn kernel_scratch(layer: &Layer<'_>, elem: Elem, set: KernelSet) -> Option<usize> {
    let (ok, scratch) = match &layer.kind {
        LayerKind::Conv2d { params, .. } => (
            conv2d::supports(params, layer, elem),
            conv2d::scratch_len_for(set, layer, elem),
        ),
        LayerKind::Linear { params } => (
            fc::supports(params, layer, elem),
            fc::scratch_len_for(set, layer, elem),
        ),
        LayerKind::Relu => (relu::supports(layer, elem), relu::scratch_len(layer, elem)),
        LayerKind::Tanh { table } => (
            tanh::supports(*table, elem),
            tanh::scratch_len(*table, elem),
        ),
        LayerKind::Abs { table } => (abs::supports(*table, elem), abs::scratch_len(*table, elem)),
        LayerKind::MaxPool2d { .. } => (
            maxpool::supports(layer, elem),
            maxpool::scratch_len(layer, elem),
        ),
        LayerKind::AvgPool2d { .. } => (
            avgpool::supports(layer, elem),
            avgpool::scratch_len(layer, elem),
        ),
        LayerKind::Lcn { .. } => (lcn::supports(layer, elem), lcn::scratch_len(layer, elem)),
        LayerKind::Flatten => (true, 0),
        LayerKind::PatchNorm { .. }
        | LayerKind::Shrink { .. }
        | LayerKind::Gain { .. }
        | LayerKind::Lista { .. }
        | LayerKind::Dictionary { .. } => return encoder_scratch(layer, elem),
    };
    ok.then_some(scratch)
}

/// Whether this build has `precision`'s kernels (its cargo feature). Every op's
/// `dispatch` compiles only the arms of the built precisions, so a model of another one
/// must never reach them.
const fn precision_built(precision: Precision) -> bool {
    match precision {
        Precision::F32 | Precision::F16 => cfg!(feature = "f32"),
        Precision::Int8 => cfg!(feature = "int8"),
    }
}

/// Bytes of an activation tensor (saturating; see [`region`]).
fn bytes(shape: Shape, elem: Elem) -> usize {
    shape.len().saturating_mul(elem.size())
}

/// Arena bytes live while `layer` runs: input, scratch and output regions, or the input
/// (and scratch) alone for an in-place layer.
fn live_bytes(layer: &Layer<'_>, elem: Elem, scratch: usize) -> usize {
    let x = region(bytes(layer.input, elem));
    let s = region(scratch);
    if in_place(&layer.kind) {
        x.saturating_add(s)
    } else {
        x.saturating_add(s)
            .saturating_add(region(bytes(layer.output, elem)))
    }
}

/// A typed view of an arena region. Regions start 16-byte aligned and hold whole elements,
/// so the cast cannot fail; the fallback only keeps the run loop free of panics.
fn typed<T: bytemuck::Pod>(b: &[u8]) -> &[T] {
    let t = bytemuck::try_cast_slice(b);
    debug_assert!(t.is_ok(), "arena regions are aligned and whole");
    t.unwrap_or_default()
}

/// See [`typed`].
fn typed_mut<T: bytemuck::Pod>(b: &mut [u8]) -> &mut [T] {
    let t = bytemuck::try_cast_slice_mut(b);
    debug_assert!(t.is_ok(), "arena regions are aligned and whole");
    t.unwrap_or_default()
}

impl<'m, 'a> Plan<'m, 'a> {
    /// Checks that this build has a kernel for every layer at the model's precision and
    /// lays out the arena.
    ///
    /// Returns [`Error::PrecisionNotBuilt`] if this build lacks the cargo feature for the
    /// model's precision (`f32` or `int8`, both default), and [`Error::Unsupported`] for
    /// the first layer it cannot run. (Every model that [`Model::from_bytes`] accepts is
    /// supported by the reference kernels of a default build.)
    ///
    /// The plan runs the fastest kernel set this build has and this CPU runs
    /// ([`KernelSet::detect`]: asked of the CPU with the `std` feature, else
    /// [`KernelSet::COMPILED`]); [`Plan::kernel_set`] says which.
    ///
    /// It also checks the model against [`Limits::DEFAULT`] ([`Error::LimitExceeded`]);
    /// [`Plan::with_limits`] takes the caller's.
    pub fn new(model: &'m Model<'a>) -> Result<Self, Error> {
        Self::with_limits(model, &Limits::DEFAULT)
    }

    /// [`Plan::new`] with the caller's [`Limits`] on work, memory and depth.
    ///
    /// ```
    /// # use kestrel_format::{encode, AlignedBuf, DataBuilder, InputSpec, LayerDesc, Model,
    /// #     ModelDesc, Op, Precision, Provenance, Shape};
    /// use kestrel_runtime::{Error, Limit, Limits, Plan};
    /// # let mut data = DataBuilder::new();
    /// # let (weight, bias) = (data.f32(&[1.0; 8]), data.f32(&[0.0; 2]));
    /// # let mut desc = ModelDesc { name: "doc", precision: Precision::F32,
    /// #     input: InputSpec { shape: Shape::new(4, 1, 1), mean: 0.0, std: 1.0, quant: None },
    /// #     layers: Default::default(), classes: Default::default(),
    /// #     provenance: Provenance { arch: "doc", dataset: "-", train_samples: 0, epochs: 0,
    /// #         float_accuracy: f32::NAN, trainer: "-" } };
    /// # let op = Op::Linear { weight, bias, requant: None };
    /// # desc.layers.push(LayerDesc { op, input: Shape::new(4, 1, 1),
    /// #     output: Shape::new(2, 1, 1), out_quant: None }).unwrap();
    /// # let file = AlignedBuf::new(&encode(&desc, &data).unwrap());
    /// let model = Model::from_bytes(&file)?;
    /// // A 4 → 2 linear layer: 8 multiply-accumulates, plus 4 to take the input in.
    /// let tight = Limits { max_ops: 10, ..Limits::DEFAULT };
    /// let err = Plan::with_limits(&model, &tight).unwrap_err();
    /// assert_eq!(err, Error::LimitExceeded { limit: Limit::Ops, allowed: 10, model: 12 });
    /// assert_eq!(Plan::with_limits(&model, &Limits { max_ops: 12, ..tight })?.ops(), 12);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_limits(model: &'m Model<'a>, limits: &Limits) -> Result<Self, Error> {
        // The detected set is always one this build has and this CPU runs.
        Self::checked_precision(model)?;
        let plan = Self::for_kernels(model, KernelSet::detect())?;
        plan.check_limits(limits)?;
        Ok(plan)
    }

    /// Operations per inference: every layer's [`LayerStats::ops`] plus one per model
    /// input element (saturating).
    pub fn ops(&self) -> u64 {
        let input = self.model.input_shape();
        let first = u64::from(input.c) * u64::from(input.h) * u64::from(input.w);
        self.model
            .layers()
            .iter()
            .fold(first, |sum, l| sum.saturating_add(layer_ops(l)))
    }

    /// [`Error::LimitExceeded`] for the first of `limits` the model exceeds: layers, then
    /// arena bytes, then operations.
    fn check_limits(&self, limits: &Limits) -> Result<(), Error> {
        let over = |limit, allowed: u64, model: u64| {
            if model > allowed {
                Err(Error::LimitExceeded {
                    limit,
                    allowed,
                    model,
                })
            } else {
                Ok(())
            }
        };
        let wide = |n: usize| n as u64;
        over(
            Limit::Layers,
            wide(limits.max_layers),
            wide(self.model.layers().len()),
        )?;
        over(
            Limit::ArenaBytes,
            wide(limits.max_arena_bytes),
            wide(self.arena_bytes),
        )?;
        over(Limit::Ops, limits.max_ops, self.ops())
    }

    /// [`Plan::new`] running `set`'s kernels, e.g. [`KernelSet::Reference`] to compare;
    /// [`Error::KernelSetUnavailable`] if this build lacks them or this CPU cannot run them.
    pub fn with_kernels(model: &'m Model<'a>, set: KernelSet) -> Result<Self, Error> {
        Self::checked_precision(model)?;
        if Kernels::get(set).is_none() {
            return Err(Error::KernelSetUnavailable {
                set,
                best: KernelSet::detect(),
            });
        }
        let plan = Self::for_kernels(model, set)?;
        plan.check_limits(&Limits::DEFAULT)?;
        Ok(plan)
    }

    /// [`Error::PrecisionNotBuilt`] if this build lacks the model's precision.
    fn checked_precision(model: &Model<'_>) -> Result<(), Error> {
        let precision = model.precision();
        if precision_built(precision) {
            Ok(())
        } else {
            Err(Error::PrecisionNotBuilt { precision })
        }
    }

    /// The kernel set this plan runs.
    pub fn kernel_set(&self) -> KernelSet {
        #[cfg(feature = "std")]
        {
            self.set
        }
        #[cfg(not(feature = "std"))]
        {
            KernelSet::COMPILED
        }
    }

    /// The table the plan calls: its own with `std`; without, the target's constant table,
    /// so that firmware makes direct calls.
    #[inline(always)]
    fn kernels(&self) -> &'static Kernels {
        #[cfg(feature = "std")]
        {
            self.kernels
        }
        #[cfg(not(feature = "std"))]
        {
            &Kernels::COMPILED
        }
    }

    /// The arena [`Plan::arena_bytes`] would be in a build that runs `set`'s kernels (whose
    /// scratch needs differ): how a host build script sizes a device's static arena for a
    /// model, e.g. `Plan::arena_bytes_for(&model, KernelSet::Dsp)` for a Cortex-M4.
    ///
    /// ```
    /// # use kestrel_format::{encode, AlignedBuf, DataBuilder, InputSpec, LayerDesc, Model,
    /// #     ModelDesc, Op, Precision, Provenance, Shape};
    /// use kestrel_runtime::{KernelSet, Plan};
    /// # let mut data = DataBuilder::new();
    /// # let (weight, bias) = (data.f32(&[1.0; 8]), data.f32(&[0.0; 2]));
    /// # let mut desc = ModelDesc { name: "doc", precision: Precision::F32,
    /// #     input: InputSpec { shape: Shape::new(4, 1, 1), mean: 0.0, std: 1.0, quant: None },
    /// #     layers: Default::default(), classes: Default::default(),
    /// #     provenance: Provenance { arch: "doc", dataset: "-", train_samples: 0, epochs: 0,
    /// #         float_accuracy: f32::NAN, trainer: "-" } };
    /// # let op = Op::Linear { weight, bias, requant: None };
    /// # desc.layers.push(LayerDesc { op, input: Shape::new(4, 1, 1),
    /// #     output: Shape::new(2, 1, 1), out_quant: None }).unwrap();
    /// # let file = AlignedBuf::new(&encode(&desc, &data).unwrap());
    /// let model = Model::from_bytes(&file)?;
    /// // A 4 → 2 f32 linear layer: no variant needs scratch for it.
    /// for set in KernelSet::ALL {
    ///     assert_eq!(Plan::arena_bytes_for(&model, set)?, 16 + 16);
    /// }
    /// assert_eq!(Plan::arena_bytes_for(&model, KernelSet::COMPILED)?, Plan::new(&model)?.arena_bytes());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn arena_bytes_for(model: &'m Model<'a>, set: KernelSet) -> Result<usize, Error> {
        Ok(Self::for_kernels(model, set)?.arena_bytes)
    }

    /// [`Plan::new`] with `set`'s scratch rules (and its kernels, where this build runs
    /// them: [`Plan::with_kernels`] checks that first).
    fn for_kernels(model: &'m Model<'a>, set: KernelSet) -> Result<Self, Error> {
        let elem = match model.precision() {
            Precision::F32 | Precision::F16 => Elem::F32,
            Precision::Int8 => Elem::I8,
        };
        if !quantize::supports(&model.desc.input, elem) {
            return Err(Error::Unsupported { layer: INPUT });
        }
        let layers = model.layers();
        if !cfg!(feature = "encoders") {
            if let Some(layer) = layers.iter().position(|l| is_encoder(&l.kind)) {
                return Err(Error::EncodersNotBuilt { layer });
            }
        }
        // `run_f32` dequantizes int8 outputs with the last layer's quantization.
        if elem == Elem::I8 && layers.last().and_then(|l| l.out_quant).is_none() {
            let layer = layers.len().saturating_sub(1);
            return Err(Error::Unsupported { layer });
        }

        // First pass: kernels and the largest live set.
        let mut scratch = [0usize; MAX_LAYERS];
        let mut arena_bytes = 0;
        for (i, layer) in layers.iter().enumerate() {
            scratch[i] = kernel_scratch(layer, elem, set).ok_or(Error::Unsupported { layer: i })?;
            arena_bytes = arena_bytes.max(live_bytes(layer, elem, scratch[i]));
        }

        // Second pass: the model input goes at the start; each layer that is not in place
        // writes at the other end from its input, with its scratch right after whichever
        // buffer is at the start.
        let mut steps = [Step::EMPTY; MAX_LAYERS];
        let mut at_start = true;
        let mut output = 0;
        for (i, layer) in layers.iter().enumerate() {
            let x_len = region(bytes(layer.input, elem));
            let x = if at_start { 0 } else { arena_bytes - x_len };
            let step = if in_place(&layer.kind) {
                Step {
                    x,
                    y: x,
                    scratch: if at_start { x_len } else { 0 },
                    scratch_len: scratch[i],
                }
            } else {
                let y_len = region(bytes(layer.output, elem));
                let y = if at_start { arena_bytes - y_len } else { 0 };
                at_start = !at_start;
                Step {
                    x,
                    y,
                    scratch: if x == 0 { x_len } else { y_len },
                    scratch_len: scratch[i],
                }
            };
            steps[i] = step;
            output = step.y;
        }
        Ok(Plan {
            model,
            #[cfg(feature = "std")]
            set,
            #[cfg(feature = "std")]
            kernels: Kernels::get(set).unwrap_or(&Kernels::REFERENCE),
            elem,
            steps,
            output,
            arena_bytes,
        })
    }

    /// The model this plan runs.
    pub fn model(&self) -> &'m Model<'a> {
        self.model
    }

    /// Exact arena size in bytes for a 16-byte aligned arena (an unaligned arena needs up
    /// to 15 more; see [`Error::ArenaTooSmall`]).
    ///
    /// Activations are f32 in F32 and F16 models and i8 in int8 models. Every region is
    /// rounded up to 16 bytes (`⌈n⌉₁₆`), and the arena holds the largest single layer's live
    /// set:
    ///
    /// ```text
    /// arena_bytes = max over layers of
    ///     ⌈in⌉₁₆ + ⌈scratch⌉₁₆ + ⌈out⌉₁₆   (conv, linear, pooling, LCN, LISTA)
    ///     ⌈in⌉₁₆ + ⌈scratch⌉₁₆             (in place: ReLU, tanh, abs, flatten, patch
    ///                                        norm, shrink, gain, dictionary)
    /// ```
    ///
    /// because buffers alternate between the two ends of the arena: the model input is
    /// written at the start, a layer whose input is at the start writes its output at the
    /// end (and vice versa), and scratch (LCN's `2·H·W` f32, LISTA's second code buffer — `4·N` bytes in float models,
    /// `5·N` in int8 ones, with its i32 row sums — and whatever a SIMD variant asks for)
    /// sits between them.
    /// The output of the last layer is what [`Plan::run`] returns.
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// Parameter count, MACs and buffer sizes of layer `i`, or `None` past the last layer.
    pub fn layer_stats(&self, i: usize) -> Option<LayerStats> {
        let layer = self.model.layers().get(i)?;
        let dense_len = |d: &Dense<'_>| match *d {
            Dense::F32 { weight, bias } => weight.len() + bias.len(),
            Dense::F16 { weight, bias } => weight.len() + bias.len(),
            Dense::I8 { weight, bias, .. } => weight.len() + bias.len(),
        };
        let ops = layer_ops(layer);
        let (params, macs) = match &layer.kind {
            LayerKind::Conv2d { params, .. } | LayerKind::Linear { params } => {
                (dense_len(params), ops)
            }
            _ => (0, 0),
        };
        Some(LayerStats {
            params,
            macs,
            ops,
            in_bytes: bytes(layer.input, self.elem),
            out_bytes: bytes(layer.output, self.elem),
            scratch_bytes: self.steps[i].scratch_len,
            in_place: in_place(&layer.kind),
        })
    }

    /// Runs the model on `input`, using `arena` for every activation and scratch buffer,
    /// and returns the output borrowed from the arena.
    ///
    /// Errors: [`Error::InputLength`] if the input does not have `c*h*w` elements,
    /// [`Error::ArenaTooSmall`] if `arena` (from its first 16-byte aligned byte) is shorter
    /// than [`Plan::arena_bytes`]. The arena's previous contents do not matter.
    pub fn run<'r>(&self, arena: &'r mut [u8], input: Input<'_>) -> Result<Output<'r>, Error> {
        self.run_observed(arena, input, |_| {})
    }

    /// Runs like [`Plan::run`], calling `done(None)` once the model input is in the arena
    /// and `done(Some(i))` as soon as layer `i` has run: a hook for per-layer timing on a
    /// device (read a cycle counter in it).
    pub fn run_observed<'r>(
        &self,
        arena: &'r mut [u8],
        input: Input<'_>,
        mut done: impl FnMut(Option<usize>),
    ) -> Result<Output<'r>, Error> {
        let expected = self.model.input_shape().len();
        let (src, got) = match input {
            Input::Pixels(p) => (Source::Pixels(p), p.len()),
            Input::Normalized(x) => (Source::Normalized(x), x.len()),
        };
        if got != expected {
            return Err(Error::InputLength { expected, got });
        }
        let arena = self.aligned(arena)?;

        let first = &mut arena[..bytes(self.model.input_shape(), self.elem)];
        quantize::dispatch(
            self.kernels(),
            &self.model.desc.input,
            src,
            self.view_mut(first),
        );
        done(None);
        for (i, (layer, step)) in self.model.layers().iter().zip(&self.steps).enumerate() {
            self.run_layer(layer, step, arena);
            done(Some(i));
        }

        let arena: &'r [u8] = arena;
        let out = &arena[self.output..][..bytes(self.model.output_shape(), self.elem)];
        Ok(match self.elem {
            Elem::F32 => Output::F32(typed(out)),
            Elem::I8 => Output::I8(typed(out)),
        })
    }

    /// Runs like [`Plan::run`] and writes the output as f32 into `out` (int8 outputs
    /// dequantized with the last layer's `out_quant`).
    ///
    /// Errors as [`Plan::run`], plus [`Error::OutputLength`] if `out` does not have as
    /// many elements as the model's output (checked first).
    pub fn run_f32(
        &self,
        arena: &mut [u8],
        input: Input<'_>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        let expected = self.model.output_shape().len();
        if out.len() != expected {
            return Err(Error::OutputLength {
                expected,
                got: out.len(),
            });
        }
        match self.run(arena, input)? {
            Output::F32(y) => {
                for (o, &y) in out.iter_mut().zip(y) {
                    *o = y;
                }
            }
            #[cfg(feature = "int8")]
            Output::I8(q) => match self.last_out_quant() {
                Some(qp) => quantize::dequantize(self.kernels(), q, qp, out),
                None => debug_assert!(false, "Plan::new checked the output quantization"),
            },
            #[cfg(not(feature = "int8"))]
            Output::I8(_) => debug_assert!(false, "Plan::new admits only the precisions built"),
        }
        Ok(())
    }

    #[cfg(feature = "int8")]
    fn last_out_quant(&self) -> Option<QParams> {
        self.model.layers().last().and_then(|l| l.out_quant)
    }

    /// The first `arena_bytes` bytes of `arena` from its first 16-byte aligned address.
    fn aligned<'r>(&self, arena: &'r mut [u8]) -> Result<&'r mut [u8], Error> {
        let skip = (ALIGN - arena.as_ptr() as usize % ALIGN) % ALIGN;
        let needed = self.arena_bytes.saturating_add(skip);
        if arena.len() < needed {
            return Err(Error::ArenaTooSmall {
                needed,
                got: arena.len(),
            });
        }
        Ok(&mut arena[skip..needed])
    }

    fn view_mut<'x>(&self, b: &'x mut [u8]) -> InPlace<'x> {
        match self.elem {
            Elem::F32 => InPlace::F32(typed_mut(b)),
            Elem::I8 => InPlace::S8(typed_mut(b)),
        }
    }

    /// The in-place buffer of an element-wise layer.
    fn in_place<'x>(&self, arena: &'x mut [u8], layer: &Layer<'_>, step: &Step) -> InPlace<'x> {
        self.view_mut(&mut arena[step.x..][..bytes(layer.input, self.elem)])
    }

    /// Input, output and scratch of a layer that is not in place. One buffer is at offset
    /// 0, the scratch right after it, the other buffer at the end.
    fn io<'x>(
        &self,
        arena: &'x mut [u8],
        layer: &Layer<'_>,
        step: &Step,
    ) -> (Io<'x>, &'x mut [u8]) {
        debug_assert!(step.x == 0 || step.y == 0);
        let (x_len, y_len) = (
            bytes(layer.input, self.elem),
            bytes(layer.output, self.elem),
        );
        let (end, end_len) = if step.x == 0 {
            (step.y, y_len)
        } else {
            (step.x, x_len)
        };
        let (lo, hi) = arena.split_at_mut(end);
        let (start, mid) = lo.split_at_mut(step.scratch);
        let scratch = &mut mid[..step.scratch_len];
        let end_buf = &mut hi[..end_len];
        let (x, y): (&'x [u8], &'x mut [u8]) = if step.x == 0 {
            (&start[..x_len], end_buf)
        } else {
            (end_buf, &mut start[..y_len])
        };
        let io = match self.elem {
            Elem::F32 => Io::F32 {
                x: typed(x),
                y: typed_mut(y),
            },
            Elem::I8 => Io::S8 {
                x: typed(x),
                y: typed_mut(y),
            },
        };
        (io, scratch)
    }

    fn run_layer(&self, layer: &Layer<'a>, step: &Step, arena: &mut [u8]) {
        match layer.kind {
            LayerKind::Relu => relu::dispatch(layer, self.in_place(arena, layer, step)),
            LayerKind::Tanh { table } => {
                tanh::dispatch(self.kernels(), table, self.in_place(arena, layer, step))
            }
            LayerKind::Abs { table } => {
                abs::dispatch(self.kernels(), table, self.in_place(arena, layer, step))
            }
            LayerKind::Flatten => {} // the CHW data already is the flat vector
            LayerKind::PatchNorm { .. }
            | LayerKind::Shrink { .. }
            | LayerKind::Gain { .. }
            | LayerKind::Lista { .. }
            | LayerKind::Dictionary { .. } => self.run_encoder(layer, step, arena),
            LayerKind::Conv2d { geom, params } => {
                let (io, scratch) = self.io(arena, layer, step);
                conv2d::dispatch(self.kernels(), geom, &params, layer, io, scratch)
            }
            LayerKind::Linear { params } => {
                let (io, scratch) = self.io(arena, layer, step);
                fc::dispatch(self.kernels(), &params, layer, io, scratch)
            }
            LayerKind::MaxPool2d { k, stride } => {
                let (io, scratch) = self.io(arena, layer, step);
                maxpool::dispatch(self.kernels(), k, stride, layer, io, scratch)
            }
            LayerKind::AvgPool2d { k, stride } => {
                let (io, scratch) = self.io(arena, layer, step);
                avgpool::dispatch(self.kernels(), k, stride, layer, io, scratch)
            }
            LayerKind::Lcn { size, eps, window } => {
                let (io, scratch) = self.io(arena, layer, step);
                lcn::dispatch(
                    self.kernels(),
                    size,
                    eps,
                    window,
                    layer,
                    io,
                    typed_mut(scratch),
                )
            }
        }
    }
}

impl<'a> Plan<'_, 'a> {
    /// Runs one sparse-code encoder layer.
    #[cfg(feature = "encoders")]
    fn run_encoder(&self, layer: &Layer<'a>, step: &Step, arena: &mut [u8]) {
        match layer.kind {
            LayerKind::PatchNorm { contrast } => {
                patchnorm::dispatch(contrast, layer, self.in_place(arena, layer, step))
            }
            LayerKind::Shrink { theta } => {
                shrink::dispatch(&theta, layer, self.in_place(arena, layer, step))
            }
            LayerKind::Gain { gain, rescale } => {
                gain::dispatch(gain, rescale, layer, self.in_place(arena, layer, step))
            }
            LayerKind::Lista { steps, lateral } => {
                let (io, scratch) = self.io(arena, layer, step);
                lista::dispatch(self.kernels(), steps, &lateral, layer, io, scratch)
            }
            LayerKind::Dictionary { .. } => {} // the identity
            _ => debug_assert!(false, "only encoder layers come here"),
        }
    }

    /// Without the `encoders` feature [`Plan::new`] refuses encoder layers.
    #[cfg(not(feature = "encoders"))]
    fn run_encoder(&self, _layer: &Layer<'a>, _step: &Step, _arena: &mut [u8]) {
        debug_assert!(false, "Plan::new refuses encoder layers without `encoders`")
    }
}
