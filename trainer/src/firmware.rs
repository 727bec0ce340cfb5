//! `kestrel firmware run`: builds the Cortex-M test firmware around a model and the first
//! `n` test images, runs it under `qemu-system-arm -icount shift=0`, and reports whether every
//! output byte equals the host runtime's, executed instructions (whole model and per layer),
//! instructions per MAC, and the firmware's footprint.
//!
//! Steps: the host runtime (the `kestrel-runtime` this binary links) runs the images and its
//! raw outputs become the expected bytes; model, images and outputs are written as a bundle
//! under the build directory (only files whose content changed, so cargo's rebuild is
//! incremental); `examples/firmware-cortex-<m4|m55>` is cargo-built in release with
//! `KESTREL_FW_BUNDLE` pointing at the bundle (its build.rs embeds it and sizes the arena)
//! and only the model's precision feature (`f32` or `int8`), so the image links no other
//! precision's kernels;
//! QEMU runs the ELF; its semihosting output (format in `examples/firmware-common/src/lib.rs`)
//! is parsed; the ELF's symbols give `.text` per crate.
//!
//! **Instruction counts.** Under `-icount shift=0` one guest instruction is 1 ns of virtual
//! time; the firmware reads SysTick (processor clock: 25 MHz on `mps2-an386`, 32 MHz on
//! `mps3-an547`, so 40 and 31.25 instructions per tick) and re-checks that scaling on every
//! run with a loop of known length. A count is exact to about one tick plus the ~40
//! instructions of a clock reading (a `flatten` layer, which does nothing, reads as one tick).
//! MVE instructions count as one each, whatever their beats.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kestrel_format::{Model, Precision};
use kestrel_runtime::{Input, Output, Plan};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
use serde::Serialize;

use crate::checkpoint::write_atomic;
use crate::data;
use crate::error::{Error, Result};
use crate::eval::{precision_name, read_model};
use crate::inspect;
use crate::train::argmax;

/// The boards the firmware runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Cortex-M4F on QEMU's `mps2-an386` (`thumbv7em-none-eabihf`, DSP).
    M4,
    /// Cortex-M55 on QEMU's `mps3-an547` (`thumbv8m.main-none-eabihf`, Helium).
    M55,
}

impl Target {
    /// `m4` or `m55`.
    pub fn name(self) -> &'static str {
        match self {
            Target::M4 => "m4",
            Target::M55 => "m55",
        }
    }

    /// The firmware crate's folder under the examples directory.
    pub fn crate_dir(self) -> &'static str {
        match self {
            Target::M4 => "firmware-cortex-m4",
            Target::M55 => "firmware-cortex-m55",
        }
    }

    /// QEMU `-machine`.
    pub fn machine(self) -> &'static str {
        match self {
            Target::M4 => "mps2-an386",
            Target::M55 => "mps3-an547",
        }
    }

    /// QEMU `-cpu`.
    pub fn cpu(self) -> &'static str {
        match self {
            Target::M4 => "cortex-m4",
            Target::M55 => "cortex-m55",
        }
    }

    /// Rust target triple (also set in the crate's `.cargo/config.toml`).
    pub fn triple(self) -> &'static str {
        match self {
            Target::M4 => "thumbv7em-none-eabihf",
            Target::M55 => "thumbv8m.main-none-eabihf",
        }
    }
}

/// What to build and run.
#[derive(Debug, Clone)]
pub struct FirmwareOptions {
    /// Board.
    pub target: Target,
    /// Model file.
    pub model: PathBuf,
    /// MNIST-format directory or image folder; `n` of its test images are embedded (the
    /// first, or spread over an image folder's classes).
    pub data: PathBuf,
    /// Images to embed and run.
    pub n: usize,
    /// Folder holding `firmware-common` and the board crates.
    pub examples_dir: PathBuf,
    /// Cargo target directory for firmware builds (kept between runs: rebuilds are
    /// incremental); the bundles are written under it too. Runs in one process take turns;
    /// concurrent processes need different directories.
    pub build_dir: PathBuf,
    /// Wall-clock limit for QEMU.
    pub timeout: Duration,
}

impl FirmwareOptions {
    /// Options with this checkout's examples folder and `target/firmware` as build dir.
    pub fn new(target: Target, model: PathBuf, data: PathBuf, n: usize) -> Self {
        FirmwareOptions {
            target,
            model,
            data,
            n,
            examples_dir: default_examples_dir(),
            build_dir: default_build_dir(),
            timeout: Duration::from_secs(300),
        }
    }
}

/// The checkout's `examples/` (where this crate was compiled from).
pub fn default_examples_dir() -> PathBuf {
    workspace_root().join("examples")
}

/// The checkout's `target/firmware/`.
pub fn default_build_dir() -> PathBuf {
    workspace_root().join("target").join("firmware")
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// One layer's measured cost on the device.
#[derive(Debug, Clone, Serialize)]
pub struct LayerCost {
    /// Position in the model.
    pub index: usize,
    /// Operation (`conv2d`, `maxpool2d`, …).
    pub op: &'static str,
    /// Input `[c, h, w]`.
    pub input: [u32; 3],
    /// Output `[c, h, w]`.
    pub output: [u32; 3],
    /// Multiply-accumulates per inference (0 for ops without any).
    pub macs: u64,
    /// Executed instructions per inference, mean over the images.
    pub instructions: u64,
    /// `instructions / macs`, or `None` for layers without MACs.
    pub instructions_per_mac: Option<f64>,
}

/// What `kestrel firmware run` reports (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct FirmwareReport {
    /// `m4` or `m55`.
    pub target: Target,
    /// QEMU machine.
    pub machine: &'static str,
    /// QEMU CPU.
    pub cpu: &'static str,
    /// Kernel set compiled into the firmware's runtime (`kestrel_runtime::IMPL` there).
    pub kernels: String,
    /// Model precision.
    pub precision: &'static str,
    /// Images run.
    pub images: usize,
    /// The firmware's predicted class per image.
    pub predictions: Vec<usize>,
    /// The host runtime's predicted class per image.
    pub host_predictions: Vec<usize>,
    /// The dataset's labels.
    pub labels: Vec<u8>,
    /// Every output byte of every image equals the host runtime's.
    pub outputs_match_host: bool,
    /// Output bytes that differ, over all images.
    pub mismatched_bytes: usize,
    /// Executed instructions per inference (input quantization and every layer), mean over
    /// the images.
    pub instructions: u64,
    /// Executed instructions of each image's inference.
    pub instructions_per_image: Vec<u64>,
    /// Of `instructions`: quantizing the input pixels, mean over the images.
    pub input_instructions: u64,
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// `instructions / macs`.
    pub instructions_per_mac: f64,
    /// Per layer.
    pub layers: Vec<LayerCost>,
    /// Size of the firmware's `.text` section.
    pub text_bytes: u64,
    /// Of `text_bytes`: functions of `kestrel_runtime` and `kestrel_format`.
    pub runtime_text_bytes: u64,
    /// Of `text_bytes`: function bytes by crate (the demangled path's first segment, or the
    /// `Self` type's for trait impls); `(unmangled)` is C-ABI code such as `memcpy` and the
    /// exception handlers.
    pub text_by_crate: BTreeMap<String, u64>,
    /// Size of the firmware's `.rodata` (the model is most of it).
    pub rodata_bytes: u64,
    /// Arena bytes of the device's plan.
    pub arena_bytes: usize,
    /// Arena bytes build.rs reserved (the host plan's).
    pub arena_static_bytes: usize,
    /// Model file bytes.
    pub model_bytes: usize,
    /// SysTick frequency the firmware converted ticks with.
    pub tick_hz: u64,
    /// Encoder models: the encoder against on-device FISTA to the same energy.
    pub sparse: Option<SparseReport>,
    /// The firmware ELF.
    pub elf: PathBuf,
}

/// An encoder model's run against on-device FISTA (`kestrel firmware run` on a model whose
/// last layer is `Dictionary`).
#[derive(Debug, Clone, Serialize)]
pub struct SparseReport {
    /// FISTA iterations (from zero, the same for every patch) whose mean energy on the
    /// embedded patches reaches the encoder's, found by the host runtime
    /// ([`crate::encode::fista_to_match`]).
    pub fista_iterations: usize,
    /// Executed instructions of the encoder per patch (= the report's `instructions`).
    pub encoder_instructions: u64,
    /// Executed instructions of FISTA per patch (preprocessing and `Dᵀx/L` included), mean.
    pub fista_instructions: u64,
    /// `fista_instructions / encoder_instructions`.
    pub speedup: f64,
    /// Every patch's FISTA codes equal the host runtime's byte for byte.
    pub fista_match: bool,
}

/// Whether `model` is a sparse-code encoder (its last layer is `Dictionary`).
pub fn is_encoder(model: &Model<'_>) -> bool {
    matches!(
        model.layers().last().map(|l| &l.kind),
        Some(kestrel_format::LayerKind::Dictionary { .. })
    )
}

impl FirmwareReport {
    /// A human-readable summary with the per-layer table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} on {} ({}), {} kernels, {} model: {} images, outputs {} the host runtime's",
            self.target.name(),
            self.machine,
            self.cpu,
            self.kernels,
            self.precision,
            self.images,
            if self.outputs_match_host {
                "match"
            } else {
                "DO NOT match"
            }
        );
        let _ = writeln!(
            s,
            "predictions {:?} (host {:?}, labels {:?})",
            self.predictions, self.host_predictions, self.labels
        );
        let _ = writeln!(
            s,
            "{:>3}  {:<10} {:>12} {:>12} {:>10}",
            "#", "op", "MACs", "instructions", "instr/MAC"
        );
        let _ = writeln!(
            s,
            "{:>3}  {:<10} {:>12} {:>12} {:>10}",
            "-", "input", "", self.input_instructions, ""
        );
        for l in &self.layers {
            let per_mac = l
                .instructions_per_mac
                .map_or(String::new(), |r| format!("{r:.2}"));
            let _ = writeln!(
                s,
                "{:>3}  {:<10} {:>12} {:>12} {:>10}",
                l.index, l.op, l.macs, l.instructions, per_mac
            );
        }
        let _ = writeln!(
            s,
            "total: {} instructions, {} MACs, {:.2} instructions/MAC",
            self.instructions, self.macs, self.instructions_per_mac
        );
        if let Some(sp) = &self.sparse {
            let _ = writeln!(
                s,
                "encoder {} instructions/patch; on-device FISTA to the same energy: {} iterations, \
                 {} instructions/patch (codes {} the host's) -> speedup {:.1}x",
                sp.encoder_instructions,
                sp.fista_iterations,
                sp.fista_instructions,
                if sp.fista_match { "match" } else { "DO NOT match" },
                sp.speedup
            );
        }
        let _ = writeln!(
            s,
            ".text {} bytes (runtime + format {}), .rodata {} bytes, arena {} bytes, model {} bytes",
            self.text_bytes,
            self.runtime_text_bytes,
            self.rodata_bytes,
            self.arena_bytes,
            self.model_bytes
        );
        s
    }
}

/// Builds and runs the firmware; see the module docs.
///
/// A run whose outputs differ from the host's is a report with `outputs_match_host ==
/// false`, not an error; errors are a missing tool, a failed build, a firmware that stops
/// with an error or a fault, or a timeout.
pub fn run(opts: &FirmwareOptions) -> Result<FirmwareReport> {
    let buf = read_model(&opts.model)?;
    let model = Model::from_bytes(&buf).map_err(|e| Error::Model {
        path: opts.model.clone(),
        source: e,
    })?;
    let info = inspect::inspect(&model)?;
    let encoder = is_encoder(&model);
    // Encoder models run on held-out patches of `data`, convnets on its first test images.
    let (set, labels) = if encoder {
        if opts.n == 0 {
            return Err(Error::Other("--n must be at least 1".into()));
        }
        let patches = crate::encode::held_out_patches(&model, &opts.data, opts.n)?;
        let k = model.input_shape().h as usize;
        let set = data::Images {
            n: patches.len(),
            rows: k,
            cols: k,
            pixels: patches.concat(),
            labels: Vec::new(),
        };
        (set, Vec::new())
    } else {
        let loaded = crate::eval::test_set(&model, &opts.data, false)?;
        if opts.n == 0 || opts.n > loaded.images.n {
            return Err(Error::Other(format!(
                "--n must be between 1 and {} (the test images in {})",
                loaded.images.n,
                opts.data.display()
            )));
        }
        let set = loaded.limit(opts.n).images;
        let labels = set.labels.clone();
        (set, labels)
    };
    let (inputs, expected, host_predictions) = host_outputs(&model, &set)?;

    // Runs in this process share a bundle and an ELF per board: one at a time. (Separate
    // processes need separate build directories.)
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let bundle = opts
        .build_dir
        .join(format!("bundle-{}", opts.target.name()));
    write_if_changed(&bundle.join("model.kmodel"), &buf)?;
    write_if_changed(&bundle.join("inputs.bin"), &inputs)?;
    write_if_changed(&bundle.join("expected.bin"), &expected)?;
    let fista_path = bundle.join("fista.bin");
    let fista_iterations = if encoder {
        let patches: Vec<Vec<u8>> = (0..set.n).map(|i| set.image(i).to_vec()).collect();
        let (iterations, codes) = crate::encode::fista_to_match(&model, &patches)?;
        let mut bytes = (iterations as u32).to_le_bytes().to_vec();
        bytes.extend(codes.iter().flatten().flat_map(|v| v.to_le_bytes()));
        write_if_changed(&fista_path, &bytes)?;
        Some(iterations)
    } else {
        if fista_path.exists() {
            std::fs::remove_file(&fista_path).map_err(|e| Error::io(&fista_path, e))?;
        }
        None
    };

    let elf = build(opts, &bundle, model.precision(), encoder)?;
    let out = run_qemu(opts, &elf)?;
    let device = parse_output(&out, model.layers().len())?;
    let text = text_sizes(&elf)?;

    let n = device.images.len().max(1) as u64;
    let mean = |sum: u64| (sum + n / 2) / n;
    let instructions_per_image: Vec<u64> = device.images.iter().map(|i| i.instructions).collect();
    let instructions = mean(instructions_per_image.iter().sum());
    let layers = info
        .layers
        .iter()
        .map(|row| {
            let sum = device.images.iter().map(|i| i.layers[row.index]).sum();
            let instructions = mean(sum);
            LayerCost {
                index: row.index,
                op: row.op,
                input: row.input,
                output: row.output,
                macs: row.macs,
                instructions,
                instructions_per_mac: (row.macs > 0).then(|| instructions as f64 / row.macs as f64),
            }
        })
        .collect();
    let predictions: Vec<usize> = device.images.iter().map(|i| i.prediction).collect();
    let mismatched_bytes = device.images.iter().map(|i| i.mismatched_bytes).sum();
    let sparse = fista_iterations.map(|iterations| {
        let fista_instructions = mean(device.fista.iter().map(|f| f.instructions).sum());
        SparseReport {
            fista_iterations: iterations,
            encoder_instructions: instructions,
            fista_instructions,
            speedup: fista_instructions as f64 / instructions.max(1) as f64,
            fista_match: device.fista.len() == set.n
                && device
                    .fista
                    .iter()
                    .all(|f| f.matched && f.iterations == iterations),
        }
    });
    let outputs_match_host = device.status_ok
        && device.images.len() == set.n
        && sparse.as_ref().is_none_or(|s| s.fista_match)
        && mismatched_bytes == 0
        && device.images.iter().all(|i| i.matched)
        && predictions == host_predictions;
    Ok(FirmwareReport {
        target: opts.target,
        machine: opts.target.machine(),
        cpu: opts.target.cpu(),
        kernels: device.kernels,
        precision: precision_name(model.precision()),
        images: device.images.len(),
        predictions,
        host_predictions,
        labels,
        outputs_match_host,
        mismatched_bytes,
        instructions,
        instructions_per_image,
        input_instructions: mean(device.images.iter().map(|i| i.input).sum()),
        macs: info.macs,
        instructions_per_mac: instructions as f64 / info.macs.max(1) as f64,
        layers,
        text_bytes: text.text,
        runtime_text_bytes: ["kestrel_runtime", "kestrel_format"]
            .iter()
            .filter_map(|c| text.by_crate.get(*c))
            .sum(),
        text_by_crate: text.by_crate,
        rodata_bytes: text.rodata,
        arena_bytes: device.arena_bytes,
        arena_static_bytes: device.arena_static,
        model_bytes: model.file_len(),
        tick_hz: device.tick_hz,
        sparse,
        elf,
    })
}

/// The images as raw pixels, the host runtime's raw output bytes (i8 codes, or
/// little-endian f32), and its predictions.
fn host_outputs(model: &Model<'_>, set: &data::Images) -> Result<(Vec<u8>, Vec<u8>, Vec<usize>)> {
    let plan = Plan::new(model).map_err(Error::Runtime)?;
    crate::eval::check_input(model, set)?;
    let mut arena = vec![0u128; plan.arena_bytes().div_ceil(16)];
    let arena: &mut [u8] = bytemuck::cast_slice_mut(&mut arena);
    let (mut inputs, mut expected, mut predictions) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..set.n {
        let image = set.image(i);
        inputs.extend_from_slice(image);
        let values: Vec<f32> = match plan
            .run(arena, Input::Pixels(image))
            .map_err(Error::Runtime)?
        {
            Output::I8(q) => {
                expected.extend(q.iter().map(|&v| v.to_le_bytes()[0]));
                q.iter().map(|&v| f32::from(v)).collect()
            }
            Output::F32(y) => {
                expected.extend(y.iter().flat_map(|v| v.to_le_bytes()));
                y.to_vec()
            }
        };
        predictions.push(argmax(&values));
    }
    Ok((inputs, expected, predictions))
}

/// Writes `bytes` atomically unless the file already holds them (an unchanged bundle keeps
/// its timestamps, so cargo does not rebuild).
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    write_atomic(path, bytes)
}

/// `cargo build --release` of the board crate with only `precision`'s runtime feature (so
/// the image links no other precision's kernels); returns the ELF's path.
fn build(
    opts: &FirmwareOptions,
    bundle: &Path,
    precision: Precision,
    encoder: bool,
) -> Result<PathBuf> {
    let crate_dir = opts.examples_dir.join(opts.target.crate_dir());
    if !crate_dir.join("Cargo.toml").is_file() {
        return Err(Error::Other(format!(
            "no firmware crate at {} (pass --firmware-dir with the folder holding {})",
            crate_dir.display(),
            opts.target.crate_dir()
        )));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // The crate's .cargo/config.toml (found from the working directory) sets the target and
    // its flags; flags and targets inherited from an outer cargo would override them.
    let spin =
        crate::progress::spinner(format!("building the {} firmware", opts.target.crate_dir()));
    let out = Command::new(&cargo)
        .current_dir(&crate_dir)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
            "--no-default-features",
            "--features",
        ])
        // Encoders add their kernels and on-device FISTA (f32, whatever the precision).
        .arg(if encoder {
            format!("{},f32,encoders", runtime_feature(precision))
        } else {
            runtime_feature(precision).to_string()
        })
        .arg("--target-dir")
        .arg(&opts.build_dir)
        .env("KESTREL_FW_BUNDLE", bundle)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .output();
    spin.finish_and_clear();
    let out = out.map_err(|e| match e.kind() {
        ErrorKind::NotFound => Error::ToolMissing {
            tool: "cargo".into(),
            install: "install Rust with rustup".into(),
        },
        _ => Error::io(PathBuf::from(&cargo), e),
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        let triple = opts.target.triple();
        let hint = if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            format!(
                " (the Rust target is missing: `rustup target add {triple}`; \
                 scripts/install-deps.sh does)"
            )
        } else {
            String::new()
        };
        return Err(Error::FirmwareBuild {
            crate_dir,
            hint,
            stderr,
        });
    }
    // The last artifact with an executable is the board crate's binary.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact")
        .filter_map(|v| v["executable"].as_str().map(PathBuf::from))
        .next_back()
        .ok_or(Error::FirmwareBuild {
            crate_dir,
            hint: String::new(),
            stderr: format!("{stderr}\ncargo reported no executable"),
        })
}

/// The kestrel-runtime cargo feature (forwarded by the board crates) with `precision`'s
/// kernels.
fn runtime_feature(precision: Precision) -> &'static str {
    match precision {
        Precision::F32 | Precision::F16 => "f32",
        Precision::Int8 => "int8",
    }
}

/// Runs the ELF under QEMU and returns its semihosting output (stdout) and exit status.
fn run_qemu(opts: &FirmwareOptions, elf: &Path) -> Result<QemuRun> {
    const QEMU: &str = "qemu-system-arm";
    let mut child = Command::new(QEMU)
        .args(["-machine", opts.target.machine(), "-cpu", opts.target.cpu()])
        .args(["-nographic", "-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .args(["-icount", "shift=0"])
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::ToolMissing {
                tool: QEMU.into(),
                install: "apt-get install qemu-system-arm (scripts/install-deps.sh does)".into(),
            },
            _ => Error::io(QEMU, e),
        })?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let stdout = child.stdout.take().map(|r| drain(Box::new(r)));
    let stderr = child.stderr.take().map(|r| drain(Box::new(r)));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| Error::io(QEMU, e))? {
            break Some(status);
        }
        if start.elapsed() > opts.timeout {
            // Killing can only fail if it already exited, which the next wait reports.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let join = |h: Option<std::thread::JoinHandle<String>>| {
        h.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let (stdout, stderr) = (join(stdout), join(stderr));
    match status {
        None => Err(Error::Firmware {
            message: format!("QEMU timed out after {} s", opts.timeout.as_secs()),
            output: stdout + &stderr,
        }),
        Some(status) => Ok(QemuRun {
            stdout,
            stderr,
            code: status.code(),
        }),
    }
}

struct QemuRun {
    stdout: String,
    stderr: String,
    code: Option<i32>,
}

/// One `image` line.
#[derive(Debug, Clone, PartialEq)]
struct ImageLine {
    prediction: usize,
    matched: bool,
    mismatched_bytes: usize,
    instructions: u64,
    input: u64,
    layers: Vec<u64>,
}

/// One `fista` line.
#[derive(Debug, Clone, PartialEq)]
struct FistaLine {
    matched: bool,
    iterations: usize,
    instructions: u64,
}

/// Everything the firmware printed.
#[derive(Debug, Clone, PartialEq)]
struct DeviceRun {
    kernels: String,
    arena_bytes: usize,
    arena_static: usize,
    tick_hz: u64,
    images: Vec<ImageLine>,
    fista: Vec<FistaLine>,
    /// Exit status 0 and a `done` line.
    status_ok: bool,
}

/// `word key=value key=value …` → the keys' values.
fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|t| t.split_once('='))
        .collect()
}

fn parse_output(run: &QemuRun, layers: usize) -> Result<DeviceRun> {
    let fail = |message: String| Error::Firmware {
        message,
        output: format!("{}{}", run.stdout, run.stderr),
    };
    let num = |f: &BTreeMap<&str, &str>, key: &str| -> Result<u64> {
        f.get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| fail(format!("firmware output lacks a numeric `{key}`")))
    };
    let mut dev = DeviceRun {
        kernels: String::new(),
        arena_bytes: 0,
        arena_static: 0,
        tick_hz: 0,
        images: Vec::new(),
        fista: Vec::new(),
        status_ok: false,
    };
    let mut done = false;
    for line in run.stdout.lines() {
        let word = line.split_whitespace().next().unwrap_or("");
        let f = fields(line);
        match word {
            "kestrel-firmware" => {
                dev.kernels = f.get("impl").unwrap_or(&"?").to_string();
                dev.arena_bytes = num(&f, "arena_bytes")? as usize;
                dev.arena_static = num(&f, "arena_static")? as usize;
            }
            "calibration" => dev.tick_hz = num(&f, "tick_hz")?,
            "image" => {
                let per_layer: Option<Vec<u64>> = f
                    .get("layers")
                    .map(|v| v.split(',').map(str::parse).collect::<Result<_, _>>().ok())
                    .unwrap_or_default();
                let per_layer = per_layer
                    .filter(|l| l.len() == layers)
                    .ok_or_else(|| fail(format!("an image line without {layers} layer counts")))?;
                dev.images.push(ImageLine {
                    prediction: num(&f, "prediction")? as usize,
                    matched: num(&f, "match")? == 1,
                    mismatched_bytes: num(&f, "mismatched_bytes")? as usize,
                    instructions: num(&f, "instructions")?,
                    input: num(&f, "input")?,
                    layers: per_layer,
                });
            }
            "fista" => dev.fista.push(FistaLine {
                matched: num(&f, "match")? == 1,
                iterations: num(&f, "iterations")? as usize,
                instructions: num(&f, "instructions")?,
            }),
            "done" => done = true,
            "error" | "panic" | "hardfault" => return Err(fail(format!("firmware: {line}"))),
            _ => {}
        }
    }
    if !done {
        return Err(fail(format!(
            "firmware stopped (exit status {:?}) before finishing",
            run.code
        )));
    }
    dev.status_ok = run.code == Some(0);
    Ok(dev)
}

/// `.text` and `.rodata` sizes and `.text` function bytes per crate.
struct TextSizes {
    text: u64,
    rodata: u64,
    by_crate: BTreeMap<String, u64>,
}

fn text_sizes(elf: &Path) -> Result<TextSizes> {
    let bytes = std::fs::read(elf).map_err(|e| Error::io(elf, e))?;
    let bad = |e: object::Error| Error::Other(format!("{}: {e}", elf.display()));
    let file = object::File::parse(&*bytes).map_err(bad)?;
    let text = file
        .section_by_name(".text")
        .ok_or_else(|| Error::Other(format!("{}: no .text section", elf.display())))?;
    let rodata = file.section_by_name(".rodata").map_or(0, |s| s.size());
    // Thumb function addresses carry bit 0; aliases (folded functions) count once.
    let mut functions = BTreeMap::new();
    for sym in file.symbols() {
        if sym.kind() == SymbolKind::Text
            && sym.size() > 0
            && sym.section_index() == Some(text.index())
        {
            if let Ok(name) = sym.name() {
                functions
                    .entry(sym.address() & !1)
                    .or_insert((sym.size(), name));
            }
        }
    }
    let mut by_crate = BTreeMap::new();
    for (size, name) in functions.values() {
        *by_crate.entry(crate_of(name)).or_insert(0) += size;
    }
    Ok(TextSizes {
        text: text.size(),
        rodata,
        by_crate,
    })
}

/// The crate a (mangled) symbol belongs to: the first segment of the demangled path, of
/// the `Self` type's path for `<T as Trait>::f`, or of the trait's when `T` is a primitive
/// or a generic parameter (`<u32 as core::fmt::Display>::fmt` is `core`'s).
fn crate_of(mangled: &str) -> String {
    let demangled = format!("{:#}", rustc_demangle::demangle(mangled));
    if demangled == mangled {
        return "(unmangled)".into();
    }
    let first_path = |s: &str| -> Option<String> {
        let mut s = s.trim_start_matches(['<', '&', '[', '(', '*']);
        for prefix in ["mut ", "const ", "dyn "] {
            s = s.strip_prefix(prefix).unwrap_or(s);
        }
        let path = s.split([' ', '<', '>', ';', ',', ']', ')']).next()?;
        path.split_once("::")
            .map(|(k, _)| k.to_string())
            .filter(|k| !k.is_empty())
    };
    first_path(&demangled)
        .or_else(|| {
            let (_, tr) = demangled.split_once(" as ")?;
            first_path(tr)
        })
        .unwrap_or_else(|| "(unmangled)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
kestrel-firmware board=mps2-an386/cortex-m4 impl=dsp images=2 layers=3 arena_bytes=5888 arena_static=5888 model_bytes=65816
calibration instructions=2000000 ticks=50000 tick_hz=25000000 measured=2000000 ok=1
image 0 prediction=9 match=1 mismatched_bytes=0 instructions=1000 input=100 layers=500,40,360
image 1 prediction=2 match=0 mismatched_bytes=3 instructions=1040 input=100 layers=520,40,380
done matched=1/2
";

    fn qemu(stdout: &str, code: i32) -> QemuRun {
        QemuRun {
            stdout: stdout.into(),
            stderr: String::new(),
            code: Some(code),
        }
    }

    #[test]
    fn parses_the_firmware_output() {
        let dev = parse_output(&qemu(OUTPUT, 1), 3).unwrap();
        assert_eq!(dev.kernels, "dsp");
        assert_eq!(
            (dev.arena_bytes, dev.arena_static, dev.tick_hz),
            (5888, 5888, 25_000_000)
        );
        assert!(!dev.status_ok);
        assert_eq!(dev.images.len(), 2);
        assert_eq!(
            dev.images[1],
            ImageLine {
                prediction: 2,
                matched: false,
                mismatched_bytes: 3,
                instructions: 1040,
                input: 100,
                layers: vec![520, 40, 380],
            }
        );
    }

    #[test]
    fn rejects_incomplete_or_failed_runs() {
        // Wrong layer count, a missing `done`, and the firmware's own error lines.
        assert!(parse_output(&qemu(OUTPUT, 0), 4).is_err());
        let cut = OUTPUT.replace("done matched=1/2\n", "");
        assert!(parse_output(&qemu(&cut, 1), 3).is_err());
        let err = format!("{OUTPUT}error runtime: arena too small\n");
        assert!(parse_output(&qemu(&err, 1), 3).is_err());
        assert!(parse_output(&qemu("hardfault pc=0x00000400 lr=0x0\n", 1), 3).is_err());
    }

    #[test]
    fn attributes_symbols_to_crates() {
        for (mangled, krate) in [
            ("_ZN15kestrel_runtime4plan4Plan3run17h0123456789abcdefE", "kestrel_runtime"),
            (
                "_ZN67_$LT$kestrel_format..error..Error$u20$as$u20$core..fmt..Display$GT$3fmt17h0123456789abcdefE",
                "kestrel_format",
            ),
            ("_ZN4core3fmt5write17h0123456789abcdefE", "core"),
            ("_ZN42_$LT$$RF$T$u20$as$u20$core..fmt..Debug$GT$3fmt17h3d8d4a077e2ef516E", "core"),
            ("_ZN42_$LT$u32$u20$as$u20$core..fmt..Display$GT$3fmt17h0123456789abcdefE", "core"),
            ("__aeabi_memcpy", "(unmangled)"),
            ("main", "(unmangled)"),
        ] {
            assert_eq!(crate_of(mangled), krate, "{mangled}");
        }
    }
}
