//! `|x|`, in place: `abs_f32` (libm), and in int8 models the layer's lookup table
//! through [`super::lut`] (AVX2 and NEON variants there).
//!
//! `abs_f32` has no SIMD variant, because none would pay: clearing the sign bit compiles to
//! vector instructions on every target with SIMD. f32 `jarrett`, `kestrel eval
//! --layer-times` medians, AMD EPYC (Zen 4): 0.46 µs on 8×28×28, 0.14 µs on 16×10×10, of
//! a 186 µs network.

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
        (_, InPlace::F32(xy)) => reference::abs_f32(xy),
        #[cfg(feature = "int8")]
        (Some(table), InPlace::S8(xy)) => lut::dispatch(kernels, table, xy),
        #[cfg(feature = "int8")]
        (None, InPlace::S8(_)) => debug_assert!(false, "Plan::new admits only supported layers"),
        #[cfg(not(all(feature = "f32", feature = "int8")))]
        _ => debug_assert!(false, "Plan::new admits only the precisions built"),
    }
}
