//! Embeds the bundle that `kestrel firmware run` wrote (or any directory laid out the same
//! way) and sizes the arena from the model, at build time.
//!
//! `KESTREL_FW_BUNDLE` names a directory with:
//! - `model.kmodel`: the model file;
//! - `inputs.bin`: `n` images of `c·h·w` raw pixels each, back to back;
//! - `expected.bin`: the host runtime's output for each image, back to back, as raw bytes
//!   (`i8` codes for int8 models, little-endian `f32` otherwise);
//! - optionally, for sparse-code encoder models (last layer `Dictionary`), `fista.bin`: a
//!   little-endian `u32` iteration count, then the host runtime's FISTA codes (that many
//!   iterations from zero, little-endian `f32`, one code vector per image) — the firmware
//!   runs the same FISTA on the device (feature `encoders`) and compares them byte for byte.
//!
//! The model is validated and planned here with the *host* build of `kestrel-format` and
//! `kestrel-runtime`, so a model the runtime cannot run fails the build, and the arena's
//! size is `Plan::arena_bytes_for(model, set)` for the kernel set the firmware's target
//! compiles (`KernelSet::for_target`, the runtime's own selection rule), not a guess. The
//! firmware plans again on the device and stops with an error if the two ever differ.
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kestrel_format::{AlignedBuf, Model, Precision};
use kestrel_runtime::{KernelSet, Plan};

const VAR: &str = "KESTREL_FW_BUNDLE";

fn main() -> ExitCode {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed={VAR}");
    match generate() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Cargo shows a failing build script's stderr.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let path = dir.join(name);
    println!("cargo::rerun-if-changed={}", path.display());
    fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn generate() -> Result<(), String> {
    let dir = env::var_os(VAR).map(PathBuf::from).ok_or_else(|| {
        format!(
            "{VAR} is not set: it names the directory with model.kmodel, inputs.bin and \
             expected.bin (`kestrel firmware run` writes one and sets it)"
        )
    })?;
    let out = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let model_bytes = read(&dir, "model.kmodel")?;
    let inputs = read(&dir, "inputs.bin")?;
    let expected = read(&dir, "expected.bin")?;

    let buf = AlignedBuf::new(&model_bytes);
    let model = Model::from_bytes(&buf).map_err(|e| format!("model.kmodel: {e}"))?;
    let var = |k: &str| env::var(k).unwrap_or_default();
    let set = KernelSet::for_target(
        &var("TARGET"),
        &var("CARGO_CFG_TARGET_ARCH"),
        &var("CARGO_CFG_TARGET_FEATURE"),
        &var("CARGO_ENCODED_RUSTFLAGS"),
    );
    let arena = Plan::arena_bytes_for(&model, set).map_err(|e| format!("model.kmodel: {e}"))?;
    let input_len = model.input_shape().len();
    let output_bytes = model.output_shape().len()
        * match model.precision() {
            Precision::Int8 => 1,
            Precision::F32 | Precision::F16 => 4,
        };
    if input_len == 0 || inputs.is_empty() || inputs.len() % input_len != 0 {
        return Err(format!(
            "inputs.bin has {} bytes, not a positive multiple of the model's input ({input_len})",
            inputs.len()
        ));
    }
    let images = inputs.len() / input_len;
    if expected.len() != images * output_bytes {
        return Err(format!(
            "expected.bin has {} bytes; {images} images of {output_bytes} output bytes need {}",
            expected.len(),
            images * output_bytes
        ));
    }

    let fista = fista(&dir, &model, images)?;
    for (name, bytes) in [
        ("model.kmodel", &model_bytes),
        ("inputs.bin", &inputs),
        ("expected.bin", &expected),
        ("fista.bin", &fista.expected),
    ] {
        let path = out.join(name);
        fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let path = |name: &str| format!("{:?}", out.join(name).display().to_string());
    let mut rs = String::new();
    let _ = write!(
        rs,
        "/// Arena bytes of the model's plan with the `{set}` kernels (sized on the host).\n\
         pub const ARENA_BYTES: usize = {arena};\n\
         /// Embedded test images.\n\
         pub const IMAGES: usize = {images};\n\
         /// Bytes of one input image (`c·h·w` pixels).\n\
         pub const INPUT_LEN: usize = {input_len};\n\
         /// Bytes of one output (i8 codes, or little-endian f32).\n\
         pub const OUTPUT_BYTES: usize = {output_bytes};\n\
         /// The model file, 16-byte aligned.\n\
         pub static MODEL: &[u8] = kestrel_format::include_model!({model});\n\
         /// `IMAGES` images of `INPUT_LEN` pixels.\n\
         pub static INPUTS: &[u8] = include_bytes!({inputs});\n\
         /// The host runtime's outputs, `OUTPUT_BYTES` per image.\n\
         pub static EXPECTED: &[u8] = include_bytes!({expected});\n\
         /// FISTA iterations to run per image on the device (0: no FISTA, not an encoder).\n\
         pub const FISTA_ITERATIONS: usize = {fista_iterations};\n\
         /// Atoms (code length) of the model's dictionary (0 without FISTA).\n\
         pub const FISTA_ATOMS: usize = {fista_atoms};\n\
         /// Length of the preprocessed input FISTA works on (0 without FISTA).\n\
         pub const FISTA_INPUT: usize = {fista_input};\n\
         /// f32 scratch elements FISTA needs (0 without FISTA).\n\
         pub const FISTA_SCRATCH: usize = {fista_scratch};\n\
         /// The host runtime's FISTA codes, `4·FISTA_ATOMS` bytes per image.\n\
         pub static FISTA_EXPECTED: &[u8] = include_bytes!({fista_expected});\n",
        fista_iterations = fista.iterations,
        fista_atoms = fista.atoms,
        fista_input = fista.input,
        fista_scratch = fista.scratch,
        fista_expected = path("fista.bin"),
        arena = arena,
        set = set.name(),
        model = path("model.kmodel"),
        inputs = path("inputs.bin"),
        expected = path("expected.bin"),
    );
    let file = out.join("bundle.rs");
    fs::write(&file, rs).map_err(|e| format!("{}: {e}", file.display()))
}

/// The optional FISTA part of the bundle.
struct Fista {
    iterations: usize,
    atoms: usize,
    input: usize,
    scratch: usize,
    /// The expected codes (without the iteration count).
    expected: Vec<u8>,
}

/// Reads `fista.bin` if the bundle has one and sizes FISTA's buffers from the model.
fn fista(dir: &Path, model: &Model<'_>, images: usize) -> Result<Fista, String> {
    let path = dir.join("fista.bin");
    println!("cargo::rerun-if-changed={}", path.display());
    if !path.exists() {
        return Ok(Fista {
            iterations: 0,
            atoms: 0,
            input: 0,
            scratch: 0,
            expected: Vec::new(),
        });
    }
    let bytes = read(dir, "fista.bin")?;
    let problem = kestrel_runtime::sparse::Problem::new(model)
        .map_err(|e| format!("fista.bin is present but the model has no FISTA problem: {e}"))?;
    let atoms = problem.atoms();
    let want = 4 + images * atoms * 4;
    if bytes.len() != want {
        return Err(format!(
            "fista.bin has {} bytes; a count and {images} codes of {atoms} f32 need {want}",
            bytes.len()
        ));
    }
    Ok(Fista {
        iterations: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize,
        atoms,
        input: problem.input_len(),
        scratch: problem.scratch_len(),
        expected: bytes[4..].to_vec(),
    })
}
