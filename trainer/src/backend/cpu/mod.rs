//! The CPU backend: the readable reference trainer, fast enough to be the default.
//!
//! One file per op family, each commented with its tensor shapes. Parallel over the batch
//! with rayon (the pool the caller runs in); GEMMs by the `gemm` and `matrixmultiply` crates (`gemm.rs` says which
//! where). Results are the same
//! bits for any number of threads: work is split into fixed blocks, and batch reductions
//! (the convolution weight gradient) sum fixed-chunk partials in chunk order.

mod activation;
mod conv;
mod gemm;
mod lcn;
mod linalg;
mod linear;
mod loss;
mod pool;
mod sgd;
mod shrink;

use super::{Activation, Backend, ConvShape, LcnShape, LinearShape, LossOut, PoolShape, Thresh};
use crate::config::LossKind;
use crate::error::Result;

/// Host tensors, computed on rayon's current thread pool.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu;

impl Cpu {
    /// The CPU backend.
    pub fn new() -> Cpu {
        Cpu
    }
}

impl Backend for Cpu {
    type Tensor = Vec<f32>;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn zeros(&self, len: usize) -> Result<Vec<f32>> {
        Ok(vec![0.0; len])
    }
    fn upload(&self, data: &[f32]) -> Result<Vec<f32>> {
        Ok(data.to_vec())
    }
    fn upload_into(&self, t: &mut Vec<f32>, data: &[f32]) -> Result<()> {
        t.copy_from_slice(data);
        Ok(())
    }
    fn download(&self, t: &Vec<f32>) -> Result<Vec<f32>> {
        Ok(t.clone())
    }
    fn len(&self, t: &Vec<f32>) -> usize {
        t.len()
    }
    fn fill(&self, t: &mut Vec<f32>, value: f32) -> Result<()> {
        t.fill(value);
        Ok(())
    }
    fn copy(&self, src: &Vec<f32>, dst: &mut Vec<f32>) -> Result<()> {
        dst.copy_from_slice(src);
        Ok(())
    }

    fn conv2d_fwd(
        &self,
        s: &ConvShape,
        n: usize,
        x: &Vec<f32>,
        w: &Vec<f32>,
        b: &Vec<f32>,
        y: &mut Vec<f32>,
    ) -> Result<()> {
        conv::conv2d_fwd(s, n, x, w, b, y);
        Ok(())
    }
    fn conv2d_bwd(
        &self,
        s: &ConvShape,
        n: usize,
        x: &Vec<f32>,
        w: &Vec<f32>,
        dy: &Vec<f32>,
        dx: Option<&mut Vec<f32>>,
        dw: &mut Vec<f32>,
        db: &mut Vec<f32>,
    ) -> Result<()> {
        conv::conv2d_bwd(s, n, x, w, dy, dx.map(|d| d.as_mut_slice()), dw, db);
        Ok(())
    }

    fn conv2d_bwd_data(
        &self,
        s: &ConvShape,
        n: usize,
        w: &Vec<f32>,
        dy: &Vec<f32>,
        dx: &mut Vec<f32>,
    ) -> Result<()> {
        conv::conv2d_bwd_data(s, n, w, dy, dx);
        Ok(())
    }

    fn linear_fwd(
        &self,
        s: &LinearShape,
        n: usize,
        x: &Vec<f32>,
        w: &Vec<f32>,
        b: &Vec<f32>,
        y: &mut Vec<f32>,
    ) -> Result<()> {
        linear::linear_fwd(s, n, x, w, b, y);
        Ok(())
    }
    fn linear_bwd(
        &self,
        s: &LinearShape,
        n: usize,
        x: &Vec<f32>,
        w: &Vec<f32>,
        dy: &Vec<f32>,
        dx: Option<&mut Vec<f32>>,
        dw: &mut Vec<f32>,
        db: &mut Vec<f32>,
    ) -> Result<()> {
        linear::linear_bwd(s, n, x, w, dy, dx.map(|d| d.as_mut_slice()), dw, db);
        Ok(())
    }

    fn act_fwd(&self, f: Activation, x: &Vec<f32>, y: &mut Vec<f32>) -> Result<()> {
        activation::act_fwd(f, x, y);
        Ok(())
    }
    fn act_bwd(
        &self,
        f: Activation,
        x: &Vec<f32>,
        y: &Vec<f32>,
        dy: &Vec<f32>,
        dx: &mut Vec<f32>,
    ) -> Result<()> {
        activation::act_bwd(f, x, y, dy, dx);
        Ok(())
    }

    fn maxpool_fwd(&self, s: &PoolShape, n: usize, x: &Vec<f32>, y: &mut Vec<f32>) -> Result<()> {
        pool::maxpool_fwd(s, n, x, y);
        Ok(())
    }
    fn maxpool_bwd(
        &self,
        s: &PoolShape,
        n: usize,
        x: &Vec<f32>,
        dy: &Vec<f32>,
        dx: &mut Vec<f32>,
    ) -> Result<()> {
        pool::maxpool_bwd(s, n, x, dy, dx);
        Ok(())
    }
    fn avgpool_fwd(&self, s: &PoolShape, n: usize, x: &Vec<f32>, y: &mut Vec<f32>) -> Result<()> {
        pool::avgpool_fwd(s, n, x, y);
        Ok(())
    }
    fn avgpool_bwd(&self, s: &PoolShape, n: usize, dy: &Vec<f32>, dx: &mut Vec<f32>) -> Result<()> {
        pool::avgpool_bwd(s, n, dy, dx);
        Ok(())
    }

    fn lcn_fwd(
        &self,
        s: &LcnShape,
        n: usize,
        window: &Vec<f32>,
        x: &Vec<f32>,
        y: &mut Vec<f32>,
    ) -> Result<()> {
        lcn::lcn_fwd(s, n, window, x, y);
        Ok(())
    }
    fn lcn_bwd(
        &self,
        s: &LcnShape,
        n: usize,
        window: &Vec<f32>,
        x: &Vec<f32>,
        dy: &Vec<f32>,
        dx: &mut Vec<f32>,
    ) -> Result<()> {
        lcn::lcn_bwd(s, n, window, x, dy, dx);
        Ok(())
    }

    fn dropout_fwd(&self, p: f32, seed: u64, x: &Vec<f32>, y: &mut Vec<f32>) -> Result<()> {
        activation::dropout_fwd(p, seed, x, y);
        Ok(())
    }
    fn dropout_bwd(&self, p: f32, seed: u64, dy: &Vec<f32>, dx: &mut Vec<f32>) -> Result<()> {
        activation::dropout_bwd(p, seed, dy, dx);
        Ok(())
    }

    fn loss(
        &self,
        kind: LossKind,
        classes: usize,
        logits: &Vec<f32>,
        labels: &[u8],
        dlogits: &mut Vec<f32>,
    ) -> Result<LossOut> {
        Ok(loss::loss(kind, classes, logits, labels, dlogits))
    }

    fn sgd_update(
        &self,
        w: &mut Vec<f32>,
        v: &mut Vec<f32>,
        g: &Vec<f32>,
        lr: f32,
        momentum: f32,
        decay: f32,
    ) -> Result<()> {
        sgd::sgd_update(w, v, g, lr, momentum, decay);
        Ok(())
    }

    fn adam_update(
        &self,
        w: &mut Vec<f32>,
        m: &mut Vec<f32>,
        v: &mut Vec<f32>,
        g: &Vec<f32>,
        lr: f32,
        betas: (f32, f32),
        eps: f32,
        t: u32,
    ) -> Result<()> {
        sgd::adam_update(w, m, v, g, lr, betas, eps, t);
        Ok(())
    }

    fn gemm(
        &self,
        ta: bool,
        tb: bool,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: &Vec<f32>,
        b: &Vec<f32>,
        beta: f32,
        c: &mut Vec<f32>,
    ) -> Result<()> {
        linalg::gemm(ta, tb, m, n, k, alpha, a, b, beta, c);
        Ok(())
    }
    fn axpby(&self, alpha: f32, x: &Vec<f32>, beta: f32, y: &mut Vec<f32>) -> Result<()> {
        linalg::axpby(alpha, x, beta, y);
        Ok(())
    }
    fn add_sign(&self, alpha: f32, x: &Vec<f32>, y: &mut Vec<f32>) -> Result<()> {
        shrink::add_sign(alpha, x, y);
        Ok(())
    }
    fn shrink_fwd(
        &self,
        theta: Thresh<'_, Vec<f32>>,
        x: &Vec<f32>,
        y: &mut Vec<f32>,
    ) -> Result<()> {
        shrink::shrink_fwd(theta.map(Vec::as_slice), x, y);
        Ok(())
    }
    fn shrink_bwd(
        &self,
        theta: Thresh<'_, Vec<f32>>,
        x: &Vec<f32>,
        dy: &Vec<f32>,
        dx: &mut Vec<f32>,
        dtheta: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        shrink::shrink_bwd(
            theta.map(Vec::as_slice),
            x,
            dy,
            dx,
            dtheta.map(|d| d.as_mut_slice()),
        );
        Ok(())
    }
    fn scale_fwd(&self, inner: usize, g: &Vec<f32>, x: &Vec<f32>, y: &mut Vec<f32>) -> Result<()> {
        shrink::scale_fwd(inner, g, x, y);
        Ok(())
    }
    fn scale_bwd(
        &self,
        inner: usize,
        g: &Vec<f32>,
        x: &Vec<f32>,
        dy: &Vec<f32>,
        dx: &mut Vec<f32>,
        dg: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        shrink::scale_bwd(inner, g, x, dy, dx, dg.map(|d| d.as_mut_slice()));
        Ok(())
    }
    fn row_sq_norms(
        &self,
        rows: usize,
        cols: usize,
        x: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        linalg::row_reduce(rows, cols, x, out, |v| v as f64 * v as f64);
        Ok(())
    }
    fn row_abs_sums(
        &self,
        rows: usize,
        cols: usize,
        x: &Vec<f32>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        linalg::row_reduce(rows, cols, x, out, |v| v.abs() as f64);
        Ok(())
    }
    fn normalize_columns(&self, rows: usize, cols: usize, d: &mut Vec<f32>) -> Result<()> {
        linalg::normalize_columns(rows, cols, d);
        Ok(())
    }
}
