//! One layer on any [`Backend`]: parameters, their gradients and momentum, and the forward
//! and backward passes as calls into the backend.

use rand_chacha::ChaCha8Rng;

use super::init::{lcn_window, normal};
use super::shape::{numel, Op};
use crate::backend::Backend;

/// Forward mode: evaluation (dropout is the identity) or training with a dropout seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Inference.
    Eval,
    /// Training; dropout masks come from `seed`.
    Train {
        /// This layer's dropout seed for the step.
        seed: u64,
    },
}

/// A weight and a bias with their gradients and momentum buffers.
pub struct Params<B: Backend> {
    /// Weight (`[out, in, k, k]` or `[out, in]`).
    pub w: B::Tensor,
    /// Bias `[out]`.
    pub b: B::Tensor,
    /// Gradient of the last backward pass w.r.t. `w`.
    pub dw: B::Tensor,
    /// Gradient w.r.t. `b`.
    pub db: B::Tensor,
    /// Momentum for `w`.
    pub vw: B::Tensor,
    /// Momentum for `b`.
    pub vb: B::Tensor,
}

/// A layer with resolved geometry and its backend-owned state.
pub struct Layer<B: Backend> {
    /// What it computes.
    pub op: Op,
    /// Per-sample input shape `[c, h, w]`.
    pub input: [usize; 3],
    /// Per-sample output shape.
    pub output: [usize; 3],
    /// Weights and biases (convolution and linear layers).
    pub params: Option<Params<B>>,
    /// The normalized `size × size` LCN window.
    pub window: Option<B::Tensor>,
}

impl<B: Backend> Layer<B> {
    /// A layer with weights drawn from `N(0, std²)` (`rng`), zero biases and momentum.
    pub fn new(
        be: &B,
        op: Op,
        input: [usize; 3],
        output: [usize; 3],
        std: f32,
        rng: &mut ChaCha8Rng,
    ) -> Layer<B> {
        let params = op.param_lens().map(|(_, wl, bl)| {
            let w: Vec<f32> = (0..wl).map(|_| std * normal(rng)).collect();
            Params {
                w: be.upload(&w),
                b: be.zeros(bl),
                dw: be.zeros(wl),
                db: be.zeros(bl),
                vw: be.zeros(wl),
                vb: be.zeros(bl),
            }
        });
        let window = match op {
            Op::Lcn { shape, sigma } => Some(be.upload(&lcn_window(shape.size, sigma))),
            _ => None,
        };
        Layer {
            op,
            input,
            output,
            params,
            window,
        }
    }

    /// Floats per input sample.
    pub fn in_len(&self) -> usize {
        numel(self.input)
    }

    /// Floats per output sample.
    pub fn out_len(&self) -> usize {
        numel(self.output)
    }

    /// `y = layer(x)` for `n` samples.
    pub fn forward(&self, be: &B, n: usize, x: &B::Tensor, y: &mut B::Tensor, mode: Mode) {
        debug_assert_eq!(
            (be.len(x), be.len(y)),
            (n * self.in_len(), n * self.out_len())
        );
        match (&self.op, &self.params) {
            (Op::Conv2d(s), Some(p)) => be.conv2d_fwd(s, n, x, &p.w, &p.b, y),
            (Op::Linear(s), Some(p)) => be.linear_fwd(s, n, x, &p.w, &p.b, y),
            (Op::Act(f), _) => be.act_fwd(*f, x, y),
            (Op::MaxPool2d(s), _) => be.maxpool_fwd(s, n, x, y),
            (Op::AvgPool2d(s), _) => be.avgpool_fwd(s, n, x, y),
            (Op::Lcn { shape, .. }, _) => be.lcn_fwd(shape, n, self.window(), x, y),
            (Op::Dropout { p }, _) => match mode {
                Mode::Train { seed } if *p > 0.0 => be.dropout_fwd(*p, seed, x, y),
                _ => be.copy(x, y),
            },
            (Op::Flatten, _) => be.copy(x, y),
            (Op::Conv2d(_) | Op::Linear(_), None) => {
                unreachable!("layers with weights are built with them")
            }
        }
    }

    /// Gradients from `dy`: parameter gradients into `self.params`, and `dx` unless `None`.
    /// `x` and `y` are this layer's forward input and output; `mode` must be the forward's.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &mut self,
        be: &B,
        n: usize,
        x: &B::Tensor,
        y: &B::Tensor,
        dy: &B::Tensor,
        dx: Option<&mut B::Tensor>,
        mode: Mode,
    ) {
        if let (Op::Conv2d(s), Some(p)) = (&self.op, &mut self.params) {
            return be.conv2d_bwd(s, n, x, &p.w, dy, dx, &mut p.dw, &mut p.db);
        }
        if let (Op::Linear(s), Some(p)) = (&self.op, &mut self.params) {
            return be.linear_bwd(s, n, x, &p.w, dy, dx, &mut p.dw, &mut p.db);
        }
        let Some(dx) = dx else { return };
        match &self.op {
            Op::Act(f) => be.act_bwd(*f, x, y, dy, dx),
            Op::MaxPool2d(s) => be.maxpool_bwd(s, n, x, dy, dx),
            Op::AvgPool2d(s) => be.avgpool_bwd(s, n, dy, dx),
            Op::Lcn { shape, .. } => be.lcn_bwd(shape, n, self.window(), x, dy, dx),
            Op::Dropout { p } => match mode {
                Mode::Train { seed } if *p > 0.0 => be.dropout_bwd(*p, seed, dy, dx),
                _ => be.copy(dy, dx),
            },
            Op::Flatten => be.copy(dy, dx),
            Op::Conv2d(_) | Op::Linear(_) => unreachable!("handled above"),
        }
    }

    fn window(&self) -> &B::Tensor {
        self.window
            .as_ref()
            .expect("LCN layers are built with their window")
    }
}
