//! Row-major SGEMMs on cuBLAS (column-major) and the fully connected layers built on them.
//!
//! A row-major `C [m, n] = op(A)·op(B)` is the column-major `Cᵀ = op(B)ᵀ·op(A)ᵀ`: the same
//! buffers, with the operands and the dimensions `m`, `n` swapped.

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{Gemm, GemmConfig, StridedBatchedConfig};
use cudarc::driver::{DevicePtr, DevicePtrMut};

use super::{grid, launch, per_block, Cuda, CudaTensor};
use crate::backend::LinearShape;
use crate::error::Result;

/// One row-major GEMM, or `batch` of them at fixed strides (in floats):
/// `C_i [m, n] = α·op(A_i)·op(B_i) + β·C_i`, `op(A_i)` `m × k`, `op(B_i)` `k × n`, leading
/// dimensions (row strides) `lda`, `ldb`, `ldc`. With `β = 0`, `C` is not read.
#[derive(Debug, Clone, Copy)]
pub(super) struct RowMajor {
    pub ta: bool,
    pub tb: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub lda: usize,
    pub ldb: usize,
    pub beta: f32,
    pub ldc: usize,
    pub batch: usize,
    pub stride_a: usize,
    pub stride_b: usize,
    pub stride_c: usize,
}

impl RowMajor {
    /// A single, unbatched product with packed leading dimensions.
    pub fn single(ta: bool, tb: bool, m: usize, n: usize, k: usize, alpha: f32, beta: f32) -> Self {
        RowMajor {
            ta,
            tb,
            m,
            n,
            k,
            alpha,
            lda: if ta { m } else { k },
            ldb: if tb { k } else { n },
            beta,
            ldc: n,
            batch: 1,
            stride_a: 0,
            stride_b: 0,
            stride_c: 0,
        }
    }
}

impl Cuda {
    /// Enqueues `g` on cuBLAS. The callers check that the buffers hold what `g` indexes.
    pub(super) fn sgemm<A: DevicePtr<f32>, B: DevicePtr<f32>, C: DevicePtrMut<f32>>(
        &self,
        op: &str,
        g: &RowMajor,
        a: &A,
        b: &B,
        c: &mut C,
    ) -> Result<()> {
        if g.m == 0 || g.n == 0 || g.batch == 0 {
            return Ok(());
        }
        let int = |v: usize, what: &str| {
            i32::try_from(v)
                .map_err(|_| self.fail(op, format!("{what} = {v} exceeds cuBLAS's int")))
        };
        let t = |trans: bool| {
            if trans {
                cublasOperation_t::CUBLAS_OP_T
            } else {
                cublasOperation_t::CUBLAS_OP_N
            }
        };
        // Column-major: Cᵀ [n, m] = op(B)ᵀ [n, k] · op(A)ᵀ [k, m].
        let cfg = GemmConfig {
            transa: t(g.tb),
            transb: t(g.ta),
            m: int(g.n, "n")?,
            n: int(g.m, "m")?,
            k: int(g.k, "k")?,
            alpha: g.alpha,
            lda: int(g.ldb.max(1), "ldb")?,
            ldb: int(g.lda.max(1), "lda")?,
            beta: g.beta,
            ldc: int(g.ldc.max(1), "ldc")?,
        };
        self.ctx.bind_to_thread().map_err(|e| self.fail(op, e))?;
        // SAFETY: the callers checked every buffer's length against `g`.
        let res = unsafe {
            if g.batch == 1 {
                self.blas.gemm(cfg, b, a, c)
            } else {
                let batched = StridedBatchedConfig {
                    gemm: cfg,
                    batch_size: int(g.batch, "batch")?,
                    stride_a: g.stride_b as i64,
                    stride_b: g.stride_a as i64,
                    stride_c: g.stride_c as i64,
                };
                self.blas.gemm_strided_batched(batched, b, a, c)
            }
        };
        res.map_err(|e| self.fail(op, format!("cuBLAS: {e:?}")))
    }

    /// [`crate::backend::Backend::gemm`] on tensors.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn gemm_tensors(
        &self,
        ta: bool,
        tb: bool,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: &CudaTensor,
        b: &CudaTensor,
        beta: f32,
        c: &mut CudaTensor,
    ) -> Result<()> {
        let op = "gemm";
        self.has_len(op, "a", a, m * k)?;
        self.has_len(op, "b", b, k * n)?;
        self.has_len(op, "c", c, m * n)?;
        self.sgemm(
            op,
            &RowMajor::single(ta, tb, m, n, k, alpha, beta),
            &a.buf,
            &b.buf,
            &mut c.buf,
        )
    }

    /// `y [n, out] = x [n, in] · wᵀ + b`: the bias rows, then one SGEMM accumulating.
    pub(super) fn linear_forward(
        &self,
        s: &LinearShape,
        n: usize,
        x: &CudaTensor,
        w: &CudaTensor,
        b: &CudaTensor,
        y: &mut CudaTensor,
    ) -> Result<()> {
        let op = "linear_fwd";
        let (ni, no) = (s.inputs, s.outputs);
        self.has_len(op, "x", x, n * ni)?;
        self.has_len(op, "w", w, no * ni)?;
        self.has_len(op, "b", b, no)?;
        self.has_len(op, "y", y, n * no)?;
        let (len, channels, inner) = ((n * no) as i64, no as i32, 1i64);
        launch!(self, op, "bias_rows_f32", grid(n * no);
            &mut y.buf, &b.buf, &len, &channels, &inner)?;
        let g = RowMajor::single(false, true, n, no, ni, 1.0, 1.0);
        self.sgemm(op, &g, &x.buf, &w.buf, &mut y.buf)
    }

    /// Linear gradients: `dx = dy · w`, `dw = dyᵀ · x` (SGEMMs), `db = Σ_n dy` (fixed-order
    /// column sums).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn linear_backward(
        &self,
        s: &LinearShape,
        n: usize,
        x: &CudaTensor,
        w: &CudaTensor,
        dy: &CudaTensor,
        dx: Option<&mut CudaTensor>,
        dw: &mut CudaTensor,
        db: &mut CudaTensor,
    ) -> Result<()> {
        let op = "linear_bwd";
        let (ni, no) = (s.inputs, s.outputs);
        self.has_len(op, "x", x, n * ni)?;
        self.has_len(op, "w", w, no * ni)?;
        self.has_len(op, "dy", dy, n * no)?;
        self.has_len(op, "dw", dw, no * ni)?;
        self.has_len(op, "db", db, no)?;
        if let Some(dx) = dx {
            self.has_len(op, "dx", dx, n * ni)?;
            let g = RowMajor::single(false, false, n, ni, no, 1.0, 0.0);
            self.sgemm(op, &g, &dy.buf, &w.buf, &mut dx.buf)?;
        }
        if n == 0 {
            // No samples: zero gradients (cuBLAS with k = 0 is not relied upon).
            let (len, zero) = ((no * ni) as i64, 0.0f32);
            launch!(self, op, "fill_f32", grid(no * ni); &mut dw.buf, &len, &zero)?;
        } else {
            let g = RowMajor::single(true, false, no, ni, n, 1.0, 0.0);
            self.sgemm(op, &g, &dy.buf, &x.buf, &mut dw.buf)?;
        }
        if no > 0 {
            let (len, channels, inner) = ((n * no) as i64, no as i32, 1i64);
            launch!(self, op, "channel_sum_f32", per_block(no);
                &mut db.buf, &dy.buf, &len, &channels, &inner)?;
        }
        Ok(())
    }
}
