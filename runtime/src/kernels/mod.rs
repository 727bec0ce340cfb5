//! The kernels, one folder per operation.
//!
//! Each `<op>/mod.rs` has the same three functions:
//! - `supports`: whether this build has a kernel for the layer at the model's activation
//!   type ([`crate::Plan::new`] turns `false` into [`crate::Error::Unsupported`]);
//! - `scratch_len` (convolution and fully connected: `scratch_len_for`, taking a
//!   [`crate::KernelSet`]): scratch bytes the variant needs, a function of the layer's
//!   shapes and kind only. Every set's rule is compiled on every target, so that a host can
//!   size a device's arena ([`crate::Plan::arena_bytes_for`]);
//! - `dispatch`: runs the layer with a kernel table's function.
//!
//! **Variants.** Convolution, fully connected, pooling, local contrast normalization (AVX2
//! and NEON), the input stage and the LISTA step have per-instruction-set files beside
//! `reference.rs` (`x86.rs` for AVX2, with AVX-512 VNNI entries for int8, `neon.rs`, with
//! `SDOT` entries for int8, `dsp.rs`, `mve.rs`; helpers shared by one instruction set's
//! files in `kernels/<isa>.rs`, by one op's variants in that op's folder). A build compiles
//! the files of its architecture (`cfg(kestrel_isa = "…")`, set by `runtime/build.rs`:
//! every x86-64 build has the AVX2 files, every aarch64 build the NEON ones), re-exported as
//! `<op>::isa`,
//! and [`table`] gathers them into kernel tables: [`table::Kernels::REFERENCE`] and
//! [`table::Kernels::VARIANT`]. A plan calls the table of the set it runs (chosen at run
//! time with the `std` feature; see [`crate::KernelSet`]). Every variant file has the same
//! functions with the same signatures as `reference.rs`, re-exporting the reference for
//! those it does not speed up, and each kernel takes a final `scratch: &mut [u8]` of exactly
//! the bytes its set's scratch rule (in the op's `mod.rs`) gives (the reference takes and
//! ignores it). Scratch must stay small: the arena is held to 1.05× the sum of the largest
//! layer's input and output. `crate::check` is the one test that proves every set this CPU
//! runs bit-exact against the reference, on the variant's own instruction set.
//!
//! `reference.rs` is scalar, safe and commented with tensor shapes: it is the spec every
//! other variant is tested against. Activations are CHW; every slice a kernel gets has
//! exactly the length its shapes say (guaranteed by the model validator and the plan, and
//! only `debug_assert!`ed here).

use half::f16;

/// The function `$f` of op `$op` in the plan's kernel set `$kernels`: through the table on
/// hosts (`cfg(kestrel_tables)`: the set is picked when the plan is made); on Cortex-M
/// firmware the one set compiled in (`$op::isa::$f`), called directly, so that the kernels
/// inline as they did before the tables and `.text` does not grow.
#[allow(unused_macros)] // a build with neither precision dispatches nothing
macro_rules! kernel {
    ($kernels:expr, $op:ident :: $f:ident) => {{
        #[cfg(kestrel_tables)]
        let f = $kernels.$f;
        #[cfg(not(kestrel_tables))]
        let f = {
            let _: &$crate::kernels::table::Kernels = $kernels;
            $crate::kernels::$op::isa::$f
        };
        f
    }};
}
#[allow(unused_imports)] // used by `crate::sparse`, which needs `f32` and `encoders`
pub(crate) use kernel;
use kestrel_format::{quant::requantize, Dense, Layer, Shape};

pub(crate) mod abs;
pub(crate) mod avgpool;
pub(crate) mod conv2d;
// Shared by the Cortex-M variants.
#[cfg(any(kestrel_isa = "dsp", kestrel_isa = "mve"))]
mod cortex_m;
pub(crate) mod fc;
#[cfg(feature = "encoders")]
pub(crate) mod gain;
pub(crate) mod lcn;
#[cfg(feature = "encoders")]
pub(crate) mod lista;
pub(crate) mod lut;
pub(crate) mod maxpool;
#[cfg(kestrel_isa = "neon")]
pub(crate) mod neon;
#[cfg(feature = "encoders")]
pub(crate) mod patchnorm;
// Pooling of any window and stride on eight f32 lanes (AVX2, NEON).
#[cfg(any(kestrel_isa = "avx2", kestrel_isa = "neon"))]
pub(crate) mod pool_any;
pub(crate) mod quantize;
pub(crate) mod relu;
#[cfg(feature = "encoders")]
pub(crate) mod shrink;
// Kernel tables on hosts and for the checks; firmware calls its one set directly.
#[cfg(kestrel_tables)]
pub(crate) mod table;
#[cfg(not(kestrel_tables))]
#[path = "table_direct.rs"]
pub(crate) mod table;
pub(crate) mod tanh;
/// Helpers shared by the AVX2 variants (`<op>/x86.rs`).
#[cfg(kestrel_isa = "avx2")]
mod x86;

/// Activation element type: f32 for F32 and F16 models, i8 codes for Int8 models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem {
    F32,
    I8,
}

impl Elem {
    /// Bytes per element.
    pub(crate) const fn size(self) -> usize {
        match self {
            Elem::F32 => 4,
            Elem::I8 => 1,
        }
    }
}

/// A layer's input and output activations, in two disjoint arena regions.
pub(crate) enum Io<'x> {
    F32 { x: &'x [f32], y: &'x mut [f32] },
    S8 { x: &'x [i8], y: &'x mut [i8] },
}

/// The activations of an element-wise layer, updated in place.
pub(crate) enum InPlace<'x> {
    F32(&'x mut [f32]),
    S8(&'x mut [i8]),
}

/// A `[c, h, w]` activation shape as indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Dims {
    pub(crate) const fn len(self) -> usize {
        self.c * self.h * self.w
    }
}

impl From<Shape> for Dims {
    fn from(s: Shape) -> Self {
        Dims {
            c: s.c as usize,
            h: s.h as usize,
            w: s.w as usize,
        }
    }
}

/// Weights the float kernels read: f32 as is, f16 widened on the fly.
pub(crate) trait Widen: Copy {
    fn widen(self) -> f32;
}

impl Widen for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl Widen for f16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

/// An f16-weight layer on a variant's f32 kernel: the weights of as many whole output
/// channels as fit a 32 KiB stack buffer widened to f32 by `widen` (exactly, as the
/// reference widens them on the fly), then `run(channels, params)` on them. The f32
/// kernels do the reference's f32 arithmetic per channel, so the result is the
/// reference's f16 result bit for bit. `false`, having run nothing, if one channel's
/// weights do not fit.
#[cfg(any(kestrel_isa = "avx2", kestrel_isa = "neon"))]
#[inline(always)]
pub(crate) fn widened(
    p: DenseF<'_, f16>,
    widen: impl Fn(&[f16], &mut [f32]),
    mut run: impl FnMut(core::ops::Range<usize>, DenseF<'_, f32>),
) -> bool {
    const CAP: usize = 8192;
    let oc = p.bias.len();
    let per_out = p.weight.len() / oc.max(1);
    if per_out == 0 || per_out > CAP {
        return oc == 0;
    }
    let mut buf = [0f32; CAP];
    for o0 in (0..oc).step_by(CAP / per_out) {
        let o1 = (o0 + CAP / per_out).min(oc);
        let weight = &mut buf[..(o1 - o0) * per_out];
        widen(&p.weight[o0 * per_out..o1 * per_out], weight);
        let bias = &p.bias[o0..o1];
        run(o0..o1, DenseF { weight, bias });
    }
    true
}

/// Float convolution / linear parameters: weight `[out, in…]`, bias `[out]` (f32).
#[derive(Clone, Copy)]
pub(crate) struct DenseF<'p, W> {
    pub weight: &'p [W],
    pub bias: &'p [f32],
}

/// int8 convolution / linear parameters, all per output channel `[out]` except `weight`
/// (`[out, in…]`, symmetric).
#[derive(Clone, Copy)]
pub(crate) struct DenseS8<'p> {
    pub weight: &'p [i8],
    pub bias: &'p [i32],
    pub multiplier: &'p [i32],
    pub shift: &'p [i32],
    /// Zero point of the input codes (the code of real 0, used for padding too).
    pub zp_in: i32,
    /// Zero point of the output codes.
    pub zp_out: i32,
}

impl DenseS8<'_> {
    /// Output code of channel `o` for the accumulator `Σ w·(x − zp_in)` (bias not yet added):
    /// `clamp(zp_out + requantize(bias[o] + sum), -128, 127)`.
    ///
    /// The accumulator is i32 and wraps like the two's complement hardware it mirrors (a
    /// channel needs more than 65 793 taps before it can overflow).
    #[inline(always)]
    pub(crate) fn output(&self, o: usize, sum: i32) -> i8 {
        let acc = self.bias[o].wrapping_add(sum);
        let y = self
            .zp_out
            .saturating_add(requantize(acc, self.multiplier[o], self.shift[o]));
        y.clamp(-128, 127) as i8
    }
}

/// A convolution or linear layer's parameters as the kernels take them, resolved once from
/// the model's [`Dense`] and the layer's quantization.
#[derive(Clone, Copy)]
pub(crate) enum DenseArgs<'p> {
    F32(DenseF<'p, f32>),
    F16(DenseF<'p, f16>),
    S8(DenseS8<'p>),
}

impl<'p> DenseArgs<'p> {
    /// `None` for int8 weights without both quantizations (the validator rules that out).
    pub(crate) fn new(params: &Dense<'p>, layer: &Layer<'_>) -> Option<Self> {
        Some(match *params {
            Dense::F32 { weight, bias } => DenseArgs::F32(DenseF { weight, bias }),
            Dense::F16 { weight, bias } => DenseArgs::F16(DenseF { weight, bias }),
            Dense::I8 {
                weight,
                bias,
                multiplier,
                shift,
                ..
            } => DenseArgs::S8(DenseS8 {
                weight,
                bias,
                multiplier,
                shift,
                zp_in: layer.in_quant?.zero_point,
                zp_out: layer.out_quant?.zero_point,
            }),
        })
    }

    /// f32 and f16 weights run on f32 activations, int8 weights on int8 activations with
    /// both quantizations known.
    pub(crate) fn supports(params: &Dense<'_>, layer: &Layer<'_>, elem: Elem) -> bool {
        match DenseArgs::new(params, layer) {
            Some(DenseArgs::F32(_) | DenseArgs::F16(_)) => elem == Elem::F32,
            Some(DenseArgs::S8(_)) => elem == Elem::I8,
            None => false,
        }
    }
}

/// Input row (or column) read by output position `i` at kernel tap `p`, or `None` when it
/// falls in the zero padding: `i·stride + p − pad` if it lies in `0..n`.
#[inline(always)]
pub(crate) fn tap(i: usize, p: usize, stride: usize, pad: usize, n: usize) -> Option<usize> {
    (i * stride + p).checked_sub(pad).filter(|&r| r < n)
}

/// The `k × k` pooling window (no padding) of output element `o` (flat index into
/// `[C, OH, OW]`), in `(p, q)` order: `x[c, i·stride + p, j·stride + q]`.
pub(crate) fn pool_window<T: Copy>(
    x: &[T],
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    o: usize,
) -> impl Iterator<Item = T> + '_ {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert!(k >= 1 && (yd.h - 1) * stride + k <= xd.h && (yd.w - 1) * stride + k <= xd.w);
    let (c, i, j) = (o / (yd.h * yd.w), o / yd.w % yd.h, o % yd.w);
    let corner = (c * xd.h + i * stride) * xd.w + j * stride;
    (0..k).flat_map(move |p| x[corner + p * xd.w..][..k].iter().copied())
}
