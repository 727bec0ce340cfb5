//! `|x|`, in place: `abs_f32` (libm), and in int8 models the layer's lookup table
//! through [`super::lut`].

mod reference;

use super::{lut, Elem, InPlace};

/// f32 activations without a table, or int8 activations with one.
pub(crate) fn supports(table: Option<&[i8]>, elem: Elem) -> bool {
    match elem {
        Elem::F32 => table.is_none(),
        Elem::I8 => lut::supports(table, elem),
    }
}

/// In place, no scratch.
pub(crate) fn scratch_len(table: Option<&[i8]>, elem: Elem) -> usize {
    match (table, elem) {
        (Some(_), Elem::I8) => lut::scratch_len(elem),
        _ => 0,
    }
}

/// Runs the layer on `xy`.
pub(crate) fn dispatch(table: Option<&[i8]>, xy: InPlace<'_>) {
    match (table, xy) {
        (_, InPlace::F32(xy)) => reference::abs_f32(xy),
        (Some(table), InPlace::S8(xy)) => lut::dispatch(table, xy),
        (None, InPlace::S8(_)) => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}
