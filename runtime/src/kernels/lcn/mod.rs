//! Local contrast normalization (Jarrett et al. 2009): `lcn_f32`, `lcn_s8`.

// The spec. Where a variant replaces it, only `crate::check` (tests) calls it directly.
pub(crate) mod reference;

// The x86-64 (AVX2) and aarch64 (NEON) variants, and what they share; every other target
// (Cortex-M) runs the reference.
#[cfg(kestrel_isa = "neon")]
pub(crate) mod neon;
#[cfg(any(kestrel_isa = "avx2", kestrel_isa = "neon"))]
mod padded;
#[cfg(kestrel_isa = "avx2")]
pub(crate) mod x86;

#[cfg(kestrel_isa = "neon")]
pub(crate) use neon as isa;
#[cfg(not(any(kestrel_isa = "avx2", kestrel_isa = "neon")))]
pub(crate) use reference as isa;
#[cfg(kestrel_isa = "avx2")]
pub(crate) use x86 as isa;

use kestrel_format::Layer;

use super::table::Kernels;
use super::{Dims, Elem, Io};

/// f32 always; int8 needs both quantizations.
pub(crate) fn supports(layer: &Layer<'_>, elem: Elem) -> bool {
    elem == Elem::F32 || (layer.in_quant.is_some() && layer.out_quant.is_some())
}

/// Two f32 `[H, W]` maps (the weighted mean `m` and deviation `s`), for both element types:
/// the int8 kernel dequantizes and quantizes element by element, so it needs no f32 copy
/// of the activations. Saturates instead of overflowing (such a plan can never run).
pub(crate) fn scratch_len(layer: &Layer<'_>, _elem: Elem) -> usize {
    let hw = (layer.input.h as usize).saturating_mul(layer.input.w as usize);
    hw.saturating_mul(2 * core::mem::size_of::<f32>())
}

/// Runs the layer on `io` with `scratch` (`2·H·W` f32).
pub(crate) fn dispatch(
    kernels: &Kernels,
    size: usize,
    eps: f32,
    window: &[f32],
    layer: &Layer<'_>,
    io: Io<'_>,
    scratch: &mut [f32],
) {
    let xd: Dims = layer.input.into();
    let lcn = reference::Lcn { size, eps, window };
    match (io, layer.in_quant, layer.out_quant) {
        #[cfg(feature = "f32")]
        (Io::F32 { x, y }, ..) => kernel!(kernels, lcn::lcn_f32)(x, xd, lcn, scratch, y),
        #[cfg(feature = "int8")]
        (Io::S8 { x, y }, Some(qi), Some(qo)) => {
            kernel!(kernels, lcn::lcn_s8)(x, qi, xd, lcn, scratch, qo, y)
        }
        _ => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}
