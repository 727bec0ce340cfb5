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

use kestrel_format::{ConvGeom, Dense, Layer};

use super::{DenseArgs, Elem, Io};

/// See [`DenseArgs::supports`].
pub(crate) fn supports(params: &Dense<'_>, layer: &Layer<'_>, elem: Elem) -> bool {
    DenseArgs::supports(params, layer, elem)
}

/// Scratch bytes the compiled variant needs (none for the reference).
pub(crate) fn scratch_len(layer: &Layer<'_>, elem: Elem) -> usize {
    isa::scratch_len(layer, elem)
}

/// Runs the layer on `io` with `scratch_len` bytes of `scratch`.
pub(crate) fn dispatch(
    geom: ConvGeom,
    params: &Dense<'_>,
    layer: &Layer<'_>,
    io: Io<'_>,
    scratch: &mut [u8],
) {
    let (xd, yd) = (layer.input.into(), layer.output.into());
    match (DenseArgs::new(params, layer), io) {
        (Some(DenseArgs::F32(p)), Io::F32 { x, y }) => {
            isa::conv2d_f32(x, xd, p, geom, yd, y, scratch)
        }
        (Some(DenseArgs::F16(p)), Io::F32 { x, y }) => {
            isa::conv2d_f16(x, xd, p, geom, yd, y, scratch)
        }
        (Some(DenseArgs::S8(p)), Io::S8 { x, y }) => isa::conv2d_s8(x, xd, p, geom, yd, y, scratch),
        _ => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}
