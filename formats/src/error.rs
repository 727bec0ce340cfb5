//! The one error type of the format crate: small, `Copy`, carrying numbers, never strings.

use core::fmt;

/// Which part of a layer a [`Error`] talks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// Convolution or linear weights.
    Weight,
    /// Biases.
    Bias,
    /// Per-output-channel weight scales.
    WeightScale,
    /// Requantization multipliers.
    Multiplier,
    /// Requantization shifts.
    Shift,
    /// A 256-entry int8 lookup table.
    Table,
    /// The local-contrast-normalization window.
    Window,
    /// The layer's input shape.
    InputShape,
    /// The layer's output shape.
    OutputShape,
    /// The output quantization parameters.
    OutputQuant,
    /// The input quantization parameters of the model.
    InputQuant,
    /// Kernel size, stride or padding.
    Geometry,
    /// The model's input normalization (mean, std).
    Normalization,
    /// Shrinkage thresholds (`θ`).
    Theta,
    /// Per-channel gains.
    Gain,
    /// The LISTA matrix `S`.
    Lateral,
    /// The LISTA matrix's per-row scales (int8).
    LateralScale,
    /// Recurrent steps of a LISTA layer.
    Steps,
    /// The patch-normalization contrast floor.
    Contrast,
    /// Dictionary atoms `D`.
    Atoms,
    /// The sparsity weight `λ`.
    Lambda,
    /// The Lipschitz constant `L` of a dictionary.
    Lipschitz,
    /// FISTA's weight `Dᵀ/L`.
    FistaWeight,
    /// FISTA's matrix `I − DᵀD/L`.
    FistaS,
    /// LISTA's rescaling of its input codes into each row's accumulator units.
    ListaInput,
    /// LISTA's rescaling of each row's accumulator to output codes.
    ListaOutput,
}

impl Field {
    /// A lower-case name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Field::Weight => "weight",
            Field::Bias => "bias",
            Field::WeightScale => "weight scale",
            Field::Multiplier => "requantization multiplier",
            Field::Shift => "requantization shift",
            Field::Table => "lookup table",
            Field::Window => "LCN window",
            Field::InputShape => "input shape",
            Field::OutputShape => "output shape",
            Field::OutputQuant => "output quantization",
            Field::InputQuant => "input quantization",
            Field::Geometry => "kernel geometry",
            Field::Normalization => "input normalization",
            Field::Theta => "shrinkage threshold",
            Field::Gain => "gain",
            Field::Lateral => "LISTA matrix S",
            Field::LateralScale => "LISTA S scale",
            Field::Steps => "LISTA steps",
            Field::Contrast => "contrast floor",
            Field::Atoms => "dictionary atoms",
            Field::Lambda => "lambda",
            Field::Lipschitz => "Lipschitz constant",
            Field::FistaWeight => "FISTA weight",
            Field::FistaS => "FISTA matrix",
            Field::ListaInput => "LISTA input rescaling",
            Field::ListaOutput => "LISTA output rescaling",
        }
    }
}

/// Everything that can be wrong with a model file.
///
/// `layer` numbers count from 0 in file order; offsets are byte offsets from the start of
/// the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before the structure that starts at `offset` does.
    Truncated {
        /// Bytes the file should have.
        needed: usize,
        /// Bytes it has.
        got: usize,
    },
    /// The first four bytes are not `KSTL`.
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The file's format version is not one this build reads.
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The CRC32 of the payload does not match the header.
    BadChecksum {
        /// CRC stored in the header.
        expected: u32,
        /// CRC computed over the payload.
        computed: u32,
    },
    /// A header field is inconsistent (reserved bytes set, data section misplaced...).
    BadHeader {
        /// Byte offset of the bad field.
        offset: usize,
    },
    /// The buffer holds bytes after the end the header announces.
    TrailingBytes {
        /// Bytes the header announces.
        expected: usize,
        /// Bytes in the buffer.
        got: usize,
    },
    /// The model bytes do not start at a 16-byte aligned address; see the crate docs.
    Misaligned {
        /// Required alignment in bytes.
        align: usize,
        /// The address modulo `align`.
        address_mod: usize,
    },
    /// The metadata block could not be decoded (postcard), or it holds more layers or class
    /// names than [`crate::MAX_LAYERS`] / [`crate::MAX_CLASSES`].
    BadMetadata {
        /// Byte offset of the metadata block.
        offset: usize,
    },
    /// The model has no layers.
    NoLayers,
    /// A tensor reference points outside the data section or is misaligned for its type.
    TensorOutOfBounds {
        /// Layer index.
        layer: usize,
        /// Which tensor.
        field: Field,
        /// Start of the tensor, from the start of the data section.
        offset: usize,
        /// Its length in bytes.
        len: usize,
        /// Length of the data section.
        data_len: usize,
    },
    /// A tensor has the wrong element type for the model's precision.
    WrongDType {
        /// Layer index.
        layer: usize,
        /// Which tensor.
        field: Field,
    },
    /// A tensor or shape has a different number of elements than the layer needs.
    ShapeMismatch {
        /// Layer index.
        layer: usize,
        /// Which tensor or shape.
        field: Field,
        /// Elements (or, for shapes, `c*h*w`) the layer needs.
        expected: usize,
        /// Elements found.
        got: usize,
    },
    /// A layer's input shape is not the previous layer's output shape.
    ChainMismatch {
        /// Layer index.
        layer: usize,
        /// Previous output `[c, h, w]`.
        previous: [u32; 3],
        /// This input `[c, h, w]`.
        input: [u32; 3],
    },
    /// Zero-sized kernel, stride 0, padding not smaller than the kernel, or a window larger
    /// than the padded input.
    BadGeometry {
        /// Layer index.
        layer: usize,
    },
    /// A scale is zero, negative, infinite or NaN, or a zero point is outside int8.
    BadQuantParam {
        /// Layer index (`usize::MAX` for the model input).
        layer: usize,
        /// Which parameter.
        field: Field,
        /// Element index within the tensor.
        index: usize,
    },
    /// A requantization multiplier or shift is outside its documented range.
    RequantOutOfRange {
        /// Layer index.
        layer: usize,
        /// Multiplier or shift.
        field: Field,
        /// Output channel.
        channel: usize,
        /// The value found.
        value: i32,
    },
    /// Quantization parameters missing (int8 model) or present where they make no sense.
    QuantMismatch {
        /// Layer index (`usize::MAX` for the model input).
        layer: usize,
        /// Which parameter.
        field: Field,
    },
    /// A value is outside what the layer allows (a negative threshold, a non-finite
    /// weight, zero steps…).
    BadValue {
        /// Layer index.
        layer: usize,
        /// Which tensor or parameter.
        field: Field,
        /// Element index within the tensor (0 for a scalar).
        index: usize,
    },
    /// An op that may only end a model (a [`crate::Op::Dictionary`]) is not the last layer.
    NotLast {
        /// Layer index.
        layer: usize,
    },
    /// A size derived from the model's fields (e.g. a convolution's `c·kh·kw` taps) does
    /// not fit in `usize` on this target (32 bits on Cortex-M).
    SizeOverflow {
        /// Layer index (`usize::MAX` for the model input).
        layer: usize,
        /// The tensor or shape whose size overflows.
        field: Field,
    },
    /// An int8 layer's requantization or rescaling does not stand for the value the scales
    /// beside it give (`input scale · weight scale[c] / output scale` for a convolution or
    /// linear layer; see FORMAT.md for gains and LISTA), to 1 part in a million.
    RequantMismatch {
        /// Layer index.
        layer: usize,
        /// The multiplier's field: [`Field::Multiplier`] for convolution and linear
        /// layers and gains, [`Field::ListaInput`] / [`Field::ListaOutput`] for LISTA.
        field: Field,
        /// Output channel.
        channel: usize,
        /// The stored multiplier and shift.
        stored: (i32, i32),
        /// The multiplier and shift the scales give (`quant::quantize_multiplier`).
        expected: (i32, i32),
    },
    /// The class-name list is neither empty nor one name per output unit.
    ClassCount {
        /// Names in the file.
        classes: usize,
        /// Output units of the last layer.
        outputs: usize,
    },
    /// Two tensors share bytes of the data section (the format gives every tensor its own
    /// range; a mutated offset could otherwise make one layer's weights another's scales).
    TensorsOverlap {
        /// Layer index.
        layer: usize,
        /// Its tensor.
        field: Field,
        /// The earlier (or same) layer whose tensor it overlaps.
        other_layer: usize,
        /// That tensor.
        other_field: Field,
    },
    /// An LCN window does not sum to 1 (within 10⁻³); it is a weighted mean.
    WindowSum {
        /// Layer index.
        layer: usize,
        /// The sum found, in millionths (saturated; `i64::MIN` for NaN).
        sum_ppm: i64,
    },
    /// An encoding failure when writing (buffer too small or a value postcard can't encode).
    Encode,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match *self {
            Truncated { needed, got } => {
                write!(f, "model file truncated: needs {needed} bytes, got {got}")
            }
            BadMagic { found } => write!(
                f,
                "not a Kestrel model: magic bytes at offset 0 are {found:02x?}, expected \"KSTL\""
            ),
            UnsupportedVersion { found, supported } => write!(
                f,
                "model format version {found} is not supported (this build reads version {supported})"
            ),
            BadChecksum { expected, computed } => write!(
                f,
                "model payload is corrupt: CRC32 in header is {expected:#010x}, payload has {computed:#010x}"
            ),
            BadHeader { offset } => write!(f, "invalid model header field at byte offset {offset}"),
            TrailingBytes { expected, got } => write!(
                f,
                "model file has {got} bytes but its header describes {expected}"
            ),
            Misaligned { align, address_mod } => write!(
                f,
                "model bytes must start at a {align}-byte aligned address (address mod {align} = {address_mod}); \
                 embed with kestrel_format::include_model! (Aligned16) or copy into an AlignedBuf"
            ),
            BadMetadata { offset } => {
                write!(f, "model metadata at byte offset {offset} cannot be decoded")
            }
            NoLayers => write!(f, "model has no layers"),
            TensorOutOfBounds { layer, field, offset, len, data_len } => write!(
                f,
                "layer {layer}: {} tensor at data offset {offset} (+{len} bytes) lies outside the \
                 {data_len}-byte data section or is misaligned for its type",
                field.name()
            ),
            WrongDType { layer, field } => {
                write!(f, "layer {layer}: {} tensor has the wrong element type for this model", field.name())
            }
            ShapeMismatch { layer, field, expected, got } => write!(
                f,
                "layer {layer}: {} has {got} elements, expected {expected}",
                field.name()
            ),
            ChainMismatch { layer, previous, input } => write!(
                f,
                "layer {layer}: input shape {input:?} does not match the previous layer's output {previous:?}"
            ),
            BadGeometry { layer } => write!(
                f,
                "layer {layer}: invalid kernel size, stride or padding for its input"
            ),
            BadQuantParam { layer, field, index } => {
                if layer == usize::MAX {
                    write!(f, "model input: {} [{index}] is not a finite positive scale with an int8 zero point", field.name())
                } else {
                    write!(f, "layer {layer}: {} [{index}] is not finite and positive (or zero point outside int8)", field.name())
                }
            }
            RequantOutOfRange { layer, field, channel, value } => write!(
                f,
                "layer {layer}: {} {value} for channel {channel} is out of range \
                 (multiplier in [2^30, 2^31), shift in [-31, 30])",
                field.name()
            ),
            QuantMismatch { layer, field } => {
                if layer == usize::MAX {
                    write!(f, "model input: {} missing or unexpected for this precision", field.name())
                } else {
                    write!(f, "layer {layer}: {} missing or unexpected for this model's precision", field.name())
                }
            }
            BadValue { layer, field, index } => write!(
                f,
                "layer {layer}: {} [{index}] is outside its allowed range (non-finite, negative or zero)",
                field.name()
            ),
            NotLast { layer } => write!(
                f,
                "layer {layer}: a dictionary layer may only be the last layer of a model"
            ),
            SizeOverflow { layer, field } => {
                if layer == usize::MAX {
                    write!(f, "model input: the size of its {} overflows this target's usize", field.name())
                } else {
                    write!(f, "layer {layer}: the size of its {} overflows this target's usize", field.name())
                }
            }
            RequantMismatch { layer, field, channel, stored, expected } => write!(
                f,
                "layer {layer}: {} of channel {channel} (multiplier {}, shift {}) does not match \
                 the scales it is derived from (multiplier {}, shift {})",
                field.name(), stored.0, stored.1, expected.0, expected.1
            ),
            ClassCount { classes, outputs } => write!(
                f,
                "model has {classes} class names but its last layer has {outputs} outputs"
            ),
            TensorsOverlap { layer, field, other_layer, other_field } => write!(
                f,
                "layer {layer}: {} tensor overlaps layer {other_layer}'s {} tensor in the data section",
                field.name(),
                other_field.name()
            ),
            WindowSum { layer, sum_ppm } => write!(
                f,
                "layer {layer}: LCN window sums to {}{}.{:06}, not 1",
                if sum_ppm < 0 { "-" } else { "" },
                sum_ppm.unsigned_abs() / 1_000_000,
                sum_ppm.unsigned_abs() % 1_000_000
            ),
            Encode => write!(f, "model could not be encoded"),
        }
    }
}

impl core::error::Error for Error {}
