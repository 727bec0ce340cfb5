//! # kestrel-format
//!
//! Kestrel's model file: a fixed 32-byte [`header`] (magic `KSTL`, format version, CRC32 of
//! the payload), a postcard-encoded metadata block ([`ModelDesc`]: input shape and
//! normalization, ordered layers with shapes and quantization parameters, class names,
//! provenance) and a data section of tensors.
//!
//! **Zero copy.** [`Model::from_bytes`] borrows every tensor from the caller's `&[u8]`
//! (flash, a memory map, a buffer) as a typed slice (`&[f32]`, `&[f16]`, `&[i8]`, `&[i32]`);
//! nothing is copied.
//!
//! **Alignment.** The data section starts at a 16-byte aligned offset of the file and every
//! tensor at a 16-byte aligned offset of the data section. So if the file's first byte is
//! 16-byte aligned, every tensor is aligned for its type (and for 128-bit SIMD loads). The
//! validator checks the address and returns [`Error::Misaligned`] otherwise. Embed with
//! [`include_model!`] (wraps the bytes in [`Aligned16`]); on a host use `AlignedBuf`
//! (feature `alloc`).
//!
//! **Validation once.** [`Model::from_bytes`] checks version, CRC, every shape against
//! every buffer length, the layer chain, and every quantization parameter (finite positive
//! scales, int8 zero points, multipliers in `[2^30, 2^31)`, shifts in `[-31, 30]`) and
//! returns a typed [`Error`]. A runtime can then run without checks.
//!
//! ```
//! use kestrel_format::{Error, Model};
//! // Anything that is not a complete, consistent model is a typed error, never a panic.
//! let err = Model::from_bytes(&[0x4b, 0x53, 0x54, 0x4c, 9, 0]).unwrap_err();
//! assert_eq!(err, Error::Truncated { needed: 32, got: 6 });
//! println!("{err}"); // "model file truncated: needs 32 bytes, got 6"
//! ```
//!
//! Little-endian targets only (every Cortex-M, aarch64 and x86-64 target is).
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(target_endian = "big")]
compile_error!(
    "kestrel-format borrows little-endian tensors in place; big-endian targets are not supported"
);

#[cfg(feature = "std")]
extern crate std;

pub mod desc;
mod error;
pub mod header;
mod model;
pub mod quant;
#[cfg(feature = "alloc")]
mod writer;

pub use desc::{
    DType, InputSpec, LayerDesc, ListaQuant, ModelDesc, Op, Precision, Provenance, QParams,
    Requant, Rescale, Shape, TensorRef,
};
pub use error::{Error, Field};
pub use header::{HEADER_LEN, MAGIC, TENSOR_ALIGN, VERSION};
pub use model::{ConvGeom, Dense, Lateral, Layer, LayerKind, Model, Thresholds, INPUT};
#[cfg(feature = "alloc")]
pub use writer::{encode, AlignedBuf, DataBuilder};

pub use half::f16;

/// Most layers a model may have (the fixed capacity of the no_std view).
pub const MAX_LAYERS: usize = 32;
/// Most class names a model may carry.
pub const MAX_CLASSES: usize = 64;

/// Wraps bytes at a 16-byte aligned address: `static M: &Aligned16<[u8; N]> = ...`.
#[repr(C, align(16))]
pub struct Aligned16<T: ?Sized>(pub T);

/// Embeds a model file at a 16-byte aligned address, as a `&'static [u8]`.
///
/// ```ignore
/// static MODEL: &[u8] = kestrel_format::include_model!("../lenet-int8.kmodel");
/// ```
#[macro_export]
macro_rules! include_model {
    ($path:expr) => {{
        static ALIGNED: &$crate::Aligned16<[u8; include_bytes!($path).len()]> =
            &$crate::Aligned16(*include_bytes!($path));
        &ALIGNED.0
    }};
}
