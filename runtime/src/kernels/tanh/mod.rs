//! `tanh(x)`, in place: `tanh_f32` (libm), and in int8 models the layer's lookup table
//! through [`super::lut`] (AVX2 and NEON variants there).
//!
//! `tanh_f32` has no SIMD variant: its specification is `libm::tanhf`, element by element,
//! and a vector tanh rounds differently, so it could not be bit-exact with the reference
//! (a different specification would change every f32 model's outputs). It is the largest
//! cost of f32 `jarrett` (`kestrel eval --layer-times` medians, AMD EPYC (Zen 4): 78 µs on
//! 8×28×28 and 24 µs on 16×10×10, of 186 µs); int8 models look tanh up in a table instead
//! (0.94 µs and 0.27 µs).

mod reference;

use super::table::Kernels;
use super::{lut, InPlace};

/// In place; the table's scratch in int8.
pub(crate) use super::lut::table_op_scratch_len as scratch_len;
/// f32 activations without a table, or int8 activations with one.
pub(crate) use super::lut::table_op_supports as supports;

/// Runs the layer on `xy`.
pub(crate) fn dispatch(kernels: &Kernels, table: Option<&[i8]>, xy: InPlace<'_>) {
    match (table, xy) {
        #[cfg(feature = "f32")]
        (_, InPlace::F32(xy)) => reference::tanh_f32(xy),
        #[cfg(feature = "int8")]
        (Some(table), InPlace::S8(xy)) => lut::dispatch(kernels, table, xy),
        #[cfg(feature = "int8")]
        (None, InPlace::S8(_)) => debug_assert!(false, "Plan::new admits only supported layers"),
        #[cfg(not(all(feature = "f32", feature = "int8")))]
        _ => debug_assert!(false, "Plan::new admits only the precisions built"),
    }
}
