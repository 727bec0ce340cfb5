//! Convolutions as im2col + cuBLAS, a chunk of samples at a time.
//!
//! Per chunk of `count` samples, `col [K, count·P]` (`K = in_c·k·k`, `P = out_h·out_w`,
//! column `i·P + p` for sample `i`) holds the patches (`im2col_f32`), so:
//! - forward: `y_i [out_c, P] += w [out_c, K] · col_i` as one strided-batched SGEMM over
//!   the chunk, onto `y` pre-filled with the bias;
//! - weight gradient: `dw [out_c, K] (+)= dyᵀ_chunk [out_c, count·P] · colᵀ`, one SGEMM per
//!   chunk, chunks in order (`β = 0` for the first), so the batch sum is fixed-order;
//! - input gradient: `dcol = wᵀ · dy` (one SGEMM), then `col2im_f32` gathers each input
//!   element's entries;
//! - bias gradient: `channel_sum_f32` over the whole batch.
//!
//! Chunks are sized from the shape alone (at most [`COL_FLOATS`] floats of columns), so
//! the same shape always sums in the same order.

use super::blas::RowMajor;
use super::{grid, launch, per_block, Cuda, CudaTensor};
use crate::backend::ConvShape;
use crate::error::Result;

/// Upper bound on the column scratch, in floats (128 MiB).
const COL_FLOATS: usize = 1 << 25;

/// Samples per chunk for shape `s` and batch `n` (at least one).
fn chunk_len(s: &ConvShape, n: usize) -> usize {
    let per_sample = (s.patch_len() * s.out_h * s.out_w).max(1);
    (COL_FLOATS / per_sample).clamp(1, n.max(1))
}

/// The geometry arguments of `im2col_f32` and `col2im_f32`, after `first` and `count`.
fn geometry(s: &ConvShape) -> [i32; 8] {
    [
        s.in_c, s.in_h, s.in_w, s.kernel, s.stride, s.pad, s.out_h, s.out_w,
    ]
    .map(|v| v as i32)
}

impl Cuda {
    /// Forward convolution (see the module doc).
    pub(super) fn conv_fwd(
        &self,
        s: &ConvShape,
        n: usize,
        x: &CudaTensor,
        w: &CudaTensor,
        b: &CudaTensor,
        y: &mut CudaTensor,
    ) -> Result<()> {
        let op = "conv2d_fwd";
        let (kl, p, out_len) = (s.patch_len(), s.out_h * s.out_w, s.out_len());
        self.has_len(op, "x", x, n * s.in_len())?;
        self.has_len(op, "w", w, s.weight_len())?;
        self.has_len(op, "b", b, s.out_c)?;
        self.has_len(op, "y", y, n * out_len)?;
        if n == 0 || out_len == 0 {
            return Ok(());
        }
        let (len, channels, inner) = ((n * out_len) as i64, s.out_c as i32, p as i64);
        launch!(self, op, "bias_rows_f32", grid(n * out_len);
            &mut y.buf, &b.buf, &len, &channels, &inner)?;
        let chunk = chunk_len(s, n);
        let mut guard = self.scratch();
        let col = self.grow(op, &mut guard.col, kl * chunk * p)?;
        let [ic, ih, iw, k, st, pad, oh, ow] = geometry(s);
        for first in (0..n).step_by(chunk) {
            let count = chunk.min(n - first);
            let (f, c) = (first as i64, count as i32);
            launch!(self, op, "im2col_f32", grid(kl * count * p);
                &mut *col, &x.buf, &f, &c, &ic, &ih, &iw, &k, &st, &pad, &oh, &ow)?;
            let g = RowMajor {
                lda: kl,
                ldb: count * p,
                ldc: p,
                batch: count,
                stride_a: 0,
                stride_b: p,
                stride_c: out_len,
                ..RowMajor::single(false, false, s.out_c, p, kl, 1.0, 1.0)
            };
            let mut ys = y.buf.slice_mut(first * out_len..(first + count) * out_len);
            self.sgemm(op, &g, &w.buf, &*col, &mut ys)?;
        }
        Ok(())
    }

    /// Convolution gradients `db`, `dw` and (when given) `dx` (see the module doc).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn conv_bwd(
        &self,
        s: &ConvShape,
        n: usize,
        x: &CudaTensor,
        w: &CudaTensor,
        dy: &CudaTensor,
        mut dx: Option<&mut CudaTensor>,
        dw: &mut CudaTensor,
        db: &mut CudaTensor,
    ) -> Result<()> {
        let op = "conv2d_bwd";
        let (kl, p, out_len) = (s.patch_len(), s.out_h * s.out_w, s.out_len());
        self.has_len(op, "x", x, n * s.in_len())?;
        self.has_len(op, "w", w, s.weight_len())?;
        self.has_len(op, "dy", dy, n * out_len)?;
        self.has_len(op, "dw", dw, s.weight_len())?;
        self.has_len(op, "db", db, s.out_c)?;
        if let Some(dx) = dx.as_deref() {
            self.has_len(op, "dx", dx, n * s.in_len())?;
        }
        if s.out_c == 0 {
            return Ok(());
        }
        let (len, channels, inner) = ((n * out_len) as i64, s.out_c as i32, p as i64);
        launch!(self, op, "channel_sum_f32", per_block(s.out_c);
            &mut db.buf, &dy.buf, &len, &channels, &inner)?;
        if n == 0 || p == 0 {
            let (wl, zero) = (s.weight_len() as i64, 0.0f32);
            launch!(self, op, "fill_f32", grid(s.weight_len()); &mut dw.buf, &wl, &zero)?;
            if let Some(dx) = dx {
                let (xl, zero) = (dx.len as i64, 0.0f32);
                launch!(self, op, "fill_f32", grid(dx.len); &mut dx.buf, &xl, &zero)?;
            }
            return Ok(());
        }
        let chunk = chunk_len(s, n);
        let mut guard = self.scratch();
        let scratch = &mut *guard;
        let col = self.grow(op, &mut scratch.col, kl * chunk * p)?;
        let dyt = self.grow(op, &mut scratch.tmp, s.out_c * chunk * p)?;
        let [ic, ih, iw, k, st, pad, oh, ow] = geometry(s);
        for first in (0..n).step_by(chunk) {
            let count = chunk.min(n - first);
            let (f, c, cp) = (first as i64, count as i32, count * p);
            launch!(self, op, "im2col_f32", grid(kl * cp);
                &mut *col, &x.buf, &f, &c, &ic, &ih, &iw, &k, &st, &pad, &oh, &ow)?;
            let (oc, pl) = (s.out_c as i32, p as i64);
            launch!(self, op, "nchw_to_cnhw_f32", grid(s.out_c * cp);
                &mut *dyt, &dy.buf, &f, &c, &oc, &pl)?;
            // dw (+)= dyt [out_c, count·P] · colᵀ
            let beta = if first == 0 { 0.0 } else { 1.0 };
            let g = RowMajor::single(false, true, s.out_c, kl, cp, 1.0, beta);
            self.sgemm(op, &g, &*dyt, &*col, &mut dw.buf)?;
            if let Some(dx) = dx.as_deref_mut() {
                // dcol [K, count·P] = wᵀ · dyt, into `col` (the stream orders it after dw).
                let g = RowMajor::single(true, false, kl, cp, s.out_c, 1.0, 0.0);
                self.sgemm(op, &g, &w.buf, &*dyt, &mut *col)?;
                launch!(self, op, "col2im_f32", grid(count * s.in_len());
                    &mut dx.buf, &*col, &f, &c, &ic, &ih, &iw, &k, &st, &pad, &oh, &ow)?;
            }
        }
        Ok(())
    }

    /// The transposed convolution `dx = col2im(wᵀ · dy)`, chunk by chunk.
    pub(super) fn conv_bwd_data(
        &self,
        s: &ConvShape,
        n: usize,
        w: &CudaTensor,
        dy: &CudaTensor,
        dx: &mut CudaTensor,
    ) -> Result<()> {
        let op = "conv2d_bwd_data";
        let (kl, p, out_len) = (s.patch_len(), s.out_h * s.out_w, s.out_len());
        self.has_len(op, "w", w, s.weight_len())?;
        self.has_len(op, "dy", dy, n * out_len)?;
        self.has_len(op, "dx", dx, n * s.in_len())?;
        if n == 0 {
            return Ok(());
        }
        if p == 0 || s.out_c == 0 {
            let (xl, zero) = (dx.len as i64, 0.0f32);
            return launch!(self, op, "fill_f32", grid(dx.len); &mut dx.buf, &xl, &zero);
        }
        let chunk = chunk_len(s, n);
        let mut guard = self.scratch();
        let col = self.grow(op, &mut guard.col, kl * chunk * p)?;
        let [ic, ih, iw, k, st, pad, oh, ow] = geometry(s);
        for first in (0..n).step_by(chunk) {
            let count = chunk.min(n - first);
            let (f, c) = (first as i64, count as i32);
            // dcol_i [K, P] = wᵀ · dy_i, sample i's columns of the wide `col`.
            let g = RowMajor {
                lda: kl,
                ldb: p,
                ldc: count * p,
                batch: count,
                stride_a: 0,
                stride_b: out_len,
                stride_c: p,
                ..RowMajor::single(true, false, kl, p, s.out_c, 1.0, 0.0)
            };
            let dys = dy.buf.slice(first * out_len..(first + count) * out_len);
            self.sgemm(op, &g, &w.buf, &dys, &mut *col)?;
            launch!(self, op, "col2im_f32", grid(count * s.in_len());
                &mut dx.buf, &*col, &f, &c, &ic, &ih, &iw, &k, &st, &pad, &oh, &ow)?;
        }
        Ok(())
    }
}
