//! Max pooling, `k × k` window, stride, no padding: `maxpool_f32`, `maxpool_s8` (int8 output
//! keeps the input's quantization).

// The spec. Where a variant replaces a kernel, only `crate::check` (tests) calls it.
#[cfg_attr(not(kestrel_isa = "reference"), allow(dead_code))]
pub(crate) mod reference;

// The variant this build runs, chosen at compile time (see `runtime/build.rs` and
// `kernels/mod.rs`); `crate::check` proves it equal to the reference. Each variant file
// has the same functions as `reference.rs`, re-exporting the reference for what it does
// not speed up.
#[cfg(kestrel_isa = "neon")]
pub(crate) mod neon;
#[cfg(kestrel_isa = "avx2")]
pub(crate) mod x86;
// Helium cores (Cortex-M55/M85) have the DSP extension too; their `mve.rs` uses it.
#[cfg(any(kestrel_isa = "dsp", kestrel_isa = "mve"))]
pub(crate) mod dsp;
#[cfg(kestrel_isa = "mve")]
pub(crate) mod mve;

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
use kestrel_format::Layer;

use super::{Dims, Elem, Io};

/// Every activation type.
pub(crate) fn supports(_layer: &Layer<'_>, _elem: Elem) -> bool {
    true
}

/// No variant needs scratch.
pub(crate) fn scratch_len(_layer: &Layer<'_>, _elem: Elem) -> usize {
    0
}

/// Runs the layer on `io` with `scratch_len` bytes of `scratch`.
pub(crate) fn dispatch(
    kernels: &Kernels,
    k: usize,
    stride: usize,
    layer: &Layer<'_>,
    io: Io<'_>,
    scratch: &mut [u8],
) {
    let (xd, yd): (Dims, Dims) = (layer.input.into(), layer.output.into());
    match io {
        #[cfg(feature = "f32")]
        Io::F32 { x, y } => {
            kernel!(kernels, maxpool::maxpool_f32)(x, xd, k, stride, yd, y, scratch)
        }
        #[cfg(feature = "int8")]
        Io::S8 { x, y } => kernel!(kernels, maxpool::maxpool_s8)(x, xd, k, stride, yd, y, scratch),
        #[cfg(not(all(feature = "f32", feature = "int8")))]
        _ => debug_assert!(false, "Plan::new admits only the precisions built"),
    }
}
