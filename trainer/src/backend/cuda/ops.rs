//! [`Backend`] for [`Cuda`]: argument checks and launches; the GEMM-based ops are in
//! `blas.rs` and `conv.rs`.

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::{grid, launch, per_block, Cuda, CudaTensor, LCN_PLANES, LCN_THREADS};
use crate::backend::{
    Activation, Backend, ConvShape, LcnShape, LinearShape, LossOut, PoolShape, Thresh,
};
use crate::config::LossKind;
use crate::error::Result;

/// `act_fwd_f32`'s `kind`.
fn act_kind(f: Activation) -> i32 {
    match f {
        Activation::Relu => 0,
        Activation::Tanh => 1,
        Activation::Abs => 2,
    }
}

/// A per-channel threshold as `shrink_*_f32` arguments: `(theta buffer, channels, inner,
/// scalar)`; a scalar threshold passes `x` as an unread buffer and `channels = 0`.
fn thresh_args<'t>(
    theta: Thresh<'t, CudaTensor>,
    x: &'t CudaTensor,
) -> (&'t CudaSlice<f32>, i32, i64, f32) {
    match theta {
        Thresh::Scalar(t) => (&x.buf, 0, 1, t),
        Thresh::PerChannel { theta, inner } => (&theta.buf, theta.len as i32, inner as i64, 0.0),
    }
}

impl Backend for Cuda {
    type Tensor = CudaTensor;

    fn name(&self) -> &'static str {
        "cuda"
    }

    fn zeros(&self, len: usize) -> Result<CudaTensor> {
        Ok(CudaTensor {
            buf: self.alloc("zeros", len)?,
            len,
        })
    }
    fn upload(&self, data: &[f32]) -> Result<CudaTensor> {
        let mut t = self.zeros(data.len())?;
        self.upload_into(&mut t, data)?;
        Ok(t)
    }
    fn upload_into(&self, t: &mut CudaTensor, data: &[f32]) -> Result<()> {
        self.same_len("upload_into", &[t.len, data.len()])?;
        if data.is_empty() {
            return Ok(());
        }
        self.stream
            .memcpy_htod(data, &mut t.buf)
            .map_err(|e| self.fail("upload_into", e))
    }
    fn download(&self, t: &CudaTensor) -> Result<Vec<f32>> {
        if t.len == 0 {
            return Ok(Vec::new());
        }
        self.stream
            .clone_dtoh(&t.buf.slice(..t.len))
            .map_err(|e| self.fail("download", e))
    }
    fn len(&self, t: &CudaTensor) -> usize {
        t.len
    }
    fn fill(&self, t: &mut CudaTensor, value: f32) -> Result<()> {
        let n = t.len as i64;
        launch!(self, "fill", "fill_f32", grid(t.len); &mut t.buf, &n, &value)
    }
    fn copy(&self, src: &CudaTensor, dst: &mut CudaTensor) -> Result<()> {
        self.same_len("copy", &[src.len, dst.len])?;
        if src.len == 0 {
            return Ok(());
        }
        self.stream
            .memcpy_dtod(&src.buf.slice(..src.len), &mut dst.buf.slice_mut(..src.len))
            .map_err(|e| self.fail("copy", e))
    }

    fn conv2d_fwd(
        &self,
        s: &ConvShape,
        n: usize,
        x: &CudaTensor,
        w: &CudaTensor,
        b: &CudaTensor,
        y: &mut CudaTensor,
    ) -> Result<()> {
        self.conv_fwd(s, n, x, w, b, y)
    }
    fn conv2d_bwd(
        &self,
        s: &ConvShape,
        n: usize,
        x: &CudaTensor,
        w: &CudaTensor,
        dy: &CudaTensor,
        dx: Option<&mut CudaTensor>,
        dw: &mut CudaTensor,
        db: &mut CudaTensor,
    ) -> Result<()> {
        self.conv_bwd(s, n, x, w, dy, dx, dw, db)
    }
    fn conv2d_bwd_data(
        &self,
        s: &ConvShape,
        n: usize,
        w: &CudaTensor,
        dy: &CudaTensor,
        dx: &mut CudaTensor,
    ) -> Result<()> {
        self.conv_bwd_data(s, n, w, dy, dx)
    }

    fn linear_fwd(
        &self,
        s: &LinearShape,
        n: usize,
        x: &CudaTensor,
        w: &CudaTensor,
        b: &CudaTensor,
        y: &mut CudaTensor,
    ) -> Result<()> {
        self.linear_forward(s, n, x, w, b, y)
    }
    fn linear_bwd(
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
        self.linear_backward(s, n, x, w, dy, dx, dw, db)
    }

    fn act_fwd(&self, f: Activation, x: &CudaTensor, y: &mut CudaTensor) -> Result<()> {
        self.same_len("act_fwd", &[x.len, y.len])?;
        let (n, kind) = (x.len as i64, act_kind(f));
        launch!(self, "act_fwd", "act_fwd_f32", grid(x.len); &mut y.buf, &x.buf, &n, &kind)
    }
    fn act_bwd(
        &self,
        f: Activation,
        x: &CudaTensor,
        y: &CudaTensor,
        dy: &CudaTensor,
        dx: &mut CudaTensor,
    ) -> Result<()> {
        self.same_len("act_bwd", &[x.len, y.len, dy.len, dx.len])?;
        let (n, kind) = (x.len as i64, act_kind(f));
        launch!(self, "act_bwd", "act_bwd_f32", grid(x.len);
            &mut dx.buf, &x.buf, &y.buf, &dy.buf, &n, &kind)
    }

    fn maxpool_fwd(
        &self,
        s: &PoolShape,
        n: usize,
        x: &CudaTensor,
        y: &mut CudaTensor,
    ) -> Result<()> {
        self.pool("maxpool_fwd", "maxpool_fwd_f32", s, n, None, x, y, true)
    }
    fn maxpool_bwd(
        &self,
        s: &PoolShape,
        n: usize,
        x: &CudaTensor,
        dy: &CudaTensor,
        dx: &mut CudaTensor,
    ) -> Result<()> {
        self.pool(
            "maxpool_bwd",
            "maxpool_bwd_f32",
            s,
            n,
            Some(x),
            dy,
            dx,
            false,
        )
    }
    fn avgpool_fwd(
        &self,
        s: &PoolShape,
        n: usize,
        x: &CudaTensor,
        y: &mut CudaTensor,
    ) -> Result<()> {
        self.pool("avgpool_fwd", "avgpool_fwd_f32", s, n, None, x, y, true)
    }
    fn avgpool_bwd(
        &self,
        s: &PoolShape,
        n: usize,
        dy: &CudaTensor,
        dx: &mut CudaTensor,
    ) -> Result<()> {
        self.pool("avgpool_bwd", "avgpool_bwd_f32", s, n, None, dy, dx, false)
    }

    fn lcn_fwd(
        &self,
        s: &LcnShape,
        n: usize,
        window: &CudaTensor,
        x: &CudaTensor,
        y: &mut CudaTensor,
    ) -> Result<()> {
        let op = "lcn_fwd";
        self.has_len(op, "x", x, n * s.len())?;
        self.has_len(op, "y", y, n * s.len())?;
        self.lcn(op, s, n, window, x, None, y)
    }
    fn lcn_bwd(
        &self,
        s: &LcnShape,
        n: usize,
        window: &CudaTensor,
        x: &CudaTensor,
        dy: &CudaTensor,
        dx: &mut CudaTensor,
    ) -> Result<()> {
        let op = "lcn_bwd";
        self.has_len(op, "x", x, n * s.len())?;
        self.has_len(op, "dy", dy, n * s.len())?;
        self.has_len(op, "dx", dx, n * s.len())?;
        self.lcn(op, s, n, window, x, Some(dy), dx)
    }

    fn dropout_fwd(&self, p: f32, seed: u64, x: &CudaTensor, y: &mut CudaTensor) -> Result<()> {
        self.same_len("dropout_fwd", &[x.len, y.len])?;
        let (n, scale) = (x.len as i64, 1.0f32 / (1.0 - p));
        launch!(self, "dropout_fwd", "dropout_fwd_f32", grid(x.len);
            &mut y.buf, &x.buf, &n, &seed, &p, &scale)
    }
    fn dropout_bwd(&self, p: f32, seed: u64, dy: &CudaTensor, dx: &mut CudaTensor) -> Result<()> {
        self.same_len("dropout_bwd", &[dy.len, dx.len])?;
        let (n, scale) = (dy.len as i64, 1.0f32 / (1.0 - p));
        launch!(self, "dropout_bwd", "dropout_bwd_f32", grid(dy.len);
            &mut dx.buf, &dy.buf, &n, &seed, &p, &scale)
    }

    fn loss(
        &self,
        kind: LossKind,
        classes: usize,
        logits: &CudaTensor,
        labels: &[u8],
        dlogits: &mut CudaTensor,
    ) -> Result<LossOut> {
        let n = labels.len();
        self.same_len("loss", &[logits.len, dlogits.len, n * classes])?;
        if n == 0 {
            return Ok(LossOut {
                loss: 0.0,
                correct: 0,
            });
        }
        let op = "loss";
        let labels_dev = self
            .stream
            .clone_htod(labels)
            .map_err(|e| self.fail("loss: labels", e))?;
        let mut per = self
            .stream
            .alloc_zeros::<f64>(2 * n)
            .map_err(|e| self.fail("loss: alloc", e))?;
        let name = match kind {
            LossKind::Nll => "loss_nll_f32",
            LossKind::Hinge => "loss_hinge_f32",
        };
        let (ni, ci, inv_n) = (n as i32, classes as i32, 1.0f32 / n as f32);
        let cfg = LaunchConfig {
            grid_dim: (n.div_ceil(128) as u32, 1, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        launch!(self, op, name, cfg;
            &mut dlogits.buf, &mut per, &logits.buf, &labels_dev, &ni, &ci, &inv_n)?;
        let host = self
            .stream
            .clone_dtoh(&per)
            .map_err(|e| self.fail("loss: download", e))?;
        let total: f64 = host[..n].iter().sum();
        let correct = host[n..].iter().filter(|&&c| c > 0.5).count();
        Ok(LossOut {
            loss: (total / n as f64) as f32,
            correct,
        })
    }

    fn sgd_update(
        &self,
        w: &mut CudaTensor,
        v: &mut CudaTensor,
        g: &CudaTensor,
        lr: f32,
        momentum: f32,
        decay: f32,
    ) -> Result<()> {
        self.same_len("sgd_update", &[w.len, v.len, g.len])?;
        let n = w.len as i64;
        launch!(self, "sgd_update", "sgd_update_f32", grid(w.len);
            &mut w.buf, &mut v.buf, &g.buf, &n, &lr, &momentum, &decay)
    }

    fn adam_update(
        &self,
        w: &mut CudaTensor,
        m: &mut CudaTensor,
        v: &mut CudaTensor,
        g: &CudaTensor,
        lr: f32,
        (b1, b2): (f32, f32),
        eps: f32,
        t: u32,
    ) -> Result<()> {
        self.same_len("adam_update", &[w.len, m.len, v.len, g.len])?;
        // The bias corrections exactly as the CPU backend computes them (f32 `powi`).
        let t = t.max(1) as i32;
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let n = w.len as i64;
        launch!(self, "adam_update", "adam_update_f32", grid(w.len);
            &mut w.buf, &mut m.buf, &mut v.buf, &g.buf, &n, &lr, &b1, &b2, &eps, &c1, &c2)
    }

    fn gemm(
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
        self.gemm_tensors(ta, tb, m, n, k, alpha, a, b, beta, c)
    }

    fn axpby(&self, alpha: f32, x: &CudaTensor, beta: f32, y: &mut CudaTensor) -> Result<()> {
        self.same_len("axpby", &[x.len, y.len])?;
        let n = x.len as i64;
        launch!(self, "axpby", "axpby_f32", grid(x.len); &mut y.buf, &x.buf, &n, &alpha, &beta)
    }
    fn add_sign(&self, alpha: f32, x: &CudaTensor, y: &mut CudaTensor) -> Result<()> {
        self.same_len("add_sign", &[x.len, y.len])?;
        let n = x.len as i64;
        launch!(self, "add_sign", "add_sign_f32", grid(x.len); &mut y.buf, &x.buf, &n, &alpha)
    }
    fn shrink_fwd(
        &self,
        theta: Thresh<'_, CudaTensor>,
        x: &CudaTensor,
        y: &mut CudaTensor,
    ) -> Result<()> {
        self.same_len("shrink_fwd", &[x.len, y.len])?;
        let (th, channels, inner, scalar) = thresh_args(theta, x);
        let n = x.len as i64;
        launch!(self, "shrink_fwd", "shrink_fwd_f32", grid(x.len);
            &mut y.buf, &x.buf, &n, th, &channels, &inner, &scalar)
    }
    fn shrink_bwd(
        &self,
        theta: Thresh<'_, CudaTensor>,
        x: &CudaTensor,
        dy: &CudaTensor,
        dx: &mut CudaTensor,
        dtheta: Option<&mut CudaTensor>,
    ) -> Result<()> {
        let op = "shrink_bwd";
        self.same_len(op, &[x.len, dy.len, dx.len])?;
        let (th, channels, inner, scalar) = thresh_args(theta, x);
        let n = x.len as i64;
        launch!(self, op, "shrink_bwd_f32", grid(x.len);
            &mut dx.buf, &x.buf, &dy.buf, &n, th, &channels, &inner, &scalar)?;
        if let (Some(dt), Thresh::PerChannel { .. }) = (dtheta, theta) {
            self.has_len(op, "dtheta", dt, channels as usize)?;
            if channels > 0 {
                launch!(self, op, "shrink_dtheta_f32", per_block(channels as usize);
                    &mut dt.buf, th, &x.buf, &dy.buf, &n, &channels, &inner)?;
            }
        }
        Ok(())
    }
    fn scale_fwd(
        &self,
        inner: usize,
        g: &CudaTensor,
        x: &CudaTensor,
        y: &mut CudaTensor,
    ) -> Result<()> {
        self.same_len("scale_fwd", &[x.len, y.len])?;
        let (n, channels, inner) = (x.len as i64, g.len as i32, inner as i64);
        launch!(self, "scale_fwd", "scale_fwd_f32", grid(x.len);
            &mut y.buf, &g.buf, &x.buf, &n, &channels, &inner)
    }
    fn scale_bwd(
        &self,
        inner: usize,
        g: &CudaTensor,
        x: &CudaTensor,
        dy: &CudaTensor,
        dx: &mut CudaTensor,
        dg: Option<&mut CudaTensor>,
    ) -> Result<()> {
        let op = "scale_bwd";
        self.same_len(op, &[x.len, dy.len, dx.len])?;
        let (n, channels, inner) = (x.len as i64, g.len as i32, inner as i64);
        launch!(self, op, "scale_fwd_f32", grid(x.len);
            &mut dx.buf, &g.buf, &dy.buf, &n, &channels, &inner)?;
        if let Some(dg) = dg {
            self.has_len(op, "dg", dg, g.len)?;
            if g.len > 0 {
                launch!(self, op, "channel_dot_f32", per_block(g.len);
                    &mut dg.buf, &x.buf, &dy.buf, &n, &channels, &inner)?;
            }
        }
        Ok(())
    }
    fn row_sq_norms(
        &self,
        rows: usize,
        cols: usize,
        x: &CudaTensor,
        out: &mut CudaTensor,
    ) -> Result<()> {
        self.row_reduce("row_sq_norms", "row_sq_norms_f32", rows, cols, x, out)
    }
    fn row_abs_sums(
        &self,
        rows: usize,
        cols: usize,
        x: &CudaTensor,
        out: &mut CudaTensor,
    ) -> Result<()> {
        self.row_reduce("row_abs_sums", "row_abs_sums_f32", rows, cols, x, out)
    }
    fn normalize_columns(&self, rows: usize, cols: usize, d: &mut CudaTensor) -> Result<()> {
        let op = "normalize_columns";
        self.has_len(op, "d", d, rows * cols)?;
        if cols == 0 || rows == 0 {
            return Ok(());
        }
        let (r, c) = (rows as i64, cols as i64);
        launch!(self, op, "normalize_columns_f32", per_block(cols); &mut d.buf, &r, &c)
    }
}

impl Cuda {
    /// LCN, one block per sample with [`LCN_PLANES`] scratch planes each: the forward
    /// (`dy = None`, `out = y`) or the gradient (`out = dx`).
    #[allow(clippy::too_many_arguments)]
    fn lcn(
        &self,
        op: &str,
        s: &LcnShape,
        n: usize,
        window: &CudaTensor,
        x: &CudaTensor,
        dy: Option<&CudaTensor>,
        out: &mut CudaTensor,
    ) -> Result<()> {
        self.has_len(op, "window", window, s.size * s.size)?;
        if n == 0 || s.is_empty() {
            return Ok(());
        }
        let mut guard = self.scratch();
        let scratch = self.grow(op, &mut guard.tmp, n * LCN_PLANES * s.h * s.w)?;
        let [c, h, w, size] = [s.c, s.h, s.w, s.size].map(|v| v as i32);
        let cfg = LaunchConfig {
            grid_dim: (n as u32, 1, 1),
            block_dim: (LCN_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        match dy {
            None => launch!(self, op, "lcn_fwd_f32", cfg;
                &mut out.buf, &x.buf, &window.buf, &mut *scratch, &c, &h, &w, &size, &s.eps),
            Some(dy) => launch!(self, op, "lcn_bwd_f32", cfg;
                &mut out.buf, &x.buf, &dy.buf, &window.buf, &mut *scratch,
                &c, &h, &w, &size, &s.eps),
        }
    }

    /// `out[r] = Σ_c f(x[r, c])` by `kernel`, one block per row.
    fn row_reduce(
        &self,
        op: &str,
        kernel: &str,
        rows: usize,
        cols: usize,
        x: &CudaTensor,
        out: &mut CudaTensor,
    ) -> Result<()> {
        self.has_len(op, "x", x, rows * cols)?;
        self.has_len(op, "out", out, rows)?;
        if rows == 0 {
            return Ok(());
        }
        let c = cols as i64;
        launch!(self, op, kernel, per_block(rows); &mut out.buf, &x.buf, &c)
    }

    /// A pooling kernel over `n` samples: forward (`src` = `x [n, c, in_h, in_w]`, `dst` =
    /// `y`) or backward (`src` = `dy`, `dst` = `dx`, `x` for max pooling's argmax).
    #[allow(clippy::too_many_arguments)]
    fn pool(
        &self,
        op: &str,
        kernel: &str,
        s: &PoolShape,
        n: usize,
        x: Option<&CudaTensor>,
        src: &CudaTensor,
        dst: &mut CudaTensor,
        forward: bool,
    ) -> Result<()> {
        let (src_len, dst_len) = if forward {
            (n * s.in_len(), n * s.out_len())
        } else {
            (n * s.out_len(), n * s.in_len())
        };
        self.has_len(op, "input", src, src_len)?;
        self.has_len(op, "output", dst, dst_len)?;
        if let Some(x) = x {
            self.has_len(op, "x", x, n * s.in_len())?;
        }
        let planes = (n * s.c) as i64;
        let [ih, iw, k, st, oh, ow] =
            [s.in_h, s.in_w, s.kernel, s.stride, s.out_h, s.out_w].map(|v| v as i32);
        let cfg = grid(dst_len);
        match x {
            Some(x) => launch!(self, op, kernel, cfg;
                &mut dst.buf, &x.buf, &src.buf, &planes, &ih, &iw, &k, &st, &oh, &ow),
            None => launch!(self, op, kernel, cfg;
                &mut dst.buf, &src.buf, &planes, &ih, &iw, &k, &st, &oh, &ow),
        }
    }
}
