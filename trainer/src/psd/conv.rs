//! Convolutional PSD on whole images (Kavukcuoglu et al. 2010, the seed's "convolutional
//! sparse coding"): a convolutional dictionary, code maps inferred by convolutional FISTA,
//! and a convolutional encoder trained to predict them — whose filters then initialize the
//! first convolution of a convnet (`kestrel train --init-from`).
//!
//! Shapes, for one image `x [c, H, W]` and `n` atoms of side `K` (odd):
//! - decoder filters `D [n, c, K, K]`, each filter unit-norm; the reconstruction is the
//!   transposed convolution `A z = Σ_j D_j ∗ z_j` of the code maps `z [n, H, W]` (the
//!   backend's `conv2d_bwd_data` with padding `(K − 1) / 2`, so maps align with the image);
//!   its adjoint `Aᵀ r` is the correlation `conv2d_fwd(r; D)`;
//! - encoder `g(x) = gain ⊙ tanh(W ⋆ x + b)` or `shrink_θ(W ⋆ x + b)` with `W [n, c, K, K]`,
//!   `b [n]` and per-map `gain` / `θ`, the same geometry as a convnet's `conv2d` with
//!   `pad = (K − 1) / 2`;
//! - PSD energy `E = ½‖x − A z‖² + λ‖z‖₁ + α‖z − g(x)‖²`.
//!
//! Training alternates: `z*` by FISTA on `E` warm-started from `g(x)` (step `1/L`,
//! `L = L_A + 2α` with `L_A` from power iteration on `AᵀA`), then one SGD step (momentum 0.9)
//! on the decoder (reconstruction gradient, filters renormalized) and on the encoder
//! (regression `α‖z* − g(x)‖²`). Gradients are means over the images and pixels of a batch;
//! each step is the learning rate times the tensor's inverse curvature (as in dense PSD):
//! decoder `1 / (K²·mean z²)` per pixel over all maps, encoder filters
//! `1 / (2α·K²·mean x²)`, bias and gain / θ `1 / 2α`.
//!
//! Inputs are normalized like the convnet's: `(p/255 − mean) / std` with the training
//! part's pixel statistics ([`Dataset::images`]), so the encoder filters apply unchanged to
//! a convnet's input.

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::{Activation, Backend, ConvShape, Thresh};
use crate::error::{Error, Result};
use crate::nn::{mix, normal};
use crate::patches::FloatImage;

/// Safety factor on the power-iteration estimate of `L_A` (power iteration approaches the
/// largest eigenvalue from below; 5% over it keeps the step `1/L` inside FISTA's bound).
pub const LIPSCHITZ_SAFETY: f32 = 1.05;

/// The convolution geometry of a dictionary or encoder with `atoms` maps of side `kernel`
/// (odd) aligned with a `channels × rows × cols` image.
pub fn conv_shape(
    channels: usize,
    rows: usize,
    cols: usize,
    atoms: usize,
    kernel: usize,
) -> ConvShape {
    ConvShape {
        in_c: channels,
        in_h: rows,
        in_w: cols,
        out_c: atoms,
        kernel,
        stride: 1,
        pad: (kernel - 1) / 2,
        out_h: rows,
        out_w: cols,
    }
}

fn sum_sq<B: Backend>(be: &B, t: &B::Tensor) -> Result<f64> {
    let mut out = be.zeros(1)?;
    be.row_sq_norms(1, be.len(t), t, &mut out)?;
    Ok(be.download(&out)?[0] as f64)
}

/// Per-image sums of squares / absolute values of `t [rows, cols]`.
fn rows_of<B: Backend>(be: &B, rows: usize, t: &B::Tensor, abs: bool) -> Result<Vec<f32>> {
    let cols = be.len(t) / rows.max(1);
    let mut out = be.zeros(rows)?;
    if abs {
        be.row_abs_sums(rows, cols, t, &mut out)?;
    } else {
        be.row_sq_norms(rows, cols, t, &mut out)?;
    }
    be.download(&out)
}

/// The convolutional sparse-coding operator `A z = Σ_j D_j ∗ z_j` for one image size.
pub struct ConvDict<B: Backend> {
    /// Geometry: `in` = the image, `out` = the code maps.
    pub shape: ConvShape,
    /// Decoder filters `[n, c, K, K]`.
    pub d: B::Tensor,
    /// Largest eigenvalue of `AᵀA` (power iteration × [`LIPSCHITZ_SAFETY`]).
    pub lipschitz: f32,
    zero_bias: B::Tensor,
}

impl<B: Backend> ConvDict<B> {
    /// The operator for `filters [atoms, channels, K, K]` on `rows × cols` images; `L_A` by
    /// power iteration (seeded). Typed errors for an even or zero `kernel`, zero atoms, a
    /// filter length that does not match, or non-finite filters.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        be: &B,
        filters: &[f32],
        channels: usize,
        atoms: usize,
        kernel: usize,
        rows: usize,
        cols: usize,
        seed: u64,
    ) -> Result<Self> {
        check_geometry(channels, atoms, kernel, rows, cols)?;
        let want = atoms * channels * kernel * kernel;
        if filters.len() != want || filters.iter().any(|v| !v.is_finite()) {
            return Err(Error::FilterShape {
                name: "convolutional dictionary".into(),
                len: filters.len(),
                count: atoms * channels,
                h: kernel,
                w: kernel,
                expected: want,
            });
        }
        let shape = conv_shape(channels, rows, cols, atoms, kernel);
        let mut dict = ConvDict {
            shape,
            d: be.upload(filters)?,
            lipschitz: 1.0,
            zero_bias: be.zeros(atoms)?,
        };
        dict.lipschitz = dict.power_iteration(be, seed, 200, 1e-5)? * LIPSCHITZ_SAFETY;
        Ok(dict)
    }

    /// Floats in one image.
    pub fn image_len(&self) -> usize {
        self.shape.in_len()
    }

    /// Floats in one image's code maps.
    pub fn code_len(&self) -> usize {
        self.shape.out_len()
    }

    /// `x̂ = A z` for `batch` images.
    pub fn reconstruct(
        &self,
        be: &B,
        batch: usize,
        z: &B::Tensor,
        xhat: &mut B::Tensor,
    ) -> Result<()> {
        be.conv2d_bwd_data(&self.shape, batch, &self.d, z, xhat)
    }

    /// `out = Aᵀ r` for `batch` residual images.
    pub fn correlate(
        &self,
        be: &B,
        batch: usize,
        r: &B::Tensor,
        out: &mut B::Tensor,
    ) -> Result<()> {
        be.conv2d_fwd(&self.shape, batch, r, &self.d, &self.zero_bias, out)
    }

    /// The largest eigenvalue of `AᵀA`, by power iteration from a seeded random map until
    /// the estimate changes by less than `tol` (relative) or `max_iter` steps.
    pub fn power_iteration(&self, be: &B, seed: u64, max_iter: usize, tol: f64) -> Result<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, 0xA11CE));
        let mut host: Vec<f32> = (0..self.code_len()).map(|_| normal(&mut rng)).collect();
        let n0 = host
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            .sqrt()
            .max(1e-30);
        host.iter_mut().for_each(|v| *v = (*v as f64 / n0) as f32);
        let mut v = be.upload(&host)?;
        let mut xhat = be.zeros(self.image_len())?;
        let mut w = be.zeros(self.code_len())?;
        let mut est = 0f64;
        for _ in 0..max_iter {
            // ‖v‖ = 1, so ‖AᵀA v‖ approaches the largest eigenvalue.
            self.reconstruct(be, 1, &v, &mut xhat)?;
            self.correlate(be, 1, &xhat, &mut w)?;
            let norm = sum_sq(be, &w)?.sqrt();
            if norm == 0.0 || !norm.is_finite() {
                return Ok(norm as f32);
            }
            be.axpby((1.0 / norm) as f32, &w, 0.0, &mut v)?;
            let done = (norm - est).abs() <= tol * norm;
            est = norm;
            if done {
                break;
            }
        }
        Ok(est as f32)
    }

    /// Per-image sparse-coding energy `½‖x − A z‖² + λ‖z‖₁` of `batch` images.
    pub fn energy(
        &self,
        be: &B,
        batch: usize,
        lambda: f32,
        x: &B::Tensor,
        z: &B::Tensor,
    ) -> Result<Vec<f32>> {
        let mut r = be.zeros(batch * self.image_len())?;
        self.reconstruct(be, batch, z, &mut r)?;
        be.axpby(-1.0, x, 1.0, &mut r)?;
        let sq = rows_of(be, batch, &r, false)?;
        let l1 = rows_of(be, batch, z, true)?;
        Ok(sq
            .iter()
            .zip(&l1)
            .map(|(s, a)| 0.5 * s + lambda * a)
            .collect())
    }
}

/// A copy of `t` (the trait has no `Clone` bound on tensors).
fn duplicate<B: Backend>(be: &B, t: &B::Tensor) -> Result<B::Tensor> {
    let mut out = be.zeros(be.len(t))?;
    be.copy(t, &mut out)?;
    Ok(out)
}

fn check_geometry(
    channels: usize,
    atoms: usize,
    kernel: usize,
    rows: usize,
    cols: usize,
) -> Result<()> {
    let bad = |message: String| Error::Config {
        path: "--conv".into(),
        message,
    };
    if atoms == 0 || channels == 0 {
        return Err(bad(format!(
            "need at least one atom and one channel (got --atoms {atoms}, {channels} channels)"
        )));
    }
    if kernel == 0 || kernel.is_multiple_of(2) {
        return Err(bad(format!(
            "--patch {kernel}: convolutional filters need an odd side so code maps align with \
             the image (padding (K − 1) / 2)"
        )));
    }
    if kernel > rows || kernel > cols {
        return Err(Error::PatchTooLarge {
            patch: kernel,
            image: "a training image".into(),
            rows,
            cols,
        });
    }
    Ok(())
}

/// When convolutional FISTA stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvFistaOptions {
    /// Iteration cap.
    pub max_iter: usize,
    /// Stop when `‖z − z_prev‖ ≤ tol · max(‖z‖, 1e-12)` for every image.
    pub tol: f32,
}

impl Default for ConvFistaOptions {
    fn default() -> Self {
        ConvFistaOptions {
            max_iter: 100,
            tol: 1e-3,
        }
    }
}

/// How a solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSolveStats {
    /// Iterations run.
    pub iterations: usize,
    /// Whether the tolerance was met before the cap.
    pub converged: bool,
}

/// Convolutional FISTA on `½‖x − A z‖² + λ‖z‖₁ (+ α‖z − g‖² with `prior = Some((α, g))`)`
/// for `batch` images `x [batch, c, H, W]`; `z [batch, n, H, W]` is the warm start in and
/// the codes out. Step `1/L` with `L = L_A + 2α`.
#[allow(clippy::too_many_arguments)]
pub fn conv_fista<B: Backend>(
    be: &B,
    p: &ConvDict<B>,
    batch: usize,
    lambda: f32,
    x: &B::Tensor,
    z: &mut B::Tensor,
    prior: Option<(f32, &B::Tensor)>,
    o: &ConvFistaOptions,
) -> Result<ConvSolveStats> {
    let alpha = prior.map_or(0.0, |(a, _)| a);
    let l = p.lipschitz + 2.0 * alpha;
    let zlen = batch * p.code_len();
    let mut y = duplicate(be, z)?;
    let mut znew = be.zeros(zlen)?;
    let mut r = be.zeros(batch * p.image_len())?;
    let mut t = 1f32;
    for it in 1..=o.max_iter {
        // znew = shrink_{λ/L}(y − ∇f(y) / L), ∇f(y) = Aᵀ(A y − x) + 2α (y − g).
        p.reconstruct(be, batch, &y, &mut r)?;
        be.axpby(-1.0, x, 1.0, &mut r)?;
        p.correlate(be, batch, &r, &mut znew)?;
        if let Some((a, g)) = prior {
            be.axpby(2.0 * a, &y, 1.0, &mut znew)?;
            be.axpby(-2.0 * a, g, 1.0, &mut znew)?;
        }
        be.axpby(1.0, &y, -1.0 / l, &mut znew)?;
        be.copy(&znew, &mut y)?;
        be.shrink_fwd(Thresh::Scalar(lambda / l), &y, &mut znew)?;
        // y = znew + β (znew − z), with the step ‖znew − z‖ measured on the way.
        be.copy(&znew, &mut y)?;
        be.axpby(-1.0, z, 1.0, &mut y)?;
        let step = rows_of(be, batch, &y, false)?;
        let size = rows_of(be, batch, &znew, false)?;
        let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
        be.axpby(1.0, &znew, (t - 1.0) / t_next, &mut y)?;
        t = t_next;
        std::mem::swap(z, &mut znew);
        let tol2 = o.tol * o.tol;
        if step
            .iter()
            .zip(&size)
            .all(|(s, n)| *s <= tol2 * n.max(1e-24))
        {
            return Ok(ConvSolveStats {
                iterations: it,
                converged: true,
            });
        }
    }
    Ok(ConvSolveStats {
        iterations: o.max_iter,
        converged: false,
    })
}

/// The encoder's nonlinearity (LISTA has no convolutional form here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvNonlin {
    /// `gain ⊙ tanh(W ⋆ x + b)`.
    Tanh,
    /// `shrink_θ(W ⋆ x + b)`.
    Shrink,
}

/// One trainable tensor with its gradient and momentum.
struct Slot<B: Backend> {
    value: B::Tensor,
    grad: B::Tensor,
    velocity: B::Tensor,
}

impl<B: Backend> Slot<B> {
    fn new(be: &B, host: &[f32]) -> Result<Self> {
        Ok(Slot {
            value: be.upload(host)?,
            grad: be.zeros(host.len())?,
            velocity: be.zeros(host.len())?,
        })
    }
    fn step(&mut self, be: &B, lr: f32) -> Result<()> {
        be.sgd_update(
            &mut self.value,
            &mut self.velocity,
            &self.grad,
            lr,
            0.9,
            0.0,
        )
    }
}

/// The convolutional encoder's parameters on the backend.
struct Encoder<B: Backend> {
    nonlin: ConvNonlin,
    weight: Slot<B>,
    bias: Slot<B>,
    /// `gain` (tanh) or `θ` (shrink), `[n]`.
    scale: Slot<B>,
}

/// One batch's encoder activations, kept for the backward pass.
struct EncoderPass<B: Backend> {
    /// `u = W ⋆ x + b`.
    pre: B::Tensor,
    /// `tanh(u)` (tanh encoders only).
    act: Option<B::Tensor>,
    /// `g(x)`.
    code: B::Tensor,
}

impl<B: Backend> Encoder<B> {
    fn forward(
        &self,
        be: &B,
        s: &ConvShape,
        batch: usize,
        x: &B::Tensor,
    ) -> Result<EncoderPass<B>> {
        let len = batch * s.out_len();
        let mut pre = be.zeros(len)?;
        be.conv2d_fwd(s, batch, x, &self.weight.value, &self.bias.value, &mut pre)?;
        let mut code = be.zeros(len)?;
        let inner = s.out_h * s.out_w;
        let act = match self.nonlin {
            ConvNonlin::Tanh => {
                let mut t = be.zeros(len)?;
                be.act_fwd(Activation::Tanh, &pre, &mut t)?;
                be.scale_fwd(inner, &self.scale.value, &t, &mut code)?;
                Some(t)
            }
            ConvNonlin::Shrink => {
                let theta = Thresh::PerChannel {
                    theta: &self.scale.value,
                    inner,
                };
                be.shrink_fwd(theta, &pre, &mut code)?;
                None
            }
        };
        Ok(EncoderPass { pre, act, code })
    }

    /// Gradients of every encoder tensor from `dcode = ∂loss/∂g(x)`.
    fn backward(
        &mut self,
        be: &B,
        s: &ConvShape,
        batch: usize,
        x: &B::Tensor,
        pass: &EncoderPass<B>,
        dcode: &B::Tensor,
    ) -> Result<()> {
        let inner = s.out_h * s.out_w;
        let mut dpre = be.zeros(be.len(dcode))?;
        match (self.nonlin, &pass.act) {
            (ConvNonlin::Tanh, Some(t)) => {
                let mut dt = be.zeros(be.len(dcode))?;
                be.scale_bwd(
                    inner,
                    &self.scale.value,
                    t,
                    dcode,
                    &mut dt,
                    Some(&mut self.scale.grad),
                )?;
                be.act_bwd(Activation::Tanh, &pass.pre, t, &dt, &mut dpre)?;
            }
            _ => {
                let theta = Thresh::PerChannel {
                    theta: &self.scale.value,
                    inner,
                };
                be.shrink_bwd(
                    theta,
                    &pass.pre,
                    dcode,
                    &mut dpre,
                    Some(&mut self.scale.grad),
                )?;
            }
        }
        be.conv2d_bwd(
            s,
            batch,
            x,
            &self.weight.value,
            &dpre,
            None,
            &mut self.weight.grad,
            &mut self.bias.grad,
        )
    }

    /// One step: `lr_w` on the filters, `lr` on bias and gain / θ.
    fn step(&mut self, be: &B, lr_w: f32, lr: f32) -> Result<()> {
        self.weight.step(be, lr_w)?;
        self.bias.step(be, lr)?;
        self.scale.step(be, lr)?;
        if self.nonlin == ConvNonlin::Shrink {
            // θ ≥ 0: max(θ, 0) through the ReLU.
            let copy = duplicate(be, &self.scale.value)?;
            be.act_fwd(Activation::Relu, &copy, &mut self.scale.value)?;
        }
        Ok(())
    }
}

/// The encoder's regression loss `(α / batch)·‖g(x) − target‖²` and its gradients, as the
/// training step computes them (the same forward, `dcode` and backward).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvEncoderGrads {
    /// The loss, summed in f64 from the f32 codes.
    pub loss: f64,
    /// `∂loss/∂W`, `[n, c, K, K]`.
    pub weight: Vec<f32>,
    /// `∂loss/∂b`, `[n]`.
    pub bias: Vec<f32>,
    /// `∂loss/∂gain` (tanh) or `∂loss/∂θ` (shrink), `[n]`.
    pub scale: Vec<f32>,
}

/// The convolutional encoder's parameters on the host, for [`encoder_loss_grad`] and
/// [`encode_images`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConvEncoderParams {
    /// Nonlinearity.
    pub nonlin: ConvNonlin,
    /// Input channels.
    pub channels: usize,
    /// Filter side (odd).
    pub kernel: usize,
    /// Maps `n`.
    pub atoms: usize,
    /// `[n, c, K, K]`.
    pub weight: Vec<f32>,
    /// `[n]`.
    pub bias: Vec<f32>,
    /// `gain` (tanh) or `θ` (shrink), `[n]`.
    pub scale: Vec<f32>,
}

impl ConvEncoderParams {
    fn upload<B: Backend>(&self, be: &B) -> Result<Encoder<B>> {
        let (n, flen) = (self.atoms, self.channels * self.kernel * self.kernel);
        for (name, t, len) in [
            ("weight", &self.weight, n * flen),
            ("bias", &self.bias, n),
            ("scale", &self.scale, n),
        ] {
            if t.len() != len {
                return Err(Error::Sparse {
                    field: format!("convolutional encoder {name}"),
                    message: format!("{} values, expected {len}", t.len()),
                });
            }
        }
        Ok(Encoder {
            nonlin: self.nonlin,
            weight: Slot::new(be, &self.weight)?,
            bias: Slot::new(be, &self.bias)?,
            scale: Slot::new(be, &self.scale)?,
        })
    }
}

/// `g(x)` for `batch` images `x [batch, c, rows, cols]`: code maps `[batch, n, rows, cols]`.
pub fn encode_images<B: Backend>(
    be: &B,
    p: &ConvEncoderParams,
    rows: usize,
    cols: usize,
    batch: usize,
    x: &[f32],
) -> Result<Vec<f32>> {
    check_geometry(p.channels, p.atoms, p.kernel, rows, cols)?;
    let s = conv_shape(p.channels, rows, cols, p.atoms, p.kernel);
    check_len("images", batch * s.in_len(), x.len())?;
    let enc = p.upload(be)?;
    let pass = enc.forward(be, &s, batch, &be.upload(x)?)?;
    be.download(&pass.code)
}

fn check_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected != got {
        return Err(Error::Sparse {
            field: format!("convolutional encoder {what}"),
            message: format!("{got} values, expected {expected}"),
        });
    }
    Ok(())
}

/// [`ConvEncoderGrads`] of `p` on `batch` images `x` against `target` code maps.
#[allow(clippy::too_many_arguments)]
pub fn encoder_loss_grad<B: Backend>(
    be: &B,
    p: &ConvEncoderParams,
    rows: usize,
    cols: usize,
    batch: usize,
    x: &[f32],
    target: &[f32],
    alpha: f32,
) -> Result<ConvEncoderGrads> {
    check_geometry(p.channels, p.atoms, p.kernel, rows, cols)?;
    let s = conv_shape(p.channels, rows, cols, p.atoms, p.kernel);
    check_len("images", batch * s.in_len(), x.len())?;
    check_len("target codes", batch * s.out_len(), target.len())?;
    let mut enc = p.upload(be)?;
    let xt = be.upload(x)?;
    let pass = enc.forward(be, &s, batch, &xt)?;
    let code = be.download(&pass.code)?;
    let norm = 1.0 / batch as f32;
    let loss = code
        .iter()
        .zip(target)
        .map(|(g, z)| (*g as f64 - *z as f64).powi(2))
        .sum::<f64>()
        * (alpha * norm) as f64;
    let z = be.upload(target)?;
    let mut dcode = duplicate(be, &pass.code)?;
    be.axpby(-2.0 * alpha * norm, &z, 2.0 * alpha * norm, &mut dcode)?;
    enc.backward(be, &s, batch, &xt, &pass, &dcode)?;
    Ok(ConvEncoderGrads {
        loss,
        weight: be.download(&enc.weight.grad)?,
        bias: be.download(&enc.bias.grad)?,
        scale: be.download(&enc.scale.grad)?,
    })
}

/// Settings of a convolutional PSD run.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvPsdOptions {
    /// Filter side `K` (odd).
    pub kernel: usize,
    /// Code maps `n`.
    pub atoms: usize,
    /// Sparsity weight λ (> 0).
    pub lambda: f32,
    /// Prediction weight α (≥ 0).
    pub alpha: f32,
    /// Encoder nonlinearity.
    pub nonlin: ConvNonlin,
    /// Passes over the training images.
    pub epochs: usize,
    /// Seed of the initialization and of the image order.
    pub seed: u64,
    /// Images per SGD step.
    pub batch: usize,
    /// Encoder learning rate, a fraction of each encoder tensor's inverse curvature, decayed
    /// linearly to 10% over the run (like `dict_lr`).
    pub lr: f32,
    /// Decoder learning rate, a fraction of the decoder's inverse curvature.
    pub dict_lr: f32,
    /// FISTA's stopping rule during training (warm-started from the encoder).
    pub fista: ConvFistaOptions,
    /// No per-epoch lines.
    pub quiet: bool,
}

impl Default for ConvPsdOptions {
    fn default() -> Self {
        ConvPsdOptions {
            kernel: 5,
            atoms: 8,
            lambda: 0.5,
            alpha: 1.0,
            nonlin: ConvNonlin::Tanh,
            epochs: 3,
            seed: 1,
            batch: 16,
            lr: 0.1,
            dict_lr: 0.1,
            fista: ConvFistaOptions::default(),
            quiet: true,
        }
    }
}

/// One epoch's numbers (means per image).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvEpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Encoder learning rate at the end of the epoch.
    pub lr: f32,
    /// Mean `½‖x − A z*‖² + λ‖z*‖₁` with `z*` from FISTA (before the epoch's last update).
    pub energy: f32,
    /// Mean `½‖x − A g(x)‖² + λ‖g(x)‖₁`: the encoder's codes as they are.
    pub encoder_energy: f32,
    /// Fraction of non-zero entries of `z*`.
    pub nonzero_fraction: f32,
    /// Wall time.
    pub seconds: f32,
}

/// A trained convolutional PSD, host copies (the tensors of a `psd` checkpoint with
/// `conv = true`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvPsd {
    /// Input channels.
    pub channels: usize,
    /// Filter side.
    pub kernel: usize,
    /// Code maps.
    pub atoms: usize,
    /// Decoder filters `[n, c, K, K]`, unit norm each.
    pub dictionary: Vec<f32>,
    /// Encoder filters `[n, c, K, K]`.
    pub weight: Vec<f32>,
    /// Encoder bias `[n]`.
    pub bias: Vec<f32>,
    /// Per-map gain (tanh encoders).
    pub gain: Option<Vec<f32>>,
    /// Per-map threshold (shrink encoders).
    pub theta: Option<Vec<f32>>,
    /// Per-epoch history.
    pub history: Vec<ConvEpochLog>,
}

impl ConvPsd {
    /// The PSD checkpoint model (`meta.conv` should be true and its shape fields match).
    pub fn to_model(&self, meta: super::PsdMeta) -> super::PsdModel {
        super::PsdModel {
            meta,
            dictionary: self.dictionary.clone(),
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            gain: self.gain.clone(),
            theta: self.theta.clone(),
            lateral: None,
        }
    }
}

/// Rescales each filter `[n, len]` to unit ℓ2 norm (a zero filter stays zero).
pub fn normalize_filters(filters: &mut [f32], len: usize) {
    for f in filters.chunks_mut(len) {
        let n = f.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
        if n > 0.0 {
            f.iter_mut().for_each(|v| *v = (*v as f64 / n) as f32);
        }
    }
}

fn validate(o: &ConvPsdOptions, images: &[FloatImage], channels: usize) -> Result<()> {
    let bad = |flag: &str, message: String| Error::Config {
        path: flag.into(),
        message,
    };
    if !(o.lambda > 0.0 && o.lambda.is_finite()) {
        return Err(bad(
            "--lambda",
            format!("λ must be positive and finite, got {}", o.lambda),
        ));
    }
    if !(o.alpha >= 0.0 && o.alpha.is_finite()) {
        return Err(bad(
            "--alpha",
            format!("α must be ≥ 0 and finite, got {}", o.alpha),
        ));
    }
    if o.epochs == 0 || o.batch == 0 {
        return Err(bad(
            "--epochs",
            format!(
                "need epochs > 0 and batch > 0 (got {}, {})",
                o.epochs, o.batch
            ),
        ));
    }
    for (flag, v) in [("--lr", o.lr), ("--dict-lr", o.dict_lr)] {
        if !(v > 0.0 && v.is_finite()) {
            return Err(bad(
                flag,
                format!("the learning rate must be finite and > 0, got {v}"),
            ));
        }
    }
    if images.is_empty() {
        return Err(bad("--data", "no training images".into()));
    }
    for im in images {
        check_geometry(channels, o.atoms, o.kernel, im.rows, im.cols)?;
        if im.data.len() != channels * im.rows * im.cols {
            return Err(bad(
                "--data",
                format!(
                    "an image of {}×{} holds {} values",
                    im.rows,
                    im.cols,
                    im.data.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Trains convolutional PSD on normalized `images` (each `[channels, rows, cols]`; images of
/// equal size are batched together, in a seeded order); `on_epoch` sees the model after
/// every epoch (to write a checkpoint). Typed errors for bad settings or an image smaller
/// than the filters.
pub fn train_conv_psd<B: Backend>(
    be: &B,
    images: &[FloatImage],
    channels: usize,
    o: &ConvPsdOptions,
    mut on_epoch: impl FnMut(&ConvPsd) -> Result<()>,
) -> Result<ConvPsd> {
    validate(o, images, channels)?;
    let (n, k) = (o.atoms, o.kernel);
    let flen = channels * k * k;
    let mut rng = ChaCha8Rng::seed_from_u64(mix(o.seed, 0xC0DE));
    let mut dict: Vec<f32> = (0..n * flen).map(|_| normal(&mut rng)).collect();
    normalize_filters(&mut dict, flen);
    // The encoder starts as the dictionary's adjoint, scaled like a LeCun init.
    let std = (1.0 / flen as f32).sqrt();
    let weight: Vec<f32> = (0..n * flen).map(|_| std * normal(&mut rng)).collect();
    let scale0 = match o.nonlin {
        ConvNonlin::Tanh => 1.0,
        ConvNonlin::Shrink => 0.1 * o.lambda,
    };
    let mut enc = Encoder {
        nonlin: o.nonlin,
        weight: Slot::new(be, &weight)?,
        bias: Slot::new(be, &vec![0.0; n])?,
        scale: Slot::new(be, &vec![scale0; n])?,
    };
    let mut d = Slot::new(be, &dict)?;
    let mut dbias_unused = be.zeros(n)?;
    let mut dw = be.zeros(n * flen)?;

    // Batches of equal-sized images, in a seeded order.
    let mut order: Vec<usize> = (0..images.len()).collect();
    let mut history = Vec::new();
    let total_steps = {
        let mut sizes = std::collections::BTreeMap::<(usize, usize), usize>::new();
        for im in images {
            *sizes.entry((im.rows, im.cols)).or_default() += 1;
        }
        sizes.values().map(|c| c.div_ceil(o.batch)).sum::<usize>() * o.epochs
    };
    let mut step = 0usize;
    let mut host_x = Vec::new();
    let mut model = ConvPsd {
        channels,
        kernel: k,
        atoms: n,
        dictionary: Vec::new(),
        weight: Vec::new(),
        bias: Vec::new(),
        gain: None,
        theta: None,
        history: Vec::new(),
    };
    for epoch in 0..o.epochs {
        let start = Instant::now();
        use rand::seq::SliceRandom;
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(
            o.seed,
            1 + epoch as u64,
        )));
        order.sort_by_key(|&i| (images[i].rows, images[i].cols));
        let (mut e_sum, mut ee_sum, mut nz, mut total, mut seen) =
            (0f64, 0f64, 0usize, 0usize, 0usize);
        let mut lr = o.lr;
        let mut i = 0;
        let bar = if o.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(order.len() as u64)
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "epoch {msg} [{bar:30}] {pos}/{len} images {elapsed}<{eta}",
            )
            .map_err(|e| Error::Other(format!("progress bar template: {e}")))?
            .progress_chars("=> "),
        );
        bar.set_message(format!("{}/{}", epoch + 1, o.epochs));
        while i < order.len() {
            let (rows, cols) = (images[order[i]].rows, images[order[i]].cols);
            let mut j = i;
            while j < order.len()
                && j - i < o.batch
                && (images[order[j]].rows, images[order[j]].cols) == (rows, cols)
            {
                j += 1;
            }
            let idx = &order[i..j];
            i = j;
            let b = idx.len();
            let s = conv_shape(channels, rows, cols, n, k);
            host_x.clear();
            for &ii in idx {
                host_x.extend_from_slice(&images[ii].data);
            }
            let x = be.upload(&host_x)?;
            let p = ConvDict::new(
                be,
                &be.download(&d.value)?,
                channels,
                n,
                k,
                rows,
                cols,
                mix(o.seed, step as u64),
            )?;

            let pass = enc.forward(be, &s, b, &x)?;
            let ee = p.energy(be, b, o.lambda, &x, &pass.code)?;
            let mut z = duplicate(be, &pass.code)?;
            conv_fista(
                be,
                &p,
                b,
                o.lambda,
                &x,
                &mut z,
                Some((o.alpha, &pass.code)),
                &o.fista,
            )?;
            let e = p.energy(be, b, o.lambda, &x, &z)?;
            let zh = be.download(&z)?;
            nz += zh.iter().filter(|v| **v != 0.0).count();
            total += zh.len();
            e_sum += e.iter().map(|v| *v as f64).sum::<f64>();
            ee_sum += ee.iter().map(|v| *v as f64).sum::<f64>();
            seen += b;
            if !(e_sum.is_finite() && ee_sum.is_finite()) {
                return Err(Error::Diverged {
                    epoch: epoch + 1,
                    step,
                    loss: e_sum as f32,
                });
            }

            // Gradients of the batch's mean energy per image pixel; steps are fractions of
            // each tensor's inverse curvature (as in dense PSD), so one learning rate fits
            // every image size, filter side and λ.
            let pixels = (b * rows * cols) as f32;
            let norm = 1.0 / pixels;
            let window = (k * k) as f32;
            // Mean squared norm of a K×K input window (all channels), and of a K×K window of
            // all code maps: the curvatures of the encoder filters and of the decoder.
            let x_win = window * host_x.iter().map(|v| v * v).sum::<f32>() / pixels;
            let z_win = window * zh.iter().map(|v| v * v).sum::<f32>() / pixels;
            // Decoder: ∂/∂D ½‖x − A z‖² = −dw of conv2d_bwd(x = residual, dy = z).
            let mut r = be.zeros(b * s.in_len())?;
            p.reconstruct(be, b, &z, &mut r)?;
            be.axpby(1.0, &x, -1.0, &mut r)?;
            be.conv2d_bwd(&s, b, &r, &d.value, &z, None, &mut dw, &mut dbias_unused)?;
            be.axpby(-norm, &dw, 0.0, &mut d.grad)?;
            // Encoder: ∂/∂g α‖z* − g‖² = 2α (g − z*).
            let mut dcode = duplicate(be, &pass.code)?;
            be.axpby(-2.0 * o.alpha * norm, &z, 2.0 * o.alpha * norm, &mut dcode)?;
            enc.backward(be, &s, b, &x, &pass, &dcode)?;

            let decay = 1.0 - 0.9 * step as f32 / total_steps.max(1) as f32;
            lr = o.lr * decay;
            d.step(be, o.dict_lr * decay / z_win.max(1e-3))?;
            let mut host_d = be.download(&d.value)?;
            normalize_filters(&mut host_d, flen);
            be.upload_into(&mut d.value, &host_d)?;
            let curv = (2.0 * o.alpha).max(1e-6);
            enc.step(be, lr / (curv * x_win.max(1e-6)), lr / curv)?;
            step += 1;
            bar.inc(b as u64);
        }
        bar.finish_and_clear();
        let log = ConvEpochLog {
            epoch: epoch + 1,
            lr,
            energy: (e_sum / seen as f64) as f32,
            encoder_energy: (ee_sum / seen as f64) as f32,
            nonzero_fraction: nz as f32 / total.max(1) as f32,
            seconds: start.elapsed().as_secs_f32(),
        };
        if !o.quiet {
            println!(
                "epoch {:>3}/{}  lr {:.3}  energy {:.4}  encoder energy {:.4}  non-zeros {:.1}%  {:.1}s",
                log.epoch,
                o.epochs,
                log.lr,
                log.energy,
                log.encoder_energy,
                100.0 * log.nonzero_fraction,
                log.seconds
            );
        }
        history.push(log);
        let scale = be.download(&enc.scale.value)?;
        model = ConvPsd {
            channels,
            kernel: k,
            atoms: n,
            dictionary: be.download(&d.value)?,
            weight: be.download(&enc.weight.value)?,
            bias: be.download(&enc.bias.value)?,
            gain: (o.nonlin == ConvNonlin::Tanh).then(|| scale.clone()),
            theta: (o.nonlin == ConvNonlin::Shrink).then_some(scale),
            history: history.clone(),
        };
        on_epoch(&model)?;
    }
    Ok(model)
}
