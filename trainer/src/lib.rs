//! # kestrel-trainer
//!
//! Trains convnets on the CPU (a CUDA backend slots in behind [`backend::Backend`]),
//! exports them as quantized Kestrel model files, and evaluates exported files by running
//! the `kestrel-runtime` crate itself, so the accuracy reported is the accuracy a device gets.
//!
//! The pipeline, in module order: [`data`] (IDX files or image folders) → [`config`] (architectures) →
//! [`nn`] + [`backend`] (layers, losses, CPU kernels) → [`train`] (SGD) →
//! [`checkpoint`] → [`export`] (f32 / f16 / int8; [`export_onnx`] for other engines) →
//! [`eval`] and [`inspect`] (on the runtime) → [`firmware`] (on Cortex-M firmware under QEMU);
//! [`report`] gathers a run into one HTML page beside its checkpoint.
//! Sparse coding ([`sparse`]: ISTA, FISTA, coordinate descent, dictionary learning) draws its [`patches`] from IDX directories or folders of pictures;
//! [`visualize`] draws filters and curves as PNG.
#![deny(missing_docs)]

pub mod backend;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod encode;
pub mod error;
pub mod eval;
pub mod export;
pub mod export_encoder;
pub mod export_onnx;
pub mod firmware;
pub mod gradcheck;
pub mod inspect;
pub mod nn;
pub mod patches;
pub mod progress;
pub mod psd;
pub mod report;
pub mod sparse;
pub mod train;
pub mod visualize;

pub use error::{Error, Result};
