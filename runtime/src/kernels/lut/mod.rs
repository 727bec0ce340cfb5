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
pub(crate) fn dispatch(table: &[i8], xy: &mut [i8]) {
    reference::lut_s8(table, xy)
}
