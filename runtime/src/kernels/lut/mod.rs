//! 256-entry int8 lookup tables (int8 tanh and abs), in place: `lut_s8`.

mod reference;

use super::Elem;

/// Int8 activations and a 256-entry table.
pub(crate) fn supports(table: Option<&[i8]>, elem: Elem) -> bool {
    elem == Elem::I8 && table.is_some_and(|t| t.len() == 256)
}

/// In place, no scratch.
pub(crate) fn scratch_len(_elem: Elem) -> usize {
    0
}

/// Maps `xy` through `table`.
pub(crate) fn dispatch(table: &[i8], xy: &mut [i8]) {
    reference::lut_s8(table, xy)
}
