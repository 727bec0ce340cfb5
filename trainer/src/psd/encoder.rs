//! Dense feed-forward encoders `g(x)` on [`Backend`] primitives, forward and backward.
//!
//! Codes are `[batch, n]` row-major, inputs `[batch, k]`. Every encoder starts with the
//! affine map `b' = x Wᵀ + b` (`W [n, k]`), then:
//! - `tanh`: `g = G ⊙ tanh(b')`;
//! - `shrink`: `g = shrink_θ(b')`;
//! - `lista:T`: `h₀ = shrink_θ₀(b')`, `h_t = shrink_θ_t(b' + h_{t−1} Sᵀ)` for `t = 1..T`,
//!   `g = h_T`: one `W` and `S` for every step, a threshold vector per step (tied weights
//!   with per-step thresholds, as in Liu et al. 2019's TiLISTA: a tied recurrence with one
//!   shared `θ` levelled off at 1.021× the FISTA energy on Fashion-MNIST 9×9 patches at
//!   λ = 0.5, per-step thresholds reach 1.016×). The backward pass runs back through the
//!   `T` steps, accumulating `dS`, each step's `dθ_t` and `db'`.
//!
//! Parameters are [`Param`]s (`weight`, `bias`, `gain` | `theta`, `S`, then LISTA's
//! `theta` of steps `1..T`), so SGD with momentum and the `θ ≥ 0` constraint
//! ([`Constraint::NonNegative`]) come from `nn`. [`lista_theta`] and [`values_of`] convert
//! to and from [`PsdModel`]'s layout, where LISTA's thresholds are one `[(T+1)·n]` tensor.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::model::{EncoderKind, PsdModel};
use crate::backend::{Activation, Backend, LinearShape, Thresh};
use crate::error::Result;
use crate::nn::{Constraint, Init, Param, ParamSpec};

/// A dense encoder's parameters on a backend.
pub struct Encoder<B: Backend> {
    /// Which encoder.
    pub kind: EncoderKind,
    /// Input length `k`.
    pub inputs: usize,
    /// Atoms `n`.
    pub atoms: usize,
    /// `weight [n, k]`, `bias [n]`, `gain [n]` or `theta [n]`; LISTA then has `S [n, n]`
    /// and the thresholds `[n]` of steps `1..T`.
    pub params: Vec<Param<B>>,
}

/// The forward pass's intermediates, kept for the backward pass.
pub struct Trace<B: Backend> {
    batch: usize,
    /// `b' = x Wᵀ + b`.
    pre: B::Tensor,
    /// LISTA: the input of each step's shrinkage, `z_t` for `t = 1..T` (`z₀ = b'`).
    z: Vec<B::Tensor>,
    /// tanh: `[tanh(b'), code]`; shrink: `[code]`; LISTA: `[h₀, …, h_T]`.
    h: Vec<B::Tensor>,
}

impl<B: Backend> Trace<B> {
    /// Buffers for `batch` samples of `enc`.
    pub fn new(be: &B, enc: &Encoder<B>, batch: usize) -> Result<Trace<B>> {
        let len = batch * enc.atoms;
        let steps = enc.kind.steps();
        let outs = match enc.kind {
            EncoderKind::Tanh => 2,
            EncoderKind::Shrink => 1,
            EncoderKind::Lista { .. } => steps + 1,
        };
        Ok(Trace {
            batch,
            pre: be.zeros(len)?,
            z: (0..steps).map(|_| be.zeros(len)).collect::<Result<_>>()?,
            h: (0..outs).map(|_| be.zeros(len)).collect::<Result<_>>()?,
        })
    }

    /// Samples the buffers hold.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The codes of the last forward pass, `[batch, n]`.
    pub fn code(&self) -> &B::Tensor {
        self.h.last().expect("a trace has at least one output")
    }
}

/// The parameter descriptions of an encoder (values are set by the caller).
pub fn param_specs(kind: EncoderKind, k: usize, n: usize) -> Vec<ParamSpec> {
    let spec = |name, len, decay, constraint| ParamSpec {
        name,
        len,
        init: Init::Const(0.0),
        decay,
        constraint,
    };
    let mut v = vec![
        spec("weight", n * k, true, None),
        spec("bias", n, false, None),
    ];
    match kind {
        EncoderKind::Tanh => v.push(spec("gain", n, false, None)),
        EncoderKind::Shrink | EncoderKind::Lista { .. } => {
            v.push(spec("theta", n, false, Some(Constraint::NonNegative)))
        }
    }
    if let EncoderKind::Lista { steps } = kind {
        v.push(spec("S", n * n, true, None));
        for _ in 0..steps {
            v.push(spec("theta", n, false, Some(Constraint::NonNegative)));
        }
    }
    v
}

/// Index in [`param_specs`] of the thresholds of LISTA step `t` (`0` is the first shrink).
fn theta_index(t: usize) -> usize {
    if t == 0 {
        2
    } else {
        3 + t
    }
}

/// [`PsdModel`]'s LISTA thresholds `[(T+1)·n]` (step `t` at `t·n..`) from encoder values in
/// [`param_specs`] order.
pub fn lista_theta(values: &[Vec<f32>], steps: usize) -> Vec<f32> {
    (0..=steps)
        .flat_map(|t| values.get(theta_index(t)).into_iter().flatten().copied())
        .collect()
}

/// Encoder values in [`param_specs`] order from a model (LISTA: its `[(T+1)·n]` thresholds
/// split by step).
pub fn values_of(model: &PsdModel) -> Vec<Vec<f32>> {
    let n = model.meta.atoms;
    let mut v = vec![model.weight.clone(), model.bias.clone()];
    v.extend(model.gain.clone());
    let theta = model.theta.as_deref().unwrap_or_default();
    let mut per_step = theta.chunks(n.max(1)).map(<[f32]>::to_vec);
    v.extend(per_step.next());
    v.extend(model.lateral.clone());
    if let EncoderKind::Lista { .. } = model.meta.encoder {
        v.extend(per_step);
    }
    v
}

/// Host starting values from a dictionary `d [k, n]` with Lipschitz constant `l` of `DᵀD`
/// and sparsity `λ`: the encoders start as one ISTA step from zero, `W = Dᵀ/L`, `θ = λ/L`,
/// `S = I − DᵀD/L` (LISTA's initialization, Gregor & LeCun 2010, every step's `θ` the
/// same), `b = 0`; tanh starts with `W = Dᵀ/L`, gain 1.
pub fn init_values(
    kind: EncoderKind,
    d: &[f32],
    k: usize,
    n: usize,
    lambda: f32,
    l: f32,
) -> Vec<Vec<f32>> {
    let mut w = vec![0.0f32; n * k];
    for r in 0..k {
        for j in 0..n {
            w[j * k + r] = d[r * n + j] / l;
        }
    }
    let mut v = vec![w, vec![0.0; n]];
    match kind {
        EncoderKind::Tanh => v.push(vec![1.0; n]),
        EncoderKind::Shrink | EncoderKind::Lista { .. } => v.push(vec![lambda / l; n]),
    }
    if let EncoderKind::Lista { .. } = kind {
        let mut s = vec![0.0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                let g: f32 = (0..k).map(|r| d[r * n + i] * d[r * n + j]).sum();
                s[i * n + j] = f32::from(u8::from(i == j)) - g / l;
            }
        }
        v.push(s);
        v.extend((0..kind.steps()).map(|_| vec![lambda / l; n]));
    }
    v
}

impl<B: Backend> Encoder<B> {
    /// An encoder with the given host values, in [`param_specs`] order.
    pub fn new(be: &B, kind: EncoderKind, k: usize, n: usize, values: &[Vec<f32>]) -> Result<Self> {
        let specs = param_specs(kind, k, n);
        debug_assert_eq!(specs.len(), values.len());
        let mut rng = ChaCha8Rng::seed_from_u64(0); // unused: every init is constant
        let mut params = Vec::with_capacity(specs.len());
        for (spec, v) in specs.into_iter().zip(values) {
            debug_assert_eq!(spec.len, v.len());
            let mut p = Param::new(be, spec, &mut rng)?;
            be.upload_into(&mut p.value, v)?;
            p.project(be)?;
            params.push(p);
        }
        Ok(Encoder {
            kind,
            inputs: k,
            atoms: n,
            params,
        })
    }

    /// Host copies of the parameter values, in [`param_specs`] order.
    pub fn values(&self, be: &B) -> Result<Vec<Vec<f32>>> {
        self.params.iter().map(|p| be.download(&p.value)).collect()
    }

    fn shape(&self) -> LinearShape {
        LinearShape {
            inputs: self.inputs,
            outputs: self.atoms,
        }
    }

    /// The thresholds of step `t` (`0`: the first shrink; LISTA only above).
    fn thresh(&self, t: usize) -> Thresh<'_, B::Tensor> {
        Thresh::PerChannel {
            theta: &self.params[theta_index(t)].value,
            inner: 1,
        }
    }

    /// Codes of the `t.batch()` inputs `x [batch, k]` into `t` ([`Trace::code`]).
    pub fn forward(&self, be: &B, x: &B::Tensor, t: &mut Trace<B>) -> Result<()> {
        let (w, b) = (&self.params[0].value, &self.params[1].value);
        be.linear_fwd(&self.shape(), t.batch, x, w, b, &mut t.pre)?;
        match self.kind {
            EncoderKind::Tanh => {
                let (th, code) = t.h.split_at_mut(1);
                be.act_fwd(Activation::Tanh, &t.pre, &mut th[0])?;
                be.scale_fwd(1, &self.params[2].value, &th[0], &mut code[0])
            }
            EncoderKind::Shrink => be.shrink_fwd(self.thresh(0), &t.pre, &mut t.h[0]),
            EncoderKind::Lista { .. } => {
                let n = self.atoms;
                let s = &self.params[3].value;
                be.shrink_fwd(self.thresh(0), &t.pre, &mut t.h[0])?;
                for step in 0..t.z.len() {
                    let (done, next) = t.h.split_at_mut(step + 1);
                    let z = &mut t.z[step];
                    be.copy(&t.pre, z)?;
                    be.gemm(false, true, t.batch, n, n, 1.0, &done[step], s, 1.0, z)?;
                    be.shrink_fwd(self.thresh(step + 1), z, &mut next[0])?;
                }
                Ok(())
            }
        }
    }

    /// Parameter gradients (overwritten) of `Σ dcode ⊙ g(x)`, from the trace of
    /// [`forward`](Self::forward) on the same `x`.
    pub fn backward(
        &mut self,
        be: &B,
        x: &B::Tensor,
        t: &Trace<B>,
        dcode: &B::Tensor,
    ) -> Result<()> {
        let (batch, n) = (t.batch, self.atoms);
        let len = batch * n;
        let mut dpre = be.zeros(len)?;
        let shape = self.shape();
        match self.kind {
            EncoderKind::Tanh => {
                let mut dt = be.zeros(len)?;
                let g = &mut self.params[2];
                be.scale_bwd(1, &g.value, &t.h[0], dcode, &mut dt, Some(&mut g.grad))?;
                be.act_bwd(Activation::Tanh, &t.pre, &t.h[0], &dt, &mut dpre)?;
            }
            EncoderKind::Shrink => {
                let th = &mut self.params[2];
                let thresh = Thresh::PerChannel {
                    theta: &th.value,
                    inner: 1,
                };
                be.shrink_bwd(thresh, &t.pre, dcode, &mut dpre, Some(&mut th.grad))?;
            }
            EncoderKind::Lista { .. } => {
                let (head, tail) = self.params.split_at_mut(3);
                let (s, step_theta) = tail.split_first_mut().expect("LISTA has S");
                let theta0 = &mut head[2];
                be.fill(&mut s.grad, 0.0)?;
                let mut dh = be.zeros(len)?;
                be.copy(dcode, &mut dh)?;
                let mut dz = be.zeros(len)?;
                for step in (0..t.z.len()).rev() {
                    // h_{step+1} = shrink_θ(step+1)(z_step), z_step = b' + h_step Sᵀ
                    let th = &mut step_theta[step];
                    let thresh = Thresh::PerChannel {
                        theta: &th.value,
                        inner: 1,
                    };
                    be.shrink_bwd(thresh, &t.z[step], &dh, &mut dz, Some(&mut th.grad))?;
                    be.axpby(1.0, &dz, 1.0, &mut dpre)?;
                    // dS[i, j] += Σ_b dz[b, i] h_step[b, j]
                    be.gemm(
                        true,
                        false,
                        n,
                        n,
                        batch,
                        1.0,
                        &dz,
                        &t.h[step],
                        1.0,
                        &mut s.grad,
                    )?;
                    // dh_step = dz S
                    be.gemm(false, false, batch, n, n, 1.0, &dz, &s.value, 0.0, &mut dh)?;
                }
                let thresh = Thresh::PerChannel {
                    theta: &theta0.value,
                    inner: 1,
                };
                be.shrink_bwd(thresh, &t.pre, &dh, &mut dz, Some(&mut theta0.grad))?;
                be.axpby(1.0, &dz, 1.0, &mut dpre)?;
            }
        }
        let (w, rest) = self.params.split_at_mut(1);
        let (w, b) = (&mut w[0], &mut rest[0]);
        be.linear_bwd(
            &shape,
            batch,
            x,
            &w.value,
            &dpre,
            None,
            &mut w.grad,
            &mut b.grad,
        )
    }

    /// SGD with momentum on every parameter (`lr` times each one's multiplier), then the
    /// constraints.
    pub fn sgd_update(&mut self, be: &B, lr: &[f32], momentum: f32) -> Result<()> {
        for (p, &lr) in self.params.iter_mut().zip(lr) {
            p.sgd_update(be, lr, momentum, 0.0)?;
        }
        Ok(())
    }
}
