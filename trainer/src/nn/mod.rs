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
//! net.sgd_update(0.05, 0.9, 5e-4)?;
//! assert!(stats.loss.is_finite());
//! assert_eq!(net.predict(&x, 2)?.len(), 2 * 10);
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
pub use layer::{Constraint, Init, Layer, Mode, Param, ParamSpec};
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

/// A host copy of one named parameter tensor (or of its momentum or gradient).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedTensor {
    /// The parameter's name ([`ParamSpec::name`]).
    pub name: String,
    /// Its elements.
    pub data: Vec<f32>,
}

/// Host copies of one layer's parameter tensors (or their momentum), in the layer's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerParams {
    /// Index of the layer (into `arch.layers` for convnets).
    pub layer: usize,
    /// The tensors, in [`Op::param_specs`] order.
    pub tensors: Vec<NamedTensor>,
}

impl LayerParams {
    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.data.as_slice())
    }

    /// A convolution's or linear layer's `weight` and `bias` (empty slices when missing;
    /// networks check their sets when they are loaded).
    pub fn weight_bias(&self) -> (&[f32], &[f32]) {
        (
            self.get("weight").unwrap_or_default(),
            self.get("bias").unwrap_or_default(),
        )
    }
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
        let layers = plan
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
            .collect::<Result<Vec<Layer<B>>>>()?;
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

    /// The layers, mutably (to initialize one from elsewhere, e.g. a pretrained encoder).
    pub fn layers_mut(&mut self) -> &mut [Layer<B>] {
        &mut self.layers
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

    /// Trainable parameters (every element of every parameter tensor).
    pub fn num_params(&self) -> usize {
        self.layers.iter().map(|l| l.op.num_params()).sum()
    }

    fn ensure_acts(&mut self, n: usize) -> Result<()> {
        if self.acts_n != n || self.acts.is_empty() {
            let be = &self.backend;
            let mut acts = vec![be.zeros(n * numel(self.arch.input))?];
            for l in &self.layers {
                acts.push(be.zeros(n * l.out_len())?);
            }
            self.acts = acts;
            self.acts_n = n;
        }
        Ok(())
    }

    fn ensure_grads(&mut self, n: usize) -> Result<()> {
        if self.grads_n != n || self.grads.is_empty() {
            let be = &self.backend;
            let mut grads = vec![be.zeros(0)?];
            for l in &self.layers {
                grads.push(be.zeros(n * l.out_len())?);
            }
            self.grads = grads;
            self.grads_n = n;
        }
        Ok(())
    }

    /// Uploads `x` (n samples) and runs every layer; `seed` selects train mode.
    fn forward(&mut self, x: &[f32], n: usize, seed: Option<u64>) -> Result<()> {
        self.ensure_acts(n)?;
        self.backend.upload_into(&mut self.acts[0], x)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let (done, rest) = self.acts.split_at_mut(i + 1);
            let mode = seed.map_or(Mode::Eval, |s| Mode::Train {
                seed: mix(s, i as u64),
            });
            layer.forward(&self.backend, n, &done[i], &mut rest[0], mode)?;
        }
        Ok(())
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
        self.forward(x, n, Some(seed))?;
        self.ensure_grads(n)?;
        let be = &self.backend;
        let out = be.loss(
            self.arch.loss,
            self.classes,
            &self.acts[last],
            labels,
            &mut self.grads[last],
        )?;
        for (i, layer) in self.layers.iter_mut().enumerate().rev() {
            if i == 0 && layer.params.is_empty() {
                break; // nothing to learn, and no one needs ∂loss/∂input
            }
            let (gin, gout) = self.grads.split_at_mut(i + 1);
            let dx = if i == 0 { None } else { Some(&mut gin[i]) };
            let mode = Mode::Train {
                seed: mix(seed, i as u64),
            };
            layer.backward(be, n, &self.acts[i], &self.acts[i + 1], &gout[0], dx, mode)?;
        }
        Ok(StepStats {
            loss: out.loss,
            correct: out.correct,
        })
    }

    /// SGD with momentum on the last step's gradients: `v ← μ·v + (g + λ·w)`, `w ← w − lr·v`,
    /// with decay `λ` on the parameters that take it (weights, not biases), then each
    /// parameter's constraint.
    pub fn sgd_update(&mut self, lr: f32, momentum: f32, weight_decay: f32) -> Result<()> {
        let be = &self.backend;
        for p in self.layers.iter_mut().flat_map(|l| l.params.iter_mut()) {
            p.sgd_update(be, lr, momentum, weight_decay)?;
        }
        Ok(())
    }

    /// Eval-mode logits of `n` samples, `n × classes`; an input of the wrong length is an
    /// [`Error::Shape`].
    pub fn predict(&mut self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        self.check_input(x, n)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        self.forward(x, n, None)?;
        self.backend.download(&self.acts[self.layers.len()])
    }

    /// Eval-mode outputs of every arch layer (`n ×` that layer's length each).
    pub fn forward_trace(&mut self, x: &[f32], n: usize) -> Result<Vec<Vec<f32>>> {
        self.check_input(x, n)?;
        if n == 0 {
            return Ok(vec![Vec::new(); self.layers.len()]);
        }
        self.forward(x, n, None)?;
        self.acts[1..]
            .iter()
            .map(|t| self.backend.download(t))
            .collect()
    }

    fn collect(&self, pick: impl Fn(&Param<B>) -> &B::Tensor) -> Result<Vec<LayerParams>> {
        collect_params(&self.backend, &self.layers, pick)
    }

    /// Host copies of every parameter tensor, for checkpoints and export.
    pub fn params(&self) -> Result<Vec<LayerParams>> {
        self.collect(|p| &p.value)
    }

    /// Replaces every parameter tensor; nothing changes on error.
    pub fn set_params(&mut self, p: &[LayerParams]) -> Result<()> {
        store_params(&self.backend, &mut self.layers, p, "parameters", |d| {
            &mut d.value
        })
    }

    /// Host copies of the momentum buffers (same layout as [`params`](Self::params)).
    pub fn velocities(&self) -> Result<Vec<LayerParams>> {
        self.collect(|p| &p.velocity)
    }

    /// Replaces the momentum buffers; nothing changes on error.
    pub fn set_velocities(&mut self, v: &[LayerParams]) -> Result<()> {
        store_params(&self.backend, &mut self.layers, v, "velocities", |d| {
            &mut d.velocity
        })
    }

    /// Host copies of the last step's gradients (same layout as [`params`](Self::params)).
    pub fn gradients(&self) -> Result<Vec<LayerParams>> {
        self.collect(|p| &p.grad)
    }

    /// The normalized window of LCN layer `layer` (row-major `size × size`).
    pub fn lcn_window(&self, layer: usize) -> Result<Option<Vec<f32>>> {
        match self.layers.get(layer).and_then(|l| l.window.as_ref()) {
            Some(w) => self.backend.download(w).map(Some),
            None => Ok(None),
        }
    }
}

/// Host copies of one tensor of every parameter of `layers` (those with parameters, in
/// order): `pick` chooses value, momentum or gradient.
pub fn collect_params<B: Backend>(
    be: &B,
    layers: &[Layer<B>],
    pick: impl Fn(&Param<B>) -> &B::Tensor,
) -> Result<Vec<LayerParams>> {
    let mut out = Vec::new();
    for (layer, l) in layers.iter().enumerate() {
        if l.params.is_empty() {
            continue;
        }
        let tensors = l
            .params
            .iter()
            .map(|p| {
                Ok(NamedTensor {
                    name: p.name().to_string(),
                    data: be.download(pick(p))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(LayerParams { layer, tensors });
    }
    Ok(out)
}

/// Checks that `given` has one entry per layer with parameters, in order, each with the
/// layer's named tensors at their lengths (`what` names them in errors); then uploads them
/// into the tensor `pick` chooses. Nothing changes on error.
pub fn store_params<B: Backend>(
    be: &B,
    layers: &mut [Layer<B>],
    given: &[LayerParams],
    what: &str,
    pick: impl Fn(&mut Param<B>) -> &mut B::Tensor,
) -> Result<()> {
    let mut it = given.iter();
    let mut pairs = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        if layer.params.is_empty() {
            continue;
        }
        let fail = |message: String| Error::Shape {
            layer: i,
            op: layer.op.name(),
            message,
        };
        let Some(p) = it.next() else {
            return Err(fail(format!("no {what} given for this layer")));
        };
        if p.layer != i {
            return Err(fail(format!(
                "expected {what} for layer {i}, got them for layer {}",
                p.layer
            )));
        }
        let want: Vec<(&str, usize)> = layer
            .params
            .iter()
            .map(|q| (q.name(), q.spec.len))
            .collect();
        let got: Vec<(&str, usize)> = p
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.data.len()))
            .collect();
        if want != got {
            let show = |v: &[(&str, usize)]| {
                v.iter()
                    .map(|(n, l)| format!("{n} ({l})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(fail(format!(
                "{what}: expected tensors {}, got {}",
                show(&want),
                show(&got)
            )));
        }
        pairs.push((i, p));
    }
    if let Some(extra) = it.next() {
        return Err(Error::Shape {
            layer: extra.layer,
            op: layers.get(extra.layer).map_or("none", |l| l.op.name()),
            message: format!("{what} given for a layer without parameters (or given twice)"),
        });
    }
    for (i, p) in pairs {
        for (dst, t) in layers[i].params.iter_mut().zip(&p.tensors) {
            be.upload_into(pick(dst), &t.data)?;
        }
    }
    Ok(())
}
