//! The trainer's error type: every failure names the file, offset, layer or value at fault.

use std::path::PathBuf;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the trainer can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An IDX file is malformed.
    #[error("{path}: {message}")]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong, with offsets and expected values.
        message: String,
    },
    /// An architecture or configuration is invalid.
    #[error("{path}: {message}")]
    Config {
        /// Where it came from.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A layer's shapes do not fit.
    #[error("layer {layer} ({op}): {message}")]
    Shape {
        /// Layer index.
        layer: usize,
        /// Layer type.
        op: &'static str,
        /// Expected vs got.
        message: String,
    },
    /// A checkpoint file is malformed.
    #[error("{path}: invalid checkpoint: {message}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A PSD checkpoint's tensors or settings do not fit together (export and eval of
    /// convolutional encoders).
    #[error("PSD checkpoint: {field}: {message}")]
    PsdCheckpoint {
        /// The tensor or setting at fault (`weight`, `gain`, `theta[3]`, `patch`).
        field: String,
        /// Expected vs got.
        message: String,
    },
    /// A model file failed validation.
    #[error("{path}: {source}")]
    Model {
        /// The file.
        path: PathBuf,
        /// The validator's error.
        source: kestrel_format::Error,
    },
    /// The runtime refused to plan or run a model.
    #[error("runtime: {0}")]
    Runtime(kestrel_runtime::Error),
    /// Training produced a non-finite loss.
    #[error(
        "training diverged at epoch {epoch}, step {step}: loss is {loss} (lower the learning rate)"
    )]
    Diverged {
        /// Epoch.
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// The loss value.
        loss: f32,
    },
    /// A training device is unknown or unavailable.
    #[error("device {device}: {message}")]
    Device {
        /// The device as written (`cuda:1`).
        device: String,
        /// Why it cannot be used.
        message: String,
    },
    /// A backend operation failed on its device (allocation, kernel launch, driver).
    #[error("{backend} backend: {op}: {message}")]
    Backend {
        /// The backend (`cuda:0`).
        backend: String,
        /// The operation (`gemm`, `conv2d_fwd`, `alloc 4096 floats`).
        op: String,
        /// The driver's or library's message.
        message: String,
    },
    /// An external program the command needs is not installed.
    #[error("{tool} not found: {install}")]
    ToolMissing {
        /// The program.
        tool: String,
        /// How to install it.
        install: String,
    },
    /// `cargo build` of a firmware crate failed.
    #[error("building the firmware in {crate_dir} failed{hint}:\n{stderr}")]
    FirmwareBuild {
        /// The firmware crate.
        crate_dir: PathBuf,
        /// A likely fix, when cargo's message points at one (else empty).
        hint: String,
        /// Cargo's stderr.
        stderr: String,
    },
    /// The firmware stopped with an error, faulted, or ran too long under QEMU.
    #[error("{message}; QEMU's output:\n{output}")]
    Firmware {
        /// What went wrong.
        message: String,
        /// Everything QEMU printed.
        output: String,
    },
    /// A dataset directory is missing or cannot be read.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A folder holds neither IDX files nor pictures.
    #[error("empty image folder {path}: no .png/.jpg/.jpeg files (subfolders are not searched)")]
    EmptyImageFolder {
        /// The folder.
        path: PathBuf,
    },
    /// An image-folder dataset is laid out wrongly: an empty class folder, a test class the
    /// training classes lack, no class folders.
    #[error("{path}: {message}")]
    ImageFolder {
        /// The folder at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A picture file cannot be decoded.
    #[error("{path}: cannot decode image: {message}")]
    ImageDecode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// Patches of the requested size do not fit into a picture.
    #[error("--patch {patch} does not fit {image}: it is {rows}×{cols} pixels (rows × columns)")]
    PatchTooLarge {
        /// The patch side.
        patch: usize,
        /// The picture (file, `IDX file #index`, or a region of one).
        image: String,
        /// Its height.
        rows: usize,
        /// Its width.
        cols: usize,
    },
    /// Filter values do not match the shape they are drawn with.
    #[error("{name}: {len} values, but {count} filters of {h}×{w} need {expected}")]
    FilterShape {
        /// The filter bank.
        name: String,
        /// Values given.
        len: usize,
        /// Filters.
        count: usize,
        /// Filter height.
        h: usize,
        /// Filter width.
        w: usize,
        /// `count · h · w`.
        expected: usize,
    },
    /// A checkpoint has no filters to draw.
    #[error("{path}: nothing to draw: {message}")]
    NoFilters {
        /// The checkpoint.
        path: PathBuf,
        /// Why (which architecture, what it lacks).
        message: String,
    },
    /// Drawing or encoding a picture failed.
    #[error("{path}: {message}")]
    Picture {
        /// The picture being made.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A sparse-coding problem, solver call or dictionary-learning run got bad input.
    #[error("sparse coding: {field}: {message}")]
    Sparse {
        /// The argument or field at fault (`lambda`, `d`, `x`, `atom 3`).
        field: String,
        /// Expected vs got.
        message: String,
    },
    /// `kestrel train --init-from` names a checkpoint that is not a convolutional PSD.
    #[error(
        "{path}: --init-from needs a convolutional PSD checkpoint (from `kestrel psd train \
         --conv`), this is {found}"
    )]
    InitFromKind {
        /// The checkpoint.
        path: PathBuf,
        /// What it is instead (`a convnet checkpoint`, `a dense PSD checkpoint`).
        found: String,
    },
    /// `kestrel train --init-from`: the encoder filters do not fit the first convolution.
    #[error(
        "{path}: --init-from: {arch}'s first convolution (layer {layer}) has weights \
         [out, in, k, k] = {expected:?}, the checkpoint's encoder filters are {got:?}"
    )]
    InitFromShape {
        /// The checkpoint.
        path: PathBuf,
        /// The architecture's name.
        arch: String,
        /// Index of the first convolution.
        layer: usize,
        /// The convolution's weight shape.
        expected: [usize; 4],
        /// The checkpoint's `[atoms, channels, K, K]`.
        got: [usize; 4],
    },
    /// Anything else, with a message.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
