//! One layer on any [`Backend`]: its named parameter tensors (each with gradient, momentum
//! and an optional constraint), and the forward and backward passes as calls into the
//! backend.

use rand_chacha::ChaCha8Rng;

use super::init::{lcn_window, normal};
use super::shape::{numel, Op};
use crate::backend::{Activation, Backend};
use crate::error::Result;

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

/// What keeps a parameter feasible: applied after every optimizer update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    /// Every column of the row-major `[rows, cols]` matrix has unit ℓ2 norm (dictionary
    /// atoms).
    UnitColumns {
        /// Rows (the atom length).
        rows: usize,
        /// Columns (the number of atoms).
        cols: usize,
    },
    /// Every element `≥ 0` (soft thresholds).
    NonNegative,
}

/// How a parameter starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// `N(0, std²)` from the network's seeded generator.
    Normal(f32),
    /// Every element `value`.
    Const(f32),
}

/// A parameter's description: everything but its values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamSpec {
    /// Name in checkpoints and reports (`weight`, `bias`, `dictionary`, `gain`, `theta`, `S`).
    pub name: &'static str,
    /// Elements.
    pub len: usize,
    /// Starting values.
    pub init: Init,
    /// Whether L2 weight decay applies (weights yes; biases, gains and thresholds no).
    pub decay: bool,
    /// Projection after each update.
    pub constraint: Option<Constraint>,
}

/// One named parameter tensor with its gradient and momentum, on the backend.
pub struct Param<B: Backend> {
    /// What it is.
    pub spec: ParamSpec,
    /// Current values.
    pub value: B::Tensor,
    /// Gradient of the last backward pass.
    pub grad: B::Tensor,
    /// Momentum buffer.
    pub velocity: B::Tensor,
}

impl<B: Backend> Param<B> {
    /// Allocates the parameter with its initial values (drawn from `rng` for
    /// [`Init::Normal`]), zero gradient and momentum; the constraint is applied once.
    pub fn new(be: &B, spec: ParamSpec, rng: &mut ChaCha8Rng) -> Result<Param<B>> {
        let host: Vec<f32> = match spec.init {
            Init::Normal(std) => (0..spec.len).map(|_| std * normal(rng)).collect(),
            Init::Const(v) => vec![v; spec.len],
        };
        let mut p = Param {
            spec,
            value: be.upload(&host)?,
            grad: be.zeros(spec.len)?,
            velocity: be.zeros(spec.len)?,
        };
        p.project(be)?;
        Ok(p)
    }

    /// The parameter's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// SGD with momentum (decay only where [`ParamSpec::decay`]), then the constraint.
    pub fn sgd_update(&mut self, be: &B, lr: f32, momentum: f32, weight_decay: f32) -> Result<()> {
        let decay = if self.spec.decay { weight_decay } else { 0.0 };
        be.sgd_update(
            &mut self.value,
            &mut self.velocity,
            &self.grad,
            lr,
            momentum,
            decay,
        )?;
        self.project(be)
    }

    /// Applies [`ParamSpec::constraint`] to the values.
    pub fn project(&mut self, be: &B) -> Result<()> {
        match self.spec.constraint {
            None => Ok(()),
            Some(Constraint::UnitColumns { rows, cols }) => {
                be.normalize_columns(rows, cols, &mut self.value)
            }
            // max(x, 0) is the ReLU (out of place, through a copy).
            Some(Constraint::NonNegative) => {
                let mut copy = be.zeros(self.spec.len)?;
                be.copy(&self.value, &mut copy)?;
                be.act_fwd(Activation::Relu, &copy, &mut self.value)
            }
        }
    }
}

/// A layer with resolved geometry and its backend-owned state.
pub struct Layer<B: Backend> {
    /// What it computes.
    pub op: Op,
    /// Per-sample input shape `[c, h, w]`.
    pub input: [usize; 3],
    /// Per-sample output shape.
    pub output: [usize; 3],
    /// Named parameter tensors in [`Op::param_specs`] order (empty for ops without any).
    pub params: Vec<Param<B>>,
    /// The normalized `size × size` LCN window (a constant, not a parameter).
    pub window: Option<B::Tensor>,
}

impl<B: Backend> Layer<B> {
    /// A layer with its parameters initialized by [`Op::param_specs`] (weights drawn from
    /// `N(0, std²)` with `rng`).
    pub fn new(
        be: &B,
        op: Op,
        input: [usize; 3],
        output: [usize; 3],
        std: f32,
        rng: &mut ChaCha8Rng,
    ) -> Result<Layer<B>> {
        let params = op
            .param_specs(std)
            .into_iter()
            .map(|spec| Param::new(be, spec, rng))
            .collect::<Result<Vec<_>>>()?;
        let window = match op {
            Op::Lcn { shape, sigma } => Some(be.upload(&lcn_window(shape.size, sigma))?),
            _ => None,
        };
        Ok(Layer {
            op,
            input,
            output,
            params,
            window,
        })
    }

    /// Floats per input sample.
    pub fn in_len(&self) -> usize {
        numel(self.input)
    }

    /// Floats per output sample.
    pub fn out_len(&self) -> usize {
        numel(self.output)
    }

    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&Param<B>> {
        self.params.iter().find(|p| p.name() == name)
    }

    /// The parameter called `name`, mutably.
    pub fn param_mut(&mut self, name: &str) -> Option<&mut Param<B>> {
        self.params.iter_mut().find(|p| p.name() == name)
    }

    /// `y = layer(x)` for `n` samples.
    pub fn forward(
        &self,
        be: &B,
        n: usize,
        x: &B::Tensor,
        y: &mut B::Tensor,
        mode: Mode,
    ) -> Result<()> {
        debug_assert_eq!(
            (be.len(x), be.len(y)),
            (n * self.in_len(), n * self.out_len())
        );
        match &self.op {
            Op::Conv2d(s) => {
                let [w, b] = self.weight_bias();
                be.conv2d_fwd(s, n, x, &w.value, &b.value, y)
            }
            Op::Linear(s) => {
                let [w, b] = self.weight_bias();
                be.linear_fwd(s, n, x, &w.value, &b.value, y)
            }
            Op::Act(f) => be.act_fwd(*f, x, y),
            Op::MaxPool2d(s) => be.maxpool_fwd(s, n, x, y),
            Op::AvgPool2d(s) => be.avgpool_fwd(s, n, x, y),
            Op::Lcn { shape, .. } => be.lcn_fwd(shape, n, self.window(), x, y),
            Op::Dropout { p } => match mode {
                Mode::Train { seed } if *p > 0.0 => be.dropout_fwd(*p, seed, x, y),
                _ => be.copy(x, y),
            },
            Op::Flatten => be.copy(x, y),
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
    ) -> Result<()> {
        match self.op {
            Op::Conv2d(s) => {
                let (w, b) = self.weight_bias_mut();
                return be.conv2d_bwd(&s, n, x, &w.value, dy, dx, &mut w.grad, &mut b.grad);
            }
            Op::Linear(s) => {
                let (w, b) = self.weight_bias_mut();
                return be.linear_bwd(&s, n, x, &w.value, dy, dx, &mut w.grad, &mut b.grad);
            }
            Op::Act(_)
            | Op::MaxPool2d(_)
            | Op::AvgPool2d(_)
            | Op::Lcn { .. }
            | Op::Dropout { .. }
            | Op::Flatten => {}
        }
        let Some(dx) = dx else { return Ok(()) };
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

    /// `[weight, bias]` of a convolution or linear layer ([`Op::param_specs`] order).
    fn weight_bias(&self) -> [&Param<B>; 2] {
        match &self.params[..] {
            [w, b] => [w, b],
            _ => unreachable!("convolution and linear layers are built with a weight and a bias"),
        }
    }

    fn weight_bias_mut(&mut self) -> (&mut Param<B>, &mut Param<B>) {
        match &mut self.params[..] {
            [w, b] => (w, b),
            _ => unreachable!("convolution and linear layers are built with a weight and a bias"),
        }
    }

    fn window(&self) -> &B::Tensor {
        self.window
            .as_ref()
            .expect("LCN layers are built with their window")
    }
}
