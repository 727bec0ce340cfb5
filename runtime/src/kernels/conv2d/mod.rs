//! 2-D convolution (cross-correlation, zero padding): `conv2d_f32`, `conv2d_f16`,
//! `conv2d_s8`.

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
use kestrel_format::{ConvGeom, Dense, Layer, LayerKind};

use crate::KernelSet;

use super::{DenseArgs, Dims, Elem, Io};

/// See [`DenseArgs::supports`].
pub(crate) fn supports(params: &Dense<'_>, layer: &Layer<'_>, elem: Elem) -> bool {
    DenseArgs::supports(params, layer, elem)
}

/// Output positions per im2col block of the DSP and Helium convolutions.
pub(crate) const DSP_COLS: usize = 4;
/// See [`DSP_COLS`].
pub(crate) const MVE_COLS: usize = 4;

/// Columns of `mve`'s f32 row buffer `[C, KH, WP]`: those one output row's windows read,
/// `WP = (OW − 1)·stride + KW`.
pub(crate) const fn mve_f32_row_width(ow: usize, g: ConvGeom) -> usize {
    ow.saturating_sub(1) * g.stride + g.kw
}

/// Scratch bytes `set`'s convolution needs: a function of shapes only, compiled on every
/// target so that a host can size a device's arena ([`crate::Plan::arena_bytes_for`]).
/// - `dsp`, int8: four im2col columns of `C·KH·KW` taps (rounded up to groups of four) as
///   q15, plus 3 bytes to align them: 227 bytes for LeNet's first convolution (25 taps);
/// - `mve`, int8: four im2col columns of `C·KH·KW` int8 codes, then (4-byte aligned) each
///   output channel's weight sum and its four raw sums: 223 bytes for LeNet's first;
/// - `mve`, f32: one output row's input rows `[C, KH, WP]` as f32 (see
///   [`mve_f32_row_width`]), plus 3 bytes to align them: 1683 bytes for LeNet's second;
/// - everything else: none (the x86 and NEON variants keep their blocks on the stack).
pub(crate) fn scratch_len_for(set: KernelSet, layer: &Layer<'_>, elem: Elem) -> usize {
    let LayerKind::Conv2d { geom, .. } = &layer.kind else {
        return 0;
    };
    // Saturating throughout: a 32-bit target must not wrap a huge layer's needs into a
    // small arena (a saturated size can never be provided, so such a plan never runs).
    let taps = (layer.input.c as usize).saturating_mul(geom.kh * geom.kw);
    let oc = layer.output.c as usize;
    match (set, elem) {
        (KernelSet::Dsp, Elem::I8) => (taps.saturating_add(3) & !3)
            .saturating_mul(DSP_COLS * 2)
            .saturating_add(3),
        (KernelSet::Mve, Elem::I8) => taps
            .saturating_mul(MVE_COLS)
            .saturating_add(3)
            .saturating_add(oc.saturating_mul((1 + MVE_COLS) * 4)),
        (KernelSet::Mve, Elem::F32) => {
            let rows = (layer.input.c as usize).saturating_mul(geom.kh);
            rows.saturating_mul(mve_f32_row_width(layer.output.w as usize, *geom))
                .saturating_mul(4)
                .saturating_add(3)
        }
        _ => 0,
    }
}

/// An f16-weight convolution on a variant's f32 kernel `conv_f32`: output channels in
/// blocks whose weights, widened by `widen`, fit the stack ([`crate::kernels::widened`]);
/// the reference where one channel's do not.
#[cfg(any(kestrel_isa = "avx2", kestrel_isa = "neon"))]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn f16_on_f32(
    x: &[f32],
    xd: Dims,
    p: super::DenseF<'_, half::f16>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [f32],
    scratch: &mut [u8],
    widen: impl Fn(&[half::f16], &mut [f32]),
    conv_f32: impl Fn(&[f32], Dims, super::DenseF<'_, f32>, ConvGeom, Dims, &mut [f32], &mut [u8]),
) {
    let plane = yd.h * yd.w;
    let ran = crate::kernels::widened(p, widen, |o, p| {
        let oy = &mut y[o.start * plane..o.end * plane];
        conv_f32(x, xd, p, g, Dims { c: o.len(), ..yd }, oy, scratch)
    });
    if !ran {
        reference::conv2d_f16(x, xd, p, g, yd, y, scratch)
    }
}

/// Runs the layer on `io` with `scratch_len` bytes of `scratch`.
pub(crate) fn dispatch(
    kernels: &Kernels,
    geom: ConvGeom,
    params: &Dense<'_>,
    layer: &Layer<'_>,
    io: Io<'_>,
    scratch: &mut [u8],
) {
    let (xd, yd): (Dims, Dims) = (layer.input.into(), layer.output.into());
    match (DenseArgs::new(params, layer), io) {
        #[cfg(feature = "f32")]
        (Some(DenseArgs::F32(p)), Io::F32 { x, y }) => {
            kernel!(kernels, conv2d::conv2d_f32)(x, xd, p, geom, yd, y, scratch)
        }
        #[cfg(feature = "f32")]
        (Some(DenseArgs::F16(p)), Io::F32 { x, y }) => {
            kernel!(kernels, conv2d::conv2d_f16)(x, xd, p, geom, yd, y, scratch)
        }
        #[cfg(feature = "int8")]
        (Some(DenseArgs::S8(p)), Io::S8 { x, y }) => {
            kernel!(kernels, conv2d::conv2d_s8)(x, xd, p, geom, yd, y, scratch)
        }
        _ => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}
