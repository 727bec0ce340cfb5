//! Compute backends: every tensor operation the layers need, behind one trait.
//!
//! [`nn`](crate::nn) is written once against [`Backend`]; a backend owns its tensors
//! (host `Vec<f32>` for [`cpu::Cpu`], device buffers for the coming CUDA backend), and
//! the network moves data across only at the edges (`upload` of a batch, `download` of
//! logits, parameters and gradients for checkpoints).
//!
//! Conventions shared by every implementation, and by the runtime the models are exported to:
//! - activations are NCHW `f32`, contiguous, `n` samples of a per-sample shape `[c, h, w]`;
//!   vectors are `[len, 1, 1]`;
//! - convolution weights are `[out, in, k, k]`, biases `[out]`; linear weights `[out, in]`
//!   with `in` the flattened CHW of a sample;
//! - shapes are validated once by `nn` when the network is built; ops only `debug_assert!`.
//!
//! ```
//! use kestrel_trainer::backend::{Backend, Device, cpu::Cpu};
//! assert_eq!("auto".parse::<Device>().unwrap(), Device::Cpu);
//! let be = Cpu::new();
//! let x = be.upload(&[-1.0, 2.0]);
//! let mut y = be.zeros(2);
//! be.act_fwd(kestrel_trainer::backend::Activation::Relu, &x, &mut y);
//! assert_eq!(be.download(&y), vec![0.0, 2.0]);
//! ```

pub mod cpu;

use std::fmt;
use std::str::FromStr;

use crate::config::LossKind;
use crate::error::{Error, Result};

/// Where to train: `auto`, `cpu`, `cuda` or `cuda:N` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU backend ([`cpu::Cpu`]), threads from rayon's pool.
    Cpu,
    /// A CUDA device by ordinal (not built yet: [`Device::check`] reports it).
    Cuda(usize),
}

impl Device {
    /// The best device available: today always the CPU.
    pub fn auto() -> Device {
        Device::Cpu
    }

    /// Fails with [`Error::Device`] when this binary cannot run on `self`.
    pub fn check(self) -> Result<Device> {
        match self {
            Device::Cpu => Ok(self),
            Device::Cuda(_) => Err(Error::Device {
                device: self.to_string(),
                message: "CUDA backend not built yet (use --device cpu or auto)".into(),
            }),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;

    /// `auto` resolves at once (to [`Device::auto`]); `cuda` means `cuda:0`.
    fn from_str(s: &str) -> Result<Device> {
        let bad = |message: String| Error::Device {
            device: s.to_string(),
            message,
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Device::auto()),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n.parse().map(Device::Cuda).map_err(|_| {
                    bad(format!(
                        "`{n}` is not a CUDA device ordinal (expected cuda:0, cuda:1, …)"
                    ))
                }),
                None => Err(bad("expected auto, cpu, cuda or cuda:N".into())),
            },
        }
    }
}

/// A convolution's geometry for one sample (`n` is passed to each op).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Input channels.
    pub in_c: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output channels (filters).
    pub out_c: usize,
    /// Square kernel side.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on all four sides.
    pub pad: usize,
    /// Output height, `(in_h + 2·pad − kernel) / stride + 1`.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

impl ConvShape {
    /// Floats in one input sample.
    pub fn in_len(&self) -> usize {
        self.in_c * self.in_h * self.in_w
    }
    /// Floats in one output sample.
    pub fn out_len(&self) -> usize {
        self.out_c * self.out_h * self.out_w
    }
    /// Rows of the im2col matrix (`in_c · k · k`), also the weight's row length.
    pub fn patch_len(&self) -> usize {
        self.in_c * self.kernel * self.kernel
    }
    /// Floats in the weight `[out, in, k, k]`.
    pub fn weight_len(&self) -> usize {
        self.out_c * self.patch_len()
    }
}

/// A fully connected layer's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearShape {
    /// Input units (the flattened CHW of a sample).
    pub inputs: usize,
    /// Output units.
    pub outputs: usize,
}

/// A pooling window's geometry (no padding, floor output size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    /// Channels.
    pub c: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Square window side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Output height, `(in_h − kernel) / stride + 1`.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

impl PoolShape {
    /// Floats in one input sample.
    pub fn in_len(&self) -> usize {
        self.c * self.in_h * self.in_w
    }
    /// Floats in one output sample.
    pub fn out_len(&self) -> usize {
        self.c * self.out_h * self.out_w
    }
}

/// Local contrast normalization's geometry; the `size × size` window is a tensor argument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LcnShape {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Window side (odd).
    pub size: usize,
    /// Divisor floor.
    pub eps: f32,
}

impl LcnShape {
    /// Floats in one sample.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    /// True when a sample has no elements (never, for a validated shape).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Elementwise nonlinearities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, x)`; gradient 0 at 0.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `|x|`; gradient 0 at 0.
    Abs,
}

/// A loss value and the number of correct argmax predictions in the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossOut {
    /// Mean loss over the batch.
    pub loss: f32,
    /// Samples whose first largest logit is the label.
    pub correct: usize,
}

/// Whether dropout keeps element `index` for `seed` with drop probability `p`.
///
/// Counter-based (SplitMix64 of seed and index), so the mask does not depend on how the
/// work is split across threads or devices: every backend must use this function's exact
/// arithmetic.
pub fn dropout_keep(seed: u64, index: u64, p: f32) -> bool {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // 24 random bits → a uniform f32 in [0, 1), exactly representable.
    let u = (z >> 40) as f32 * (1.0 / 16_777_216.0);
    u >= p
}

/// The operations a training backend provides. Tensors are flat `f32` buffers owned by the
/// backend; lengths are fixed at allocation.
///
/// Outputs are overwritten (never accumulated into), including parameter gradients.
/// Every op must give results that do not depend on thread scheduling.
pub trait Backend: Send + Sync {
    /// A backend-owned buffer of `f32`.
    type Tensor: Send + Sync;

    /// A short name for logs (`cpu`).
    fn name(&self) -> &'static str;

    /// A zero-filled tensor of `len` floats.
    fn zeros(&self, len: usize) -> Self::Tensor;
    /// A tensor holding a copy of `data`.
    fn upload(&self, data: &[f32]) -> Self::Tensor;
    /// Overwrites `t` with `data` (same length).
    fn upload_into(&self, t: &mut Self::Tensor, data: &[f32]);
    /// A host copy of `t`.
    fn download(&self, t: &Self::Tensor) -> Vec<f32>;
    /// Number of floats in `t`.
    fn len(&self, t: &Self::Tensor) -> usize;
    /// Sets every element of `t` to `value`.
    fn fill(&self, t: &mut Self::Tensor, value: f32);
    /// `dst ← src` (same length).
    fn copy(&self, src: &Self::Tensor, dst: &mut Self::Tensor);

    /// Convolution: `x [n, in_c, in_h, in_w]`, `w [out_c, in_c, k, k]`, `b [out_c]`
    /// → `y [n, out_c, out_h, out_w]`; cross-correlation with zero padding.
    fn conv2d_fwd(
        &self,
        s: &ConvShape,
        n: usize,
        x: &Self::Tensor,
        w: &Self::Tensor,
        b: &Self::Tensor,
        y: &mut Self::Tensor,
    );
    /// Convolution gradients from `dy [n, out_c, out_h, out_w]`: `dw`, `db`, and `dx` unless
    /// `None` (the first layer has no use for it).
    #[allow(clippy::too_many_arguments)]
    fn conv2d_bwd(
        &self,
        s: &ConvShape,
        n: usize,
        x: &Self::Tensor,
        w: &Self::Tensor,
        dy: &Self::Tensor,
        dx: Option<&mut Self::Tensor>,
        dw: &mut Self::Tensor,
        db: &mut Self::Tensor,
    );

    /// `y [n, out] = x [n, in] · wᵀ + b` with `w [out, in]`.
    fn linear_fwd(
        &self,
        s: &LinearShape,
        n: usize,
        x: &Self::Tensor,
        w: &Self::Tensor,
        b: &Self::Tensor,
        y: &mut Self::Tensor,
    );
    /// Linear gradients from `dy [n, out]`; `dx` skipped when `None`.
    #[allow(clippy::too_many_arguments)]
    fn linear_bwd(
        &self,
        s: &LinearShape,
        n: usize,
        x: &Self::Tensor,
        w: &Self::Tensor,
        dy: &Self::Tensor,
        dx: Option<&mut Self::Tensor>,
        dw: &mut Self::Tensor,
        db: &mut Self::Tensor,
    );

    /// `y = f(x)` elementwise.
    fn act_fwd(&self, f: Activation, x: &Self::Tensor, y: &mut Self::Tensor);
    /// `dx = f'(x) ⊙ dy`, given the forward's `x` and `y`.
    fn act_bwd(
        &self,
        f: Activation,
        x: &Self::Tensor,
        y: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
    );

    /// Max pooling `[n, c, in_h, in_w] → [n, c, out_h, out_w]`.
    fn maxpool_fwd(&self, s: &PoolShape, n: usize, x: &Self::Tensor, y: &mut Self::Tensor);
    /// Routes each `dy` to the first maximum (row-major scan) of its window in `x`.
    fn maxpool_bwd(
        &self,
        s: &PoolShape,
        n: usize,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
    );
    /// Average pooling.
    fn avgpool_fwd(&self, s: &PoolShape, n: usize, x: &Self::Tensor, y: &mut Self::Tensor);
    /// Average pooling's gradient.
    fn avgpool_bwd(&self, s: &PoolShape, n: usize, dy: &Self::Tensor, dx: &mut Self::Tensor);

    /// Local contrast normalization of each sample with the normalized `window [size, size]`.
    fn lcn_fwd(
        &self,
        s: &LcnShape,
        n: usize,
        window: &Self::Tensor,
        x: &Self::Tensor,
        y: &mut Self::Tensor,
    );
    /// LCN's exact gradient (recomputes the forward's intermediates from `x`).
    fn lcn_bwd(
        &self,
        s: &LcnShape,
        n: usize,
        window: &Self::Tensor,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
    );

    /// Inverted dropout: `y = x / (1 − p)` where [`dropout_keep`]`(seed, i, p)`, else 0.
    fn dropout_fwd(&self, p: f32, seed: u64, x: &Self::Tensor, y: &mut Self::Tensor);
    /// Dropout's gradient with the same mask.
    fn dropout_bwd(&self, p: f32, seed: u64, dy: &Self::Tensor, dx: &mut Self::Tensor);

    /// Mean loss over the batch of `logits [n, classes]` against `labels` (`n` of them, each
    /// `< classes`), and its gradient w.r.t. the logits.
    fn loss(
        &self,
        kind: LossKind,
        classes: usize,
        logits: &Self::Tensor,
        labels: &[u8],
        dlogits: &mut Self::Tensor,
    ) -> LossOut;

    /// SGD with momentum and L2 decay: `v ← μ·v + (g + λ·w)`, `w ← w − lr·v`.
    fn sgd_update(
        &self,
        w: &mut Self::Tensor,
        v: &mut Self::Tensor,
        g: &Self::Tensor,
        lr: f32,
        momentum: f32,
        decay: f32,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_cuda_is_a_typed_error() {
        assert_eq!("auto".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!(" CPU ".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:3".parse::<Device>().unwrap(), Device::Cuda(3));
        assert_eq!(Device::Cuda(3).to_string(), "cuda:3");
        for bad in ["gpu", "cuda:x", "cuda:-1", ""] {
            assert!(
                matches!(bad.parse::<Device>(), Err(Error::Device { .. })),
                "{bad}"
            );
        }
        assert_eq!(Device::Cpu.check().unwrap(), Device::Cpu);
        let err = Device::Cuda(1).check().unwrap_err();
        assert!(
            err.to_string().contains("CUDA backend not built yet"),
            "{err}"
        );
    }

    #[test]
    fn dropout_mask_depends_only_on_seed_and_index() {
        let kept = (0..10_000).filter(|&i| dropout_keep(5, i, 0.5)).count();
        assert!((4_800..5_200).contains(&kept), "{kept}");
        assert!((0..1000).all(|i| dropout_keep(9, i, 0.0)));
        assert_ne!(
            (0..64).map(|i| dropout_keep(1, i, 0.5)).collect::<Vec<_>>(),
            (0..64).map(|i| dropout_keep(2, i, 0.5)).collect::<Vec<_>>()
        );
    }
}
