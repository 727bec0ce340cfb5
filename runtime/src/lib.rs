//! # kestrel-runtime
//!
//! Runs a validated [`kestrel_format::Model`] on a microcontroller: `no_std`, no heap, no
//! panics reachable from model or input bytes. All memory is one caller-owned byte arena.
//!
//! **Validate once, then run.** [`Model::from_bytes`](kestrel_format::Model::from_bytes)
//! checks the file; [`Plan::new`] checks that this build has a kernel for every layer and
//! lays out the arena; [`Plan::run`] only computes.
//!
//! ```
//! use kestrel_format::{
//!     encode, AlignedBuf, DataBuilder, InputSpec, LayerDesc, Model, ModelDesc, Op, Precision,
//!     Provenance, Shape,
//! };
//! use kestrel_runtime::{Input, Output, Plan};
//!
//! // A 1-input, 2-output linear layer followed by a ReLU.
//! let mut data = DataBuilder::new();
//! let weight = data.f32(&[2.0, -1.0]);
//! let bias = data.f32(&[0.5, 0.0]);
//! let v = Shape::new(2, 1, 1);
//! let mut desc = ModelDesc {
//!     name: "tiny",
//!     precision: Precision::F32,
//!     input: InputSpec { shape: Shape::new(1, 1, 1), mean: 0.0, std: 1.0, quant: None },
//!     layers: Default::default(),
//!     classes: Default::default(),
//!     provenance: Provenance {
//!         arch: "doc",
//!         dataset: "-",
//!         train_samples: 0,
//!         epochs: 0,
//!         float_accuracy: f32::NAN,
//!         trainer: "-",
//!     },
//! };
//! let linear = Op::Linear { weight, bias, requant: None };
//! let input = Shape::new(1, 1, 1);
//! desc.layers.push(LayerDesc { op: linear, input, output: v, out_quant: None }).unwrap();
//! desc.layers.push(LayerDesc { op: Op::Relu, input: v, output: v, out_quant: None }).unwrap();
//! let file = AlignedBuf::new(&encode(&desc, &data).unwrap()); // 16-byte aligned copy
//!
//! let model = Model::from_bytes(&file)?;
//! let plan = Plan::new(&model)?;
//! // Input and output rounded to 16 bytes each; the ReLU runs in place.
//! assert_eq!(plan.arena_bytes(), 32);
//! // Any byte buffer works; an unaligned one costs up to 15 extra bytes.
//! let mut arena = [0u8; 32 + 15];
//! match plan.run(&mut arena, Input::Normalized(&[3.0]))? {
//!     Output::F32(y) => assert_eq!(y, &[6.5, 0.0]), // relu(2·3 + 0.5), relu(−3)
//!     Output::I8(_) => unreachable!("an f32 model"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Arena.** Layers run in order; each reads one buffer and writes the next. Buffers sit
//! at alternating ends of the arena (scratch, when an op needs some, in between), so the
//! arena is exactly as large as the largest single layer's live set; see
//! [`Plan::arena_bytes`]. Element-wise layers (ReLU, tanh, abs, flatten) work in place.
//!
//! **Kernels.** One folder per operation under `src/kernels/`, each with a scalar
//! `reference.rs` that is the specification; [`IMPL`] names the kernel set compiled in.
#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
// Without one precision's feature its kernels still compile (the kernel checks use them)
// but no dispatch arm calls them (nor uses the variant re-exports and helpers that reach
// them), so the linker drops them.
#![cfg_attr(
    not(all(feature = "f32", feature = "int8")),
    allow(dead_code, unused_imports)
)]
// With neither, every model is refused and the dispatch functions ignore their arguments.
#![cfg_attr(not(any(feature = "f32", feature = "int8")), allow(unused_variables))]

#[cfg(any(test, feature = "std"))]
extern crate std;

#[cfg(any(test, feature = "kernel-check"))]
pub mod check;
mod error;
mod kernel_set;
mod kernels;
mod plan;
#[cfg(all(feature = "encoders", feature = "f32"))]
pub mod sparse;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use error::Error;
pub use kernel_set::KernelSet;
pub use kestrel_format;
pub use plan::{layer_ops, Input, LayerStats, Limit, Limits, Output, Plan};

/// The kernel set this build runs without run-time detection: `"reference"` (the scalar
/// kernels), `"dsp"` (ARMv7E-M / Armv8-M DSP), `"mve"` (Helium), `"neon"` (aarch64),
/// `"neon-dotprod"` (aarch64 built for `dotprod`), `"avx2"` (x86-64 built for AVX2) or
/// `"avx2-vnni"` (built for AVX2 and AVX-512 VNNI): the name of [`KernelSet::COMPILED`].
/// With the `std` feature a plan runs [`KernelSet::detect`] instead, which finds AVX2 and
/// VNNI on x86-64, and `dotprod` on aarch64, at run time ([`Plan::kernel_set`] says which
/// ran).
pub const IMPL: &str = KernelSet::COMPILED.name();
