//! Predictive Sparse Decomposition (Kavukcuoglu, Ranzato & LeCun 2008): a dictionary `D`
//! and a feed-forward encoder `g` trained together so that `g(x)` predicts the sparse code
//! `h* = argmin_h E(x, h)`, `E(x, h) = ½‖x − D h‖² + λ‖h‖₁`, with the PSD loss
//! `E(x, h) + α‖h − g(x)‖²`.
//!
//! - [`model`]: the checkpoint ([`PsdModel`]) and the float reference encoder;
//! - [`encoder`]: the encoders (`tanh`, `shrink`, `lista:T`) on [`Backend`](crate::backend::Backend)
//!   primitives, forward and backward;
//! - [`train`]: joint training (codes inferred by FISTA warm-started from `g(x)`, then one
//!   step on the decoder and the encoder), the energy curve beside the checkpoint;
//! - [`conv`]: convolutional PSD on whole images (convolutional dictionary, FISTA and
//!   encoder), whose encoder initializes a convnet's first convolution (`--init-from`);
//! - [`eval`]: energies of the encoder's codes against converged FISTA on held-out patches.

pub mod conv;
pub mod encoder;
pub mod eval;
pub mod model;
pub mod train;

pub use model::{EncoderKind, PsdEpochLog, PsdMeta, PsdModel};

/// [`Envelope::kind`](crate::checkpoint::Envelope::kind) of `kestrel psd train`'s checkpoints.
pub const KIND_PSD: &str = "psd";
