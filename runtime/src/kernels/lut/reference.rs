//! Scalar reference table lookup: the specification.

/// `y = table[q + 128]`, in place on `xy` `[N]`; `table` has 256 entries (checked by the
/// model validator).
pub(crate) fn lut_s8(table: &[i8], xy: &mut [i8]) {
    debug_assert_eq!(table.len(), 256);
    for v in xy {
        *v = table[(*v as i32 + 128) as usize];
    }
}
