//! A bounds-checked wrapper over `matrixmultiply::sgemm`, the only `unsafe` in the CPU backend.

/// A strided matrix view: element `(i, j)` is `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(super) struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// A mutable strided matrix view.
pub(super) struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rs: usize,
    pub cs: usize,
}

/// Row-major `rows × cols` view of `data`.
pub(super) fn mat(data: &[f32], cols: usize) -> Mat<'_> {
    Mat {
        data,
        rs: cols,
        cs: 1,
    }
}

/// The transpose of a row-major `rows × cols` matrix stored in `data`.
pub(super) fn mat_t(data: &[f32], cols: usize) -> Mat<'_> {
    Mat {
        data,
        rs: 1,
        cs: cols,
    }
}

/// Row-major mutable view.
pub(super) fn mat_mut(data: &mut [f32], cols: usize) -> MatMut<'_> {
    MatMut {
        data,
        rs: cols,
        cs: 1,
    }
}

fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `c ← alpha·a·b + beta·c` with `a: m × k`, `b: k × n`, `c: m × n`. With `beta == 0`, `c`
/// is not read. Single-threaded and deterministic: callers parallelize over fixed blocks.
#[allow(clippy::too_many_arguments)]
pub(super) fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat<'_>,
    b: Mat<'_>,
    beta: f32,
    c: MatMut<'_>,
) {
    assert!(
        fits(a.data.len(), m, k, a.rs, a.cs),
        "gemm: a is too short for {m}×{k}"
    );
    assert!(
        fits(b.data.len(), k, n, b.rs, b.cs),
        "gemm: b is too short for {k}×{n}"
    );
    assert!(
        fits(c.data.len(), m, n, c.rs, c.cs),
        "gemm: c is too short for {m}×{n}"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the asserts above keep every index the kernel can touch inside the three
    // slices; `c` is borrowed mutably, so it cannot alias `a` or `b`; strides fit in isize
    // because the addressed spans fit in allocations.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr(),
            c.rs as isize,
            c.cs as isize,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_with_transposes() {
        let (m, k, n) = (3, 4, 5);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 2.0).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 - 3.0).collect(); // [n, k]
        let mut c = vec![1.0; m * n];
        sgemm(
            m,
            k,
            n,
            2.0,
            mat(&a, k),
            mat_t(&bt, k),
            0.5,
            mat_mut(&mut c, n),
        );
        for i in 0..m {
            for j in 0..n {
                let dot: f32 = (0..k).map(|t| a[i * k + t] * bt[j * k + t]).sum();
                assert_eq!(c[i * n + j], 2.0 * dot + 0.5);
            }
        }
    }
}
