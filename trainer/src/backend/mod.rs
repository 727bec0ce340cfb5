//! Compute backends: every tensor operation the layers and the sparse-coding solvers need,
//! behind one trait.
//!
//! - [`device`]: which backend to run (`--device auto|cpu|cuda[:N]`) and probing for it;
//! - [`ops`]: the [`Backend`] trait, every op returning a [`Result`](crate::Result);
//! - [`geometry`]: the shapes and conventions every backend shares;
//! - [`cpu`]: the readable reference backend that every other one is tested against;
//! - [`cuda`]: one NVIDIA GPU through cuBLAS and NVRTC-compiled kernels (loaded at run time).
//!
//! [`nn`](crate::nn) and the sparse-coding solvers are written once against [`Backend`]; a
//! backend owns its tensors (host `Vec<f32>` for [`cpu::Cpu`], device buffers for a GPU
//! backend), and callers move data across only at the edges (`upload` of a batch,
//! `download` of logits, codes, parameters and gradients for checkpoints).
//!
//! Conventions shared by every implementation, and by the runtime the models are exported to:
//! - activations are NCHW `f32`, contiguous, `n` samples of a per-sample shape `[c, h, w]`;
//!   vectors are `[len, 1, 1]`;
//! - convolution weights are `[out, in, k, k]`, biases `[out]`; linear weights `[out, in]`
//!   with `in` the flattened CHW of a sample;
//! - matrices are row-major;
//! - shapes are validated once by the callers; ops only `debug_assert!`.
//!
//! ```
//! use kestrel_trainer::backend::{Backend, Device, cpu::Cpu};
//! assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
//! let be = Cpu::new();
//! let x = be.upload(&[-1.0, 2.0])?;
//! let mut y = be.zeros(2)?;
//! be.act_fwd(kestrel_trainer::backend::Activation::Relu, &x, &mut y)?;
//! assert_eq!(be.download(&y)?, vec![0.0, 2.0]);
//! # Ok::<(), kestrel_trainer::Error>(())
//! ```

pub mod conformance;
pub mod cpu;
pub mod cuda;
pub mod device;
pub mod geometry;
pub mod ops;

pub use device::Device;
pub use geometry::{
    dropout_keep, Activation, ConvShape, LcnShape, LinearShape, LossOut, PoolShape,
};
pub use ops::{Backend, Thresh};
