//! The runtime's one error type: small, `Copy`, carrying numbers.

use core::fmt;

use kestrel_format::{Precision, INPUT};

/// What can go wrong when planning or running a model.
///
/// Everything about the model file itself is checked earlier, by
/// [`Model::from_bytes`](kestrel_format::Model::from_bytes), with its own error type.
///
/// ```
/// use kestrel_runtime::Error;
/// let err = Error::ArenaTooSmall { needed: 4112, got: 4000 };
/// assert_eq!(
///     err.to_string(),
///     "arena too small: the plan needs 4112 bytes (including the skip to a 16-byte \
///      aligned address), got 4000"
/// );
/// let err = Error::PrecisionNotBuilt { precision: kestrel_format::Precision::F16 };
/// assert_eq!(
///     err.to_string(),
///     "this build of kestrel-runtime has no f16 kernels (built without its `f32` feature)"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The arena is smaller than the plan needs.
    ArenaTooSmall {
        /// Bytes needed: [`Plan::arena_bytes`](crate::Plan::arena_bytes) plus the bytes
        /// skipped to reach a 16-byte aligned address in this arena.
        needed: usize,
        /// Bytes in the arena.
        got: usize,
    },
    /// The input does not have as many elements as the model's input shape.
    InputLength {
        /// Elements the model expects (`c*h*w`).
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// The output slice given to [`Plan::run_f32`](crate::Plan::run_f32) does not have as
    /// many elements as the model's output.
    OutputLength {
        /// Elements the model produces.
        expected: usize,
        /// Elements in the slice.
        got: usize,
    },
    /// This build has no kernel for a layer's operation at the model's precision
    /// (`layer` is [`kestrel_format::INPUT`] for the input stage).
    Unsupported {
        /// Layer index.
        layer: usize,
    },
    /// This build of kestrel-runtime was compiled without the cargo feature for the model's
    /// precision (`f32` for f32 and f16 models, `int8` for int8 models), so it has none of
    /// that precision's kernels. [`Plan::new`](crate::Plan::new) checks it first.
    PrecisionNotBuilt {
        /// The model's precision.
        precision: Precision,
    },
    /// This build of kestrel-runtime was compiled without its `encoders` cargo feature, so
    /// it has no kernels for the sparse-code encoder ops (`PatchNorm`, `Shrink`, `Gain`,
    /// `Lista`, `Dictionary`); `layer` is the first such layer.
    EncodersNotBuilt {
        /// Layer index.
        layer: usize,
    },
    /// [`sparse::Problem::new`](crate::sparse::Problem::new) needs a model whose last layer
    /// is `Dictionary`; `layer` is the model's last layer.
    NotDictionary {
        /// Index of the last layer.
        layer: usize,
    },
    /// A code vector (`h`) does not have the model's number of atoms.
    CodeLength {
        /// Atoms `n`.
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// A scratch slice is shorter than the operation needs.
    ScratchTooSmall {
        /// Elements needed.
        needed: usize,
        /// Elements given.
        got: usize,
    },
    /// [`Plan::with_kernels`](crate::Plan::with_kernels) asked for a kernel set that this
    /// build does not have or this CPU cannot run ([`KernelSet::runs_here`](crate::KernelSet::runs_here)).
    KernelSetUnavailable {
        /// The set asked for.
        set: crate::KernelSet,
        /// The fastest set this build has and this CPU runs ([`crate::KernelSet::detect`]).
        best: crate::KernelSet,
    },
    /// The model exceeds one of the caller's [`Limits`](crate::Limits) (checked by
    /// [`Plan::new`](crate::Plan::new) and [`Plan::with_limits`](crate::Plan::with_limits)
    /// before anything runs).
    LimitExceeded {
        /// Which limit.
        limit: crate::Limit,
        /// The limit's value.
        allowed: u64,
        /// The model's figure.
        model: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::ArenaTooSmall { needed, got } => write!(
                f,
                "arena too small: the plan needs {needed} bytes (including the skip to a \
                 16-byte aligned address), got {got}"
            ),
            Error::InputLength { expected, got } => {
                write!(f, "input has {got} elements, the model expects {expected}")
            }
            Error::OutputLength { expected, got } => write!(
                f,
                "output slice has {got} elements, the model produces {expected}"
            ),
            Error::Unsupported { layer: INPUT } => write!(
                f,
                "model input: this build of kestrel-runtime ({} kernels) cannot prepare it at \
                 this model's precision",
                crate::IMPL
            ),
            Error::Unsupported { layer } => write!(
                f,
                "layer {layer}: this build of kestrel-runtime ({} kernels) has no kernel for \
                 this operation at this model's precision",
                crate::IMPL
            ),
            Error::PrecisionNotBuilt { precision } => {
                let (model, feature) = match precision {
                    Precision::F32 => ("f32", "f32"),
                    Precision::F16 => ("f16", "f32"),
                    Precision::Int8 => ("int8", "int8"),
                };
                write!(
                    f,
                    "this build of kestrel-runtime has no {model} kernels (built without its \
                     `{feature}` feature)"
                )
            }
            #[cfg(feature = "std")]
            Error::KernelSetUnavailable { set, best } => write!(
                f,
                "kernel set {} is not available here: {} is the best this build and CPU run",
                set.name(),
                best.name()
            ),
            // Without `std` a build runs only the set it compiles (`KernelSet::COMPILED`);
            // a constant message keeps firmware `.text` as it was.
            #[cfg(not(feature = "std"))]
            Error::KernelSetUnavailable { .. } => f.write_str(
                "kernel set not available: a build without `std` runs only the set it \
                 compiles (KernelSet::COMPILED)",
            ),
            Error::EncodersNotBuilt { layer } => write!(
                f,
                "layer {layer}: this build of kestrel-runtime has no sparse-code encoder \
                 kernels (built without its `encoders` feature)"
            ),
            Error::NotDictionary { layer } => write!(
                f,
                "layer {layer}: the model's last layer is not a dictionary, so it defines no \
                 sparse-coding problem"
            ),
            Error::CodeLength { expected, got } => write!(
                f,
                "code vector has {got} elements, the dictionary has {expected} atoms"
            ),
            Error::LimitExceeded {
                limit,
                allowed,
                model,
            } => write!(
                f,
                "model exceeds the {} limit: it needs {model}, the limit is {allowed}",
                limit.name()
            ),
            Error::ScratchTooSmall { needed, got } => write!(
                f,
                "scratch has {got} elements, the operation needs {needed}"
            ),
        }
    }
}

impl core::error::Error for Error {}
