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
mod linear;
mod loss;
mod pool;
mod sgd;

use super::{Activation, Backend, ConvShape, LcnShape, LinearShape, LossOut, PoolShape};
use crate::config::LossKind;

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

    fn zeros(&self, len: usize) -> Vec<f32> {
        vec![0.0; len]
    }
    fn upload(&self, data: &[f32]) -> Vec<f32> {
        data.to_vec()
    }
    fn upload_into(&self, t: &mut Vec<f32>, data: &[f32]) {
        t.copy_from_slice(data);
    }
    fn download(&self, t: &Vec<f32>) -> Vec<f32> {
        t.clone()
    }
    fn len(&self, t: &Vec<f32>) -> usize {
        t.len()
    }
    fn fill(&self, t: &mut Vec<f32>, value: f32) {
        t.fill(value);
    }
    fn copy(&self, src: &Vec<f32>, dst: &mut Vec<f32>) {
        dst.copy_from_slice(src);
    }

    fn conv2d_fwd(
        &self,
        s: &ConvShape,
        n: usize,
        x: &Vec<f32>,
        w: &Vec<f32>,
        b: &Vec<f32>,
        y: &mut Vec<f32>,
    ) {
        conv::conv2d_fwd(s, n, x, w, b, y);
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
    ) {
        conv::conv2d_bwd(s, n, x, w, dy, dx.map(|d| d.as_mut_slice()), dw, db);
    }

    fn linear_fwd(
        &self,
        s: &LinearShape,
        n: usize,
        x: &Vec<f32>,
        w: &Vec<f32>,
        b: &Vec<f32>,
        y: &mut Vec<f32>,
    ) {
        linear::linear_fwd(s, n, x, w, b, y);
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
    ) {
        linear::linear_bwd(s, n, x, w, dy, dx.map(|d| d.as_mut_slice()), dw, db);
    }

    fn act_fwd(&self, f: Activation, x: &Vec<f32>, y: &mut Vec<f32>) {
        activation::act_fwd(f, x, y);
    }
    fn act_bwd(&self, f: Activation, x: &Vec<f32>, y: &Vec<f32>, dy: &Vec<f32>, dx: &mut Vec<f32>) {
        activation::act_bwd(f, x, y, dy, dx);
    }

    fn maxpool_fwd(&self, s: &PoolShape, n: usize, x: &Vec<f32>, y: &mut Vec<f32>) {
        pool::maxpool_fwd(s, n, x, y);
    }
    fn maxpool_bwd(&self, s: &PoolShape, n: usize, x: &Vec<f32>, dy: &Vec<f32>, dx: &mut Vec<f32>) {
        pool::maxpool_bwd(s, n, x, dy, dx);
    }
    fn avgpool_fwd(&self, s: &PoolShape, n: usize, x: &Vec<f32>, y: &mut Vec<f32>) {
        pool::avgpool_fwd(s, n, x, y);
    }
    fn avgpool_bwd(&self, s: &PoolShape, n: usize, dy: &Vec<f32>, dx: &mut Vec<f32>) {
        pool::avgpool_bwd(s, n, dy, dx);
    }

    fn lcn_fwd(&self, s: &LcnShape, n: usize, window: &Vec<f32>, x: &Vec<f32>, y: &mut Vec<f32>) {
        lcn::lcn_fwd(s, n, window, x, y);
    }
    fn lcn_bwd(
        &self,
        s: &LcnShape,
        n: usize,
        window: &Vec<f32>,
        x: &Vec<f32>,
        dy: &Vec<f32>,
        dx: &mut Vec<f32>,
    ) {
        lcn::lcn_bwd(s, n, window, x, dy, dx);
    }

    fn dropout_fwd(&self, p: f32, seed: u64, x: &Vec<f32>, y: &mut Vec<f32>) {
        activation::dropout_fwd(p, seed, x, y);
    }
    fn dropout_bwd(&self, p: f32, seed: u64, dy: &Vec<f32>, dx: &mut Vec<f32>) {
        activation::dropout_bwd(p, seed, dy, dx);
    }

    fn loss(
        &self,
        kind: LossKind,
        classes: usize,
        logits: &Vec<f32>,
        labels: &[u8],
        dlogits: &mut Vec<f32>,
    ) -> LossOut {
        loss::loss(kind, classes, logits, labels, dlogits)
    }

    fn sgd_update(
        &self,
        w: &mut Vec<f32>,
        v: &mut Vec<f32>,
        g: &Vec<f32>,
        lr: f32,
        momentum: f32,
        decay: f32,
    ) {
        sgd::sgd_update(w, v, g, lr, momentum, decay);
    }
}
