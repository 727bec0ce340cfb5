//! Networks built from an [`Arch`], generic over the [`Backend`] that runs them.
//!
//! The network keeps every activation of the last forward pass for the backward pass, the
//! gradients of the last step, and the momentum buffers; callers only see host slices.
//!
//! ```
//! use kestrel_trainer::{backend::cpu::Cpu, config::Arch, nn::Network};
//! let arch = Arch::load("lenet")?;
//! let mut net = Network::new(Cpu::new(), &arch, 1)?;
//! assert_eq!(net.num_params(), 90_670);
//! let x = vec![0.5; 2 * 28 * 28];
//! let stats = net.train_step(&x, &[3, 7], 42)?;
//! net.sgd_update(0.05, 0.9, 5e-4);
//! assert!(stats.loss.is_finite());
//! assert_eq!(net.predict(&x, 2).len(), 2 * 10);
//! # Ok::<(), kestrel_trainer::Error>(())
//! ```

mod init;
mod layer;
mod shape;
#[cfg(test)]
mod tests;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use init::{lcn_window, normal, weight_std};
pub use layer::{Layer, Mode, Params};
pub use shape::{infer, infer_layer, numel, spec_name, LayerPlan, Op};

use crate::backend::Backend;
use crate::config::Arch;
use crate::error::{Error, Result};

/// What one training step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Mean loss over the batch (before the update).
    pub loss: f32,
    /// Samples whose largest logit was the label.
    pub correct: usize,
}

/// Host copies of one layer's weight and bias (or their momentum).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerParams {
    /// Index into `arch.layers`.
    pub layer: usize,
    /// `[out, in, k, k]` (convolution) or `[out, in]` (linear).
    pub weight: Vec<f32>,
    /// `[out]`.
    pub bias: Vec<f32>,
}

/// Mixes two seeds into an independent stream (SplitMix64 finalizer): a step seed and a
/// layer index into a dropout seed, a run seed and an epoch into a shuffle seed.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A trainable network on backend `B`.
pub struct Network<B: Backend> {
    backend: B,
    arch: Arch,
    layers: Vec<Layer<B>>,
    shapes: Vec<[usize; 3]>,
    classes: usize,
    /// `acts[0]` is the input batch, `acts[i + 1]` layer `i`'s output, for `acts_n` samples.
    acts: Vec<B::Tensor>,
    acts_n: usize,
    /// `grads[i]` is ∂loss/∂`acts[i]` (`grads[0]` is never computed and stays empty).
    grads: Vec<B::Tensor>,
    grads_n: usize,
}

impl<B: Backend> Network<B> {
    /// Builds `arch` on `backend`, weights drawn from `seed` (see [`weight_std`]).
    pub fn new(backend: B, arch: &Arch, seed: u64) -> Result<Self> {
        let plan = infer(arch)?;
        let ops: Vec<Op> = plan.iter().map(|p| p.op).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers: Vec<Layer<B>> = plan
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Layer::new(
                    &backend,
                    p.op,
                    p.input,
                    p.output,
                    weight_std(&ops, i),
                    &mut rng,
                )
            })
            .collect();
        let shapes: Vec<[usize; 3]> = plan.iter().map(|p| p.output).collect();
        let classes = numel(*shapes.last().expect("infer rejects empty architectures"));
        Ok(Network {
            backend,
            arch: arch.clone(),
            layers,
            shapes,
            classes,
            acts: Vec::new(),
            acts_n: 0,
            grads: Vec::new(),
            grads_n: 0,
        })
    }

    /// The architecture.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The layers (geometry and backend state).
    pub fn layers(&self) -> &[Layer<B>] {
        &self.layers
    }

    /// Per-sample input `[c, h, w]`.
    pub fn input_shape(&self) -> [usize; 3] {
        self.arch.input
    }

    /// Per-sample output `[c, h, w]` of every arch layer (`[n, 1, 1]` for vectors).
    pub fn output_shapes(&self) -> &[[usize; 3]] {
        &self.shapes
    }

    /// Logits per sample.
    pub fn num_classes(&self) -> usize {
        self.classes
    }

    /// Trainable parameters (weights and biases).
    pub fn num_params(&self) -> usize {
        self.layers
            .iter()
            .filter_map(|l| l.op.param_lens())
            .map(|(_, w, b)| w + b)
            .sum()
    }

    fn ensure_acts(&mut self, n: usize) {
        if self.acts_n != n || self.acts.is_empty() {
            let be = &self.backend;
            let mut acts = vec![be.zeros(n * numel(self.arch.input))];
            acts.extend(self.layers.iter().map(|l| be.zeros(n * l.out_len())));
            self.acts = acts;
            self.acts_n = n;
        }
    }

    fn ensure_grads(&mut self, n: usize) {
        if self.grads_n != n || self.grads.is_empty() {
            let be = &self.backend;
            let mut grads = vec![be.zeros(0)];
            grads.extend(self.layers.iter().map(|l| be.zeros(n * l.out_len())));
            self.grads = grads;
            self.grads_n = n;
        }
    }

    /// Uploads `x` (n samples) and runs every layer; `seed` selects train mode.
    fn forward(&mut self, x: &[f32], n: usize, seed: Option<u64>) {
        self.ensure_acts(n);
        self.backend.upload_into(&mut self.acts[0], x);
        for (i, layer) in self.layers.iter().enumerate() {
            let (done, rest) = self.acts.split_at_mut(i + 1);
            let mode = seed.map_or(Mode::Eval, |s| Mode::Train {
                seed: mix(s, i as u64),
            });
            layer.forward(&self.backend, n, &done[i], &mut rest[0], mode);
        }
    }

    fn check_input(&self, x: &[f32], n: usize) -> Result<()> {
        let per = numel(self.arch.input);
        if x.len() != n * per {
            let [c, h, w] = self.arch.input;
            return Err(Error::Shape {
                layer: 0,
                op: spec_name(&self.arch.layers[0]),
                message: format!(
                    "input batch of {n} samples of {c}×{h}×{w} needs {} floats, got {}",
                    n * per,
                    x.len()
                ),
            });
        }
        Ok(())
    }

    /// Forward in train mode (dropout seeded by `seed`), loss, and backward; the gradients
    /// stay in the network for [`sgd_update`](Self::sgd_update). `x` holds `n = labels.len()`
    /// normalized samples. Errors (layer index = number of layers, op = the loss) name a
    /// label out of range.
    pub fn train_step(&mut self, x: &[f32], labels: &[u8], seed: u64) -> Result<StepStats> {
        let n = labels.len();
        let last = self.layers.len();
        let loss_name = match self.arch.loss {
            crate::config::LossKind::Nll => "nll",
            crate::config::LossKind::Hinge => "hinge",
        };
        if n == 0 {
            return Err(Error::Shape {
                layer: last,
                op: loss_name,
                message: "empty batch (no labels)".into(),
            });
        }
        self.check_input(x, n)?;
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= self.classes)
        {
            return Err(Error::Shape {
                layer: last,
                op: loss_name,
                message: format!(
                    "label {l} of sample {i} is not below the {} classes",
                    self.classes
                ),
            });
        }
        self.forward(x, n, Some(seed));
        self.ensure_grads(n);
        let be = &self.backend;
        let out = be.loss(
            self.arch.loss,
            self.classes,
            &self.acts[last],
            labels,
            &mut self.grads[last],
        );
        for (i, layer) in self.layers.iter_mut().enumerate().rev() {
            if i == 0 && layer.params.is_none() {
                break; // nothing to learn, and no one needs ∂loss/∂input
            }
            let (gin, gout) = self.grads.split_at_mut(i + 1);
            let dx = if i == 0 { None } else { Some(&mut gin[i]) };
            let mode = Mode::Train {
                seed: mix(seed, i as u64),
            };
            layer.backward(be, n, &self.acts[i], &self.acts[i + 1], &gout[0], dx, mode);
        }
        Ok(StepStats {
            loss: out.loss,
            correct: out.correct,
        })
    }

    /// SGD with momentum on the last step's gradients: `v ← μ·v + (g + λ·w)`, `w ← w − lr·v`,
    /// with decay `λ` on weights only.
    pub fn sgd_update(&mut self, lr: f32, momentum: f32, weight_decay: f32) {
        let be = &self.backend;
        for p in self.layers.iter_mut().filter_map(|l| l.params.as_mut()) {
            be.sgd_update(&mut p.w, &mut p.vw, &p.dw, lr, momentum, weight_decay);
            be.sgd_update(&mut p.b, &mut p.vb, &p.db, lr, momentum, 0.0);
        }
    }

    /// Eval-mode logits of `n` samples, `n × classes`.
    ///
    /// # Panics
    /// If `x.len() != n · C · H · W`.
    pub fn predict(&mut self, x: &[f32], n: usize) -> Vec<f32> {
        if let Err(e) = self.check_input(x, n) {
            panic!("predict: {e}");
        }
        if n == 0 {
            return Vec::new();
        }
        self.forward(x, n, None);
        self.backend.download(&self.acts[self.layers.len()])
    }

    /// Eval-mode outputs of every arch layer (`n ×` that layer's length each).
    ///
    /// # Panics
    /// If `x.len() != n · C · H · W`.
    pub fn forward_trace(&mut self, x: &[f32], n: usize) -> Vec<Vec<f32>> {
        if let Err(e) = self.check_input(x, n) {
            panic!("forward_trace: {e}");
        }
        if n == 0 {
            return vec![Vec::new(); self.layers.len()];
        }
        self.forward(x, n, None);
        self.acts[1..]
            .iter()
            .map(|t| self.backend.download(t))
            .collect()
    }

    fn collect(&self, pick: impl Fn(&Params<B>) -> (&B::Tensor, &B::Tensor)) -> Vec<LayerParams> {
        let be = &self.backend;
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.params.as_ref().map(|p| (i, pick(p))))
            .map(|(layer, (w, b))| LayerParams {
                layer,
                weight: be.download(w),
                bias: be.download(b),
            })
            .collect()
    }

    /// Checks that `given` has one entry per layer with parameters, in order, of the right
    /// lengths; `what` names them in errors.
    fn check_sets(&self, given: &[LayerParams], what: &str) -> Result<()> {
        let mut given = given.iter();
        for (i, layer) in self.layers.iter().enumerate() {
            let Some((_, wl, bl)) = layer.op.param_lens() else {
                continue;
            };
            let fail = |message: String| Error::Shape {
                layer: i,
                op: layer.op.name(),
                message,
            };
            let Some(p) = given.next() else {
                return Err(fail(format!("no {what} given for this layer")));
            };
            if p.layer != i {
                return Err(fail(format!(
                    "expected {what} for layer {i}, got them for layer {}",
                    p.layer
                )));
            }
            if p.weight.len() != wl || p.bias.len() != bl {
                return Err(fail(format!(
                    "{what}: expected weight {wl} and bias {bl} floats, got {} and {}",
                    p.weight.len(),
                    p.bias.len()
                )));
            }
        }
        if let Some(extra) = given.next() {
            return Err(Error::Shape {
                layer: extra.layer,
                op: self.arch.layers.get(extra.layer).map_or("none", spec_name),
                message: format!("{what} given for a layer without parameters (or given twice)"),
            });
        }
        Ok(())
    }

    fn store(
        &mut self,
        given: &[LayerParams],
        pick: impl Fn(&mut Params<B>) -> (&mut B::Tensor, &mut B::Tensor),
    ) {
        let be = &self.backend;
        for (p, dst) in given
            .iter()
            .zip(self.layers.iter_mut().filter_map(|l| l.params.as_mut()))
        {
            let (w, b) = pick(dst);
            be.upload_into(w, &p.weight);
            be.upload_into(b, &p.bias);
        }
    }

    /// Host copies of every weight and bias, for checkpoints and export.
    pub fn params(&self) -> Vec<LayerParams> {
        self.collect(|p| (&p.w, &p.b))
    }

    /// Replaces every weight and bias; nothing changes on error.
    pub fn set_params(&mut self, p: &[LayerParams]) -> Result<()> {
        self.check_sets(p, "parameters")?;
        self.store(p, |d| (&mut d.w, &mut d.b));
        Ok(())
    }

    /// Host copies of the momentum buffers (same layout as [`params`](Self::params)).
    pub fn velocities(&self) -> Vec<LayerParams> {
        self.collect(|p| (&p.vw, &p.vb))
    }

    /// Replaces the momentum buffers; nothing changes on error.
    pub fn set_velocities(&mut self, v: &[LayerParams]) -> Result<()> {
        self.check_sets(v, "velocities")?;
        self.store(v, |d| (&mut d.vw, &mut d.vb));
        Ok(())
    }

    /// Host copies of the last step's gradients (same layout as [`params`](Self::params)).
    pub fn gradients(&self) -> Vec<LayerParams> {
        self.collect(|p| (&p.dw, &p.db))
    }

    /// The normalized window of LCN layer `layer` (row-major `size × size`).
    pub fn lcn_window(&self, layer: usize) -> Option<Vec<f32>> {
        self.layers
            .get(layer)?
            .window
            .as_ref()
            .map(|w| self.backend.download(w))
    }
}
