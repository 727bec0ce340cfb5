//! The [`Backend`] trait: every tensor operation the layers and the sparse-coding solvers
//! need.

use super::geometry::{Activation, ConvShape, LcnShape, LinearShape, LossOut, PoolShape};
use crate::config::LossKind;
use crate::error::Result;

/// A soft threshold's `θ`: one value for every element, or one per channel.
#[derive(Debug)]
pub enum Thresh<'t, T: ?Sized> {
    /// The same `θ ≥ 0` everywhere (a solver's `λ / L`).
    Scalar(f32),
    /// `theta[c]` for element `i`, with `c = (i / inner) % theta.len()`: per atom of
    /// `[n, atoms]` codes (`inner = 1`) or per channel of `[n, c, h, w]` maps
    /// (`inner = h·w`).
    PerChannel {
        /// `[channels]`, each `≥ 0`.
        theta: &'t T,
        /// Elements per channel and sample.
        inner: usize,
    },
}

impl<T: ?Sized> Clone for Thresh<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: ?Sized> Copy for Thresh<'_, T> {}

impl<'t, T: ?Sized> Thresh<'t, T> {
    /// The same threshold over another view of the per-channel tensor (a backend's slice).
    pub fn map<U: ?Sized>(self, f: impl FnOnce(&'t T) -> &'t U) -> Thresh<'t, U> {
        match self {
            Thresh::Scalar(t) => Thresh::Scalar(t),
            Thresh::PerChannel { theta, inner } => Thresh::PerChannel {
                theta: f(theta),
                inner,
            },
        }
    }
}

/// The operations a training backend provides. Tensors are flat `f32` buffers owned by the
/// backend; lengths are fixed at allocation.
///
/// Outputs are overwritten (never accumulated into), including parameter gradients, unless
/// an op says otherwise (`axpby`, `gemm` with `beta ≠ 0`, `add_sign`).
/// Every op must give results that do not depend on thread scheduling.
///
/// Every operation returns a [`Result`]: a device backend reports allocation, launch and
/// driver failures as [`crate::Error::Backend`] instead of panicking. Shapes are validated
/// by the callers (`nn`, `sparse`); ops only `debug_assert!` them.
///
/// Each op's reference semantics is the CPU backend ([`super::cpu::Cpu`]); `conformance`
/// tests hold every other backend to it within stated tolerances.
pub trait Backend: Send + Sync {
    /// A backend-owned buffer of `f32`.
    type Tensor: Send + Sync;

    /// A short name for logs (`cpu`).
    fn name(&self) -> &'static str;

    /// A zero-filled tensor of `len` floats.
    fn zeros(&self, len: usize) -> Result<Self::Tensor>;
    /// A tensor holding a copy of `data`.
    fn upload(&self, data: &[f32]) -> Result<Self::Tensor>;
    /// Overwrites `t` with `data` (same length).
    fn upload_into(&self, t: &mut Self::Tensor, data: &[f32]) -> Result<()>;
    /// A host copy of `t`.
    fn download(&self, t: &Self::Tensor) -> Result<Vec<f32>>;
    /// Number of floats in `t`.
    fn len(&self, t: &Self::Tensor) -> usize;
    /// Sets every element of `t` to `value`.
    fn fill(&self, t: &mut Self::Tensor, value: f32) -> Result<()>;
    /// `dst ← src` (same length).
    fn copy(&self, src: &Self::Tensor, dst: &mut Self::Tensor) -> Result<()>;

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
    ) -> Result<()>;
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
    ) -> Result<()>;

    /// The convolution's input gradient alone, `dx [n, in_c, in_h, in_w]` from
    /// `dy [n, out_c, out_h, out_w]` (the transposed convolution: a convolutional
    /// dictionary's reconstruction `Σ_k D_k ∗ h_k`).
    fn conv2d_bwd_data(
        &self,
        s: &ConvShape,
        n: usize,
        w: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
    ) -> Result<()>;

    /// `y [n, out] = x [n, in] · wᵀ + b` with `w [out, in]`.
    fn linear_fwd(
        &self,
        s: &LinearShape,
        n: usize,
        x: &Self::Tensor,
        w: &Self::Tensor,
        b: &Self::Tensor,
        y: &mut Self::Tensor,
    ) -> Result<()>;
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
    ) -> Result<()>;

    /// `y = f(x)` elementwise.
    fn act_fwd(&self, f: Activation, x: &Self::Tensor, y: &mut Self::Tensor) -> Result<()>;
    /// `dx = f'(x) ⊙ dy`, given the forward's `x` and `y`.
    fn act_bwd(
        &self,
        f: Activation,
        x: &Self::Tensor,
        y: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
    ) -> Result<()>;

    /// Max pooling `[n, c, in_h, in_w] → [n, c, out_h, out_w]`.
    fn maxpool_fwd(
        &self,
        s: &PoolShape,
        n: usize,
        x: &Self::Tensor,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// Routes each `dy` to the first maximum (row-major scan) of its window in `x`.
    fn maxpool_bwd(
        &self,
        s: &PoolShape,
        n: usize,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
    ) -> Result<()>;
    /// Average pooling.
    fn avgpool_fwd(
        &self,
        s: &PoolShape,
        n: usize,
        x: &Self::Tensor,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// Average pooling's gradient.
    fn avgpool_bwd(
        &self,
        s: &PoolShape,
        n: usize,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
    ) -> Result<()>;

    /// Local contrast normalization of each sample with the normalized `window [size, size]`.
    fn lcn_fwd(
        &self,
        s: &LcnShape,
        n: usize,
        window: &Self::Tensor,
        x: &Self::Tensor,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// LCN's exact gradient (recomputes the forward's intermediates from `x`).
    fn lcn_bwd(
        &self,
        s: &LcnShape,
        n: usize,
        window: &Self::Tensor,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
    ) -> Result<()>;

    /// Inverted dropout: `y = x / (1 − p)` where
    /// [`dropout_keep`](super::dropout_keep)`(seed, i, p)`, else 0.
    fn dropout_fwd(&self, p: f32, seed: u64, x: &Self::Tensor, y: &mut Self::Tensor) -> Result<()>;
    /// Dropout's gradient with the same mask.
    fn dropout_bwd(
        &self,
        p: f32,
        seed: u64,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
    ) -> Result<()>;

    /// Mean loss over the batch of `logits [n, classes]` against `labels` (`n` of them, each
    /// `< classes`), and its gradient w.r.t. the logits.
    fn loss(
        &self,
        kind: LossKind,
        classes: usize,
        logits: &Self::Tensor,
        labels: &[u8],
        dlogits: &mut Self::Tensor,
    ) -> Result<LossOut>;

    /// SGD with momentum and L2 decay: `v ← μ·v + (g + λ·w)`, `w ← w − lr·v`.
    fn sgd_update(
        &self,
        w: &mut Self::Tensor,
        v: &mut Self::Tensor,
        g: &Self::Tensor,
        lr: f32,
        momentum: f32,
        decay: f32,
    ) -> Result<()>;

    /// Adam (Kingma & Ba 2015) with bias correction, `t ≥ 1` the step number:
    /// `m ← β₁·m + (1 − β₁)·g`, `v ← β₂·v + (1 − β₂)·g²`,
    /// `w ← w − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)`.
    #[allow(clippy::too_many_arguments)]
    fn adam_update(
        &self,
        w: &mut Self::Tensor,
        m: &mut Self::Tensor,
        v: &mut Self::Tensor,
        g: &Self::Tensor,
        lr: f32,
        betas: (f32, f32),
        eps: f32,
        t: u32,
    ) -> Result<()>;

    // ---- Linear algebra and elementwise primitives (sparse coding, PSD, LISTA) ----

    /// `c ← α·op(a)·op(b) + β·c`, row-major: `op(a)` is `m × k` (`a` stored `[m, k]`, or
    /// `[k, m]` when `ta`), `op(b)` is `k × n` (`b` stored `[k, n]`, or `[n, k]` when `tb`),
    /// `c` is `[m, n]`. With `β = 0`, `c` is not read.
    ///
    /// Row `i` of `c` depends only on row `i` of `op(a)` (not on `m`), so a sample's result
    /// does not depend on the batch around it.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        ta: bool,
        tb: bool,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: &Self::Tensor,
        b: &Self::Tensor,
        beta: f32,
        c: &mut Self::Tensor,
    ) -> Result<()>;

    /// `y ← α·x + β·y` elementwise (same lengths). With `β = 0`, `y` is not read.
    fn axpby(&self, alpha: f32, x: &Self::Tensor, beta: f32, y: &mut Self::Tensor) -> Result<()>;

    /// `y ← y + α·sign(x)` elementwise (`sign(0) = 0`): the ℓ1 term's subgradient.
    fn add_sign(&self, alpha: f32, x: &Self::Tensor, y: &mut Self::Tensor) -> Result<()>;

    /// Soft threshold `y = sign(x)·max(|x| − θ, 0)`.
    fn shrink_fwd(
        &self,
        theta: Thresh<'_, Self::Tensor>,
        x: &Self::Tensor,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// Soft threshold's gradient from the forward's input `x`: `dx = dy` where `|x| > θ`,
    /// else 0; with [`Thresh::PerChannel`] and `dtheta` given,
    /// `dθ[c] = −Σ sign(x)·dy` over the elements of channel `c` where `|x| > θ`
    /// (summed over the batch, in a fixed order).
    fn shrink_bwd(
        &self,
        theta: Thresh<'_, Self::Tensor>,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
        dtheta: Option<&mut Self::Tensor>,
    ) -> Result<()>;

    /// Per-channel gain `y = g[c]·x` with `c = (i / inner) % g.len()`.
    fn scale_fwd(
        &self,
        inner: usize,
        g: &Self::Tensor,
        x: &Self::Tensor,
        y: &mut Self::Tensor,
    ) -> Result<()>;
    /// The gain's gradients: `dx = g[c]·dy`, and `dg[c] = Σ x·dy` over channel `c`'s
    /// elements (summed over the batch, in a fixed order) when `dg` is given.
    fn scale_bwd(
        &self,
        inner: usize,
        g: &Self::Tensor,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        dx: &mut Self::Tensor,
        dg: Option<&mut Self::Tensor>,
    ) -> Result<()>;

    /// Per-row squared norms of `x [rows, cols]`: `out[r] = Σ_c x[r, c]²` (`out` has
    /// `rows` elements; summed in f64 on the CPU, f32 pairwise or better elsewhere).
    fn row_sq_norms(
        &self,
        rows: usize,
        cols: usize,
        x: &Self::Tensor,
        out: &mut Self::Tensor,
    ) -> Result<()>;
    /// Per-row ℓ1 norms of `x [rows, cols]`: `out[r] = Σ_c |x[r, c]|`.
    fn row_abs_sums(
        &self,
        rows: usize,
        cols: usize,
        x: &Self::Tensor,
        out: &mut Self::Tensor,
    ) -> Result<()>;
    /// Rescales each column of `d [rows, cols]` to unit ℓ2 norm (a column of zeros is left
    /// as it is): the unit-norm constraint on dictionary atoms.
    fn normalize_columns(&self, rows: usize, cols: usize, d: &mut Self::Tensor) -> Result<()>;
}
