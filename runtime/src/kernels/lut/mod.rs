//! 256-entry int8 lookup tables (int8 tanh and abs), in place: `lut_s8`.
//!
//! Variants: AVX2 (`x86.rs`, 16 `VPSHUFB` rows per 32 codes) and NEON (`neon.rs`, four
//! 64-entry `TBL` quarters per 16 codes). int8 `jarrett`, `kestrel eval --layer-times`
//! medians over 3,000 images, AMD EPYC (Zen 4), plain release build: tanh and abs on
//! 8×28×28 3.44 / 3.24 µs with the scalar reference, 0.94 / 0.95 µs with AVX2; on
//! 16×10×10 0.90 / 0.87 → 0.27 / 0.27 µs; the whole network 76.8 → 69.0 µs.

// The spec. Where a variant replaces it, only `crate::check` (tests) calls it directly.
pub(crate) mod reference;

#[cfg(kestrel_isa = "neon")]
pub(crate) mod neon;
#[cfg(kestrel_isa = "avx2")]
pub(crate) mod x86;

// The Cortex-M sets run the reference (`dsp`, `mve`: a table lookup is a load per code
// there, and no instruction looks up more than 16 entries at once).
#[cfg(kestrel_isa = "neon")]
pub(crate) use neon as isa;
#[cfg(not(any(kestrel_isa = "avx2", kestrel_isa = "neon")))]
pub(crate) use reference as isa;
#[cfg(kestrel_isa = "avx2")]
pub(crate) use x86 as isa;

use super::table::Kernels;
use super::Elem;

/// Int8 activations and a 256-entry table.
pub(crate) fn supports(table: Option<&[i8]>, elem: Elem) -> bool {
    elem == Elem::I8 && table.is_some_and(|t| t.len() == 256)
}

/// In place, no scratch.
pub(crate) fn scratch_len(_elem: Elem) -> usize {
    0
}

/// For element-wise ops that are a function in f32 and a table in int8 (tanh, abs): f32
/// activations without a table, or int8 activations with one.
pub(crate) fn table_op_supports(table: Option<&[i8]>, elem: Elem) -> bool {
    match elem {
        Elem::F32 => table.is_none(),
        Elem::I8 => supports(table, elem),
    }
}

/// Scratch of such an op: the table's in int8, none in f32.
pub(crate) fn table_op_scratch_len(table: Option<&[i8]>, elem: Elem) -> usize {
    match (table, elem) {
        (Some(_), Elem::I8) => scratch_len(elem),
        _ => 0,
    }
}

/// Maps `xy` through `table`.
pub(crate) fn dispatch(kernels: &Kernels, table: &[i8], xy: &mut [i8]) {
    kernel!(kernels, lut::lut_s8)(table, xy)
}
