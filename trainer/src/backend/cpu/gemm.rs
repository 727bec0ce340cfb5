//! A bounds-checked wrapper over two GEMM crates, the only `unsafe` in the CPU backend.
//! Each call says which it needs ([`Rows`]):
//!
//! - [`Rows::ByShape`]: the `gemm` crate, the faster one at the convolution's shapes (few
//!   output channels, long rows); it picks kernels by shape, so a product's bits depend on `m`.
//! - [`Rows::Independent`]: `matrixmultiply`, whose kernels sum every output in the same order
//!   whatever `m`: row `i` of `c` depends only on row `i` of `a`. The fully connected layers'
//!   per-sample products use it, so a sample's result does not depend on the batch around
//!   it (eval in any chunking gives the same logits).

/// What a product's rows may depend on (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub(super) enum Rows {
    /// Any kernel choice: row `i`'s bits may depend on `m` (the `gemm` crate).
    ByShape,
    /// Row `i` of `c` is a function of row `i` of `a` alone (`matrixmultiply`).
    Independent,
}

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

fn check(m: usize, k: usize, n: usize, a: &Mat<'_>, b: &Mat<'_>, c: &MatMut<'_>) {
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
}

/// `c ← alpha·a·b + beta·c` with `a: m × k`, `b: k × n`, `c: m × n`. With `beta == 0`, `c`
/// is not read. Single-threaded and deterministic: callers parallelize over fixed blocks.
#[allow(clippy::too_many_arguments)]
pub(super) fn sgemm(
    rows: Rows,
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat<'_>,
    b: Mat<'_>,
    beta: f32,
    c: MatMut<'_>,
) {
    check(m, k, n, &a, &b, &c);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the asserts above keep every index the kernels can touch inside the three
    // slices; `c` is borrowed mutably, so it cannot alias `a` or `b`; strides fit in isize
    // because the addressed spans fit in allocations.
    match rows {
        // `gemm` computes `dst ← α·dst + β·lhs·rhs` (its α and β are the other way round
        // from BLAS) and, with `read_dst` false, never reads `dst`; one thread
        // (`Parallelism::None`), so the result does not depend on the caller's thread count.
        Rows::ByShape => unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.data.as_mut_ptr(),
                c.cs as isize,
                c.rs as isize,
                beta != 0.0,
                a.data.as_ptr(),
                a.cs as isize,
                a.rs as isize,
                b.data.as_ptr(),
                b.cs as isize,
                b.rs as isize,
                beta,
                alpha,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        },
        // `matrixmultiply` reads `c` only when `beta != 0`.
        Rows::Independent => unsafe {
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
            )
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_match_naive_with_transposes() {
        let (m, k, n) = (3, 4, 5);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 2.0).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 - 3.0).collect(); // [n, k]
        for rows in [Rows::ByShape, Rows::Independent] {
            let mut c = vec![1.0; m * n];
            sgemm(
                rows,
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

    #[test]
    fn rowwise_rows_do_not_depend_on_m() {
        let (k, n) = (400, 120);
        let a: Vec<f32> = (0..64 * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        // The fully connected layer's product: `b` is the transpose of a row-major `[n, k]`.
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i * 53 % 89) as f32 - 44.0) / 9.0)
            .collect();
        let product = |m: usize| {
            let mut c = vec![0.0; m * n];
            sgemm(
                Rows::Independent,
                m,
                k,
                n,
                1.0,
                mat(&a, k),
                mat_t(&w, k),
                0.0,
                mat_mut(&mut c, n),
            );
            c
        };
        let all = product(64);
        for m in [1, 2, 7, 16, 33] {
            assert_eq!(product(m)[..], all[..m * n], "m = {m}");
        }
    }
}
