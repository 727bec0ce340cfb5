//! Fully connected (linear) layers: `fc_f32`, `fc_f16`, `fc_s8`. The input `[C, H, W]` is
//! read flattened in CHW order.

// The spec. Where a variant replaces a kernel, only `crate::check` (tests) calls it.
#[cfg_attr(not(kestrel_isa = "reference"), allow(dead_code))]
pub(crate) mod reference;

// The variant this build runs, chosen at compile time (see `runtime/build.rs` and
// `kernels/mod.rs`); `crate::check` proves it equal to the reference. Each variant file
// has the same functions as `reference.rs`, re-exporting the reference for what it does
// not speed up.
#[cfg(kestrel_isa = "dsp")]
pub(crate) mod dsp;
#[cfg(kestrel_isa = "mve")]
pub(crate) mod mve;
#[cfg(kestrel_isa = "neon")]
pub(crate) mod neon;
#[cfg(kestrel_isa = "avx2")]
pub(crate) mod x86;

#[cfg(kestrel_isa = "dsp")]
pub(crate) use dsp as isa;
#[cfg(kestrel_isa = "mve")]
pub(crate) use mve as isa;
#[cfg(kestrel_isa = "neon")]
pub(crate) use neon as isa;
#[cfg(kestrel_isa = "reference")]
pub(crate) use reference as isa;
#[cfg(kestrel_isa = "avx2")]
pub(crate) use x86 as isa;

use super::table::Kernels;
use kestrel_format::{Dense, Layer, LayerKind};

use crate::KernelSet;

use super::{DenseArgs, Elem, Io};

/// See [`DenseArgs::supports`].
pub(crate) fn supports(params: &Dense<'_>, layer: &Layer<'_>, elem: Elem) -> bool {
    DenseArgs::supports(params, layer, elem)
}

/// Scratch bytes `set`'s fully connected kernel needs: a function of shapes only, compiled
/// on every target so that a host can size a device's arena
/// ([`crate::Plan::arena_bytes_for`]). `dsp`, int8: the input length `K` rounded down to
/// groups of four, as q15, plus 3 bytes to align it; everything else: none.
pub(crate) fn scratch_len_for(set: KernelSet, layer: &Layer<'_>, elem: Elem) -> usize {
    match (set, &layer.kind, elem) {
        (KernelSet::Dsp, LayerKind::Linear { .. }, Elem::I8) => {
            (layer.input.len() & !3).saturating_mul(2).saturating_add(3)
        }
        _ => 0,
    }
}

/// Runs the layer on `io` with `scratch_len` bytes of `scratch`.
pub(crate) fn dispatch(
    kernels: &Kernels,
    params: &Dense<'_>,
    layer: &Layer<'_>,
    io: Io<'_>,
    scratch: &mut [u8],
) {
    match (DenseArgs::new(params, layer), io) {
        #[cfg(feature = "f32")]
        (Some(DenseArgs::F32(p)), Io::F32 { x, y }) => {
            kernel!(kernels, fc::fc_f32)(x, p, y, scratch)
        }
        #[cfg(feature = "f32")]
        (Some(DenseArgs::F16(p)), Io::F32 { x, y }) => {
            kernel!(kernels, fc::fc_f16)(x, p, y, scratch)
        }
        #[cfg(feature = "int8")]
        (Some(DenseArgs::S8(p)), Io::S8 { x, y }) => kernel!(kernels, fc::fc_s8)(x, p, y, scratch),
        _ => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}
