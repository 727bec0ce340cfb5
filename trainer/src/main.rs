//! `kestrel`: a thin command line over the `kestrel_trainer` library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kestrel_format::Model;
use kestrel_trainer::config::Arch;
use kestrel_trainer::data::{self, DEFAULT_DATA_DIR};
use kestrel_trainer::export::Quant;
use kestrel_trainer::psd::EncoderKind;
use kestrel_trainer::train::TrainOptions;
use kestrel_trainer::{
    checkpoint, encode, eval, export, export_encoder, export_onnx, firmware, gradcheck, inspect,
    psd, report, train, visualize, Error, Result,
};

#[derive(Parser)]
#[command(
    name = "kestrel",
    version,
    about = "Train convnets, export them quantized, run them on the no_std runtime"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train an architecture on an MNIST-format dataset or an image folder.
    Train {
        /// Built-in name (lenet, lenet5, jarrett) or a TOML file.
        #[arg(long)]
        arch: String,
        /// MNIST-format directory or image folder (DIR/train/<class>/*.png|jpg and
        /// DIR/test/<class>/…; grayscale by BT.601 luma, resized bilinearly to the input).
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Leave out unreadable or corrupt images of an image folder, with a warning
        /// counting them, instead of stopping at the first.
        #[arg(long)]
        skip_bad_images: bool,
        /// Epochs (default: the arch's [train] table).
        #[arg(long)]
        epochs: Option<usize>,
        /// Checkpoint to write (after every epoch, atomically).
        #[arg(long)]
        out: PathBuf,
        /// Mini-batch size.
        #[arg(long)]
        batch: Option<usize>,
        /// Initial learning rate.
        #[arg(long)]
        lr: Option<f32>,
        /// Random seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Random left-right flips: only for mirror-symmetric classes (Fashion-MNIST, not
        /// digits or text). Off unless given (`--flip` or `--flip true`).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        flip: Option<bool>,
        /// Input jitter in pixels.
        #[arg(long)]
        jitter: Option<usize>,
        /// Gaussian input noise (normalized units).
        #[arg(long)]
        noise: Option<f32>,
        /// Training images held out for validation (default: 10%, at most 5,000; 0: none).
        #[arg(long)]
        validation: Option<usize>,
        /// Use only N training images (the first; spread over the classes of an image folder).
        #[arg(long)]
        limit: Option<usize>,
        /// Resume from a checkpoint.
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Initialize the first convolution from a convolutional PSD checkpoint
        /// (`kestrel psd train --conv`), then train as usual.
        #[arg(long)]
        init_from: Option<PathBuf>,
        /// Factor on the --init-from filters and bias, or `std` to rescale them to the
        /// random init's standard deviation.
        #[arg(long, default_value = "1")]
        init_scale: String,
        /// auto, cpu or cuda[:N] (auto: CUDA device 0 when there is one, else the CPU).
        #[arg(long, default_value = "auto")]
        device: String,
        /// Let cuBLAS use TF32 tensor cores for float GEMMs (CUDA only; faster, ~10-bit
        /// mantissa products, results no longer match the CPU backend's tolerances).
        #[arg(long)]
        tf32: bool,
        /// Threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Export a checkpoint as a Kestrel model file (or the float network as ONNX).
    Export {
        /// Checkpoint from `kestrel train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// File format: a Kestrel model file, or ONNX (float, normalized input).
        #[arg(long, value_enum, default_value = "kestrel")]
        format: Format,
        /// Precision (required for `--format kestrel`; ONNX is always f32).
        #[arg(long, value_enum)]
        quant: Option<Quant>,
        /// Model file to write.
        #[arg(long)]
        out: PathBuf,
        /// MNIST-format directory or image folder whose training images calibrate int8
        /// (default: the checkpoint's training data).
        #[arg(long)]
        calib: Option<PathBuf>,
        /// Leave out unreadable images of an image folder used for calibration (warning).
        #[arg(long)]
        skip_bad_images: bool,
    },
    /// Evaluate a model file on a dataset's test split, on the runtime crate.
    Eval {
        /// Model file.
        #[arg(long)]
        model: PathBuf,
        /// MNIST-format directory or image folder (DIR/train/<class>/*.png|jpg and
        /// DIR/test/<class>/…; grayscale by BT.601 luma, resized bilinearly to the input).
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Leave out unreadable or corrupt images of an image folder, with a warning
        /// counting them, instead of stopping at the first.
        #[arg(long)]
        skip_bad_images: bool,
        /// Evaluate only N test images (the first; spread over the classes of an image folder).
        #[arg(long)]
        limit: Option<usize>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// Also write every image's outputs (logits, dequantized for int8) to this file as
        /// little-endian f32, image after image: to compare kernel sets or machines byte
        /// for byte (`cmp`).
        #[arg(long)]
        dump_logits: Option<PathBuf>,
        /// Also time every layer (a second pass over the same images) and print each
        /// one's median: where the time goes.
        #[arg(long)]
        layer_times: bool,
    },
    /// Run an exported sparse-code encoder on held-out patches, on the runtime, against
    /// on-device FISTA: energies, sparsity, time per patch and the speedup.
    Encode {
        /// Encoder model file (from `kestrel export` of a PSD checkpoint).
        #[arg(long)]
        model: PathBuf,
        /// MNIST-format directory or folder of PNG/JPEG pictures (held-out part used).
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Held-out patches to measure.
        #[arg(long, default_value_t = 1000)]
        n: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Per-layer ops, shapes, parameters, MACs and memory of a model file.
    Inspect {
        /// Model file.
        #[arg(long)]
        model: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Cortex-M firmware under QEMU.
    Firmware {
        #[command(subcommand)]
        cmd: FirmwareCmd,
    },
    /// Every backend op, the sparse-coding solvers and a LeNet training step on a device,
    /// against the CPU reference within stated tolerances; exits 1 when any check fails.
    Conformance {
        /// auto, cpu or cuda[:N].
        #[arg(long, default_value = "auto")]
        device: String,
        /// Seed of the random inputs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print one JSON object (device, checks, failed) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Finite-difference check of every layer's gradients (or of a PSD encoder's).
    Gradcheck {
        /// Built-in name or TOML file.
        #[arg(long, required_unless_present = "encoder", conflicts_with = "encoder")]
        arch: Option<String>,
        /// Check a PSD encoder instead: tanh, shrink or lista:T.
        #[arg(long)]
        encoder: Option<String>,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Predictive sparse decomposition: sparse-code dictionaries with fast encoders.
    Psd {
        #[command(subcommand)]
        cmd: PsdCmd,
    },
    /// Write (or rewrite) a checkpoint's HTML report: curves, layers, filters, confusion
    /// matrix, and the exported models' accuracy and agreement with the float network.
    Report {
        /// Checkpoint from `kestrel train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Exported model files to measure on the test split and add (repeatable; models
        /// added by `kestrel export` are remembered).
        #[arg(long)]
        model: Vec<PathBuf>,
        /// HTML file to write (default: the checkpoint's path with extension .html).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Draw a checkpoint's first-layer filters as a PNG grid (0 = mid-gray, each filter
    /// scaled by its largest magnitude).
    Visualize {
        /// Checkpoint from `kestrel train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// PNG file to write.
        #[arg(long)]
        out: PathBuf,
        /// Pixels per filter value (default: tiles of about 40 pixels).
        #[arg(long)]
        scale: Option<usize>,
    },
}

#[derive(Subcommand)]
enum PsdCmd {
    /// Train a dictionary and an encoder on K×K patches (checkpoint every epoch, energy
    /// curve in <out>.energy.png).
    Train {
        /// IDX directory or folder of PNG/JPEG pictures.
        #[arg(long)]
        data: PathBuf,
        /// Patch side K.
        #[arg(long)]
        patch: usize,
        /// Dictionary atoms.
        #[arg(long)]
        atoms: usize,
        /// Sparsity weight λ.
        #[arg(long, default_value_t = psd::train::DEFAULT_LAMBDA, allow_negative_numbers = true)]
        lambda: f32,
        /// tanh, shrink or lista:T (T in 1..=255).
        #[arg(long)]
        encoder: String,
        /// Convolutional PSD on whole images: --patch is the (odd) filter side, --patches
        /// the number of training images, --batch images per step (16 if left at default).
        #[arg(long)]
        conv: bool,
        /// Passes over the training patches.
        #[arg(long, default_value_t = psd::train::DEFAULT_EPOCHS)]
        epochs: usize,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Checkpoint to write.
        #[arg(long)]
        out: PathBuf,
        /// Prediction weight α (regression target).
        #[arg(long, default_value_t = psd::train::DEFAULT_ALPHA, allow_negative_numbers = true)]
        alpha: f32,
        /// Training patches.
        #[arg(long, default_value_t = psd::train::DEFAULT_PATCHES)]
        patches: usize,
        /// Mini-batch size.
        #[arg(long, default_value_t = psd::train::DEFAULT_BATCH)]
        batch: usize,
        /// Base learning rate (fraction of each parameter's inverse curvature).
        #[arg(long, default_value_t = psd::train::DEFAULT_LR, allow_negative_numbers = true)]
        lr: f32,
        /// Encoder-only epochs after the joint ones, dictionary frozen (dense PSD; Adam).
        #[arg(long, default_value_t = psd::train::DEFAULT_ENCODER_EPOCHS)]
        encoder_epochs: usize,
        /// Adam step of the encoder-only epochs (cosine decay to zero).
        #[arg(long, default_value_t = psd::train::DEFAULT_ENCODER_LR, allow_negative_numbers = true)]
        encoder_lr: f32,
        /// Training patches of the encoder-only epochs (a fresh sample).
        #[arg(long, default_value_t = psd::train::DEFAULT_ENCODER_PATCHES)]
        encoder_patches: usize,
        /// Encoder objective: energy, regression or both.
        #[arg(long, default_value = "energy")]
        target: String,
        /// Mean removal only, no contrast normalization.
        #[arg(long)]
        no_contrast: bool,
        /// auto, cpu or cuda[:N] (auto: CUDA device 0 when there is one, else the CPU).
        #[arg(long, default_value = "auto")]
        device: String,
        /// Let cuBLAS use TF32 tensor cores for float GEMMs (CUDA only; faster, ~10-bit
        /// mantissa products, results no longer match the CPU backend's tolerances).
        #[arg(long)]
        tf32: bool,
        /// Threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Encoder vs converged FISTA on held-out patches, or whole images for `--conv`
    /// checkpoints (trainer float path).
    Eval {
        /// Checkpoint from `kestrel psd train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Data directory (default: the one it was trained on).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Held-out patches (default 5000), or whole held-out images for a `--conv`
        /// checkpoint (default 100).
        #[arg(long)]
        n: Option<usize>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum FirmwareCmd {
    /// Build the firmware around a model and the first N test images, run it under
    /// `qemu-system-arm -icount shift=0`, compare every output byte with the host runtime's
    /// and report executed instructions (whole model and per layer) and footprint.
    Run {
        /// Board: m4 (mps2-an386) or m55 (mps3-an547).
        #[arg(long, value_enum)]
        target: firmware::Target,
        /// Model file.
        #[arg(long)]
        model: PathBuf,
        /// MNIST-format directory or image folder (DIR/test/<class>/*.png|jpg).
        #[arg(long, default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Test images to embed and run.
        #[arg(long, default_value_t = 4)]
        n: usize,
        /// Folder with firmware-common and the board crates (default: this checkout's examples/).
        #[arg(long)]
        firmware_dir: Option<PathBuf>,
        /// Cargo target directory for the firmware (default: this checkout's target/firmware).
        #[arg(long)]
        build_dir: Option<PathBuf>,
        /// Seconds QEMU may run.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `kestrel export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// A Kestrel model file for the runtime.
    Kestrel,
    /// ONNX (opset 13) of the float network, for other engines.
    Onnx,
}

/// A usage error of `kestrel export` in clap's format (exit status 2), for combinations
/// clap cannot express.
fn usage(message: &str) -> ! {
    use clap::CommandFactory;
    let mut cli = Cli::command();
    cli.build();
    match cli.find_subcommand_mut("export") {
        Some(export) => export.error(clap::error::ErrorKind::ArgumentConflict, message),
        None => cli.error(clap::error::ErrorKind::ArgumentConflict, message),
    }
    .exit()
}

/// Runs `$job` with `$be` bound to the backend `--device` names (`auto` resolved, with a
/// one-line notice when it falls back to the CPU), after printing which device runs.
macro_rules! on_backend {
    ($device:expr, $tf32:expr, |$be:ident| $job:expr) => {{
        use kestrel_trainer::backend::device::{open, Opened};
        match open($device, $tf32)? {
            Opened::Cpu(notice) => {
                match notice {
                    Some(why) => println!("device: cpu (auto: {why})"),
                    None => println!("device: cpu"),
                }
                if $tf32 {
                    println!("note: --tf32 applies to CUDA devices only; ignored on the CPU");
                }
                let $be = kestrel_trainer::backend::cpu::Cpu::new();
                $job
            }
            Opened::Cuda(boxed) => {
                let $be = *boxed;
                println!(
                    "device: {} ({}{})",
                    $be.label(),
                    $be.device_name(),
                    if $tf32 { ", TF32 GEMMs" } else { "" }
                );
                $job
            }
        }
    }};
}

fn threads(n: Option<usize>) {
    if let Some(n) = n {
        // Only fails if a pool exists already, which it cannot at this point.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
}

/// Parses a model file read by [`eval::read_model`] (typed error naming the file).
fn parse_model<'b>(buf: &'b kestrel_format::AlignedBuf, path: &Path) -> Result<Model<'b>> {
    Model::from_bytes(buf).map_err(|e| Error::Model {
        path: path.to_path_buf(),
        source: e,
    })
}

/// `r` as one line of JSON.
fn json_line(r: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(r).map_err(|e| Error::Other(e.to_string()))
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Train {
            arch,
            data,
            skip_bad_images,
            epochs,
            out,
            batch,
            lr,
            seed,
            flip,
            jitter,
            noise,
            validation,
            limit,
            resume,
            init_from,
            init_scale,
            device,
            tf32,
            threads: t,
        } => {
            threads(t);
            let arch = Arch::load(&arch)?;
            let mut config = arch.train.clone();
            config.epochs = epochs.unwrap_or(config.epochs);
            config.batch = batch.unwrap_or(config.batch);
            config.lr = lr.unwrap_or(config.lr);
            config.seed = seed.unwrap_or(config.seed);
            config.flip = flip.unwrap_or(config.flip);
            config.jitter = jitter.unwrap_or(config.jitter);
            config.noise = noise.unwrap_or(config.noise);
            config.validation = validation.or(config.validation);
            let opts = TrainOptions {
                arch,
                config,
                data_dir: data,
                skip_bad_images,
                out,
                limit,
                resume,
                quiet: false,
                init_from: match init_from {
                    Some(path) => Some(train::InitFrom {
                        path,
                        scale: init_scale.parse()?,
                    }),
                    None => None,
                },
            };
            on_backend!(&device, tf32, |be| train::train(be, &opts))?;
            print_report(&report::write(&opts.out, &[], None)?);
            Ok(())
        }
        Cmd::Conformance { device, seed, json } => {
            use kestrel_trainer::backend::conformance;
            let checks = on_backend!(&device, false, |be| conformance::run(be, seed))?;
            let failed = checks.iter().filter(|c| !c.passed).count();
            if json {
                let rows: Vec<_> = checks
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "op": c.op, "case": c.case, "output": c.output,
                            "elements": c.elements, "max_abs_err": c.max_abs_err,
                            "worst": c.worst, "tol_abs": c.tol.abs, "tol_rel": c.tol.rel,
                            "passed": c.passed,
                        })
                    })
                    .collect();
                let all = serde_json::json!({"checks": rows, "failed": failed});
                println!("{all}");
            } else {
                print!("{}", conformance::table(&checks));
            }
            if failed > 0 {
                eprintln!(
                    "error: {failed} of {} conformance checks failed",
                    checks.len()
                );
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Export {
            checkpoint,
            format: Format::Onnx,
            quant,
            out,
            calib,
            ..
        } => {
            if quant.is_some_and(|q| q != Quant::F32) {
                usage("--format onnx exports the float network: --quant must be f32 or absent");
            }
            if calib.is_some() {
                usage("--calib calibrates int8 Kestrel models; --format onnx has no use for it");
            }
            let ckpt = checkpoint::Checkpoint::load(&checkpoint)?;
            let bytes = export_onnx::export_onnx(kestrel_trainer::backend::cpu::Cpu::new(), &ckpt)?;
            checkpoint::write_atomic(&out, &bytes)?;
            println!(
                "wrote {} ({} bytes, ONNX opset {}, normalized f32 input)",
                out.display(),
                bytes.len(),
                export_onnx::OPSET
            );
            Ok(())
        }
        Cmd::Export {
            checkpoint,
            format: Format::Kestrel,
            quant,
            out,
            calib,
            skip_bad_images,
        } => {
            let Some(quant) = quant else {
                usage("--format kestrel needs --quant int8|f16|f32");
            };
            if checkpoint::Envelope::load(&checkpoint)?.kind == "psd" {
                let m = psd::model::PsdModel::load(&checkpoint)?;
                let bytes = export_encoder::export(&m, quant, calib.as_deref())?;
                checkpoint::write_atomic(&out, &bytes)?;
                println!(
                    "wrote {} ({} bytes, {:?} {} encoder)",
                    out.display(),
                    bytes.len(),
                    quant,
                    m.meta.encoder
                );
                return Ok(());
            }
            let ckpt = checkpoint::Checkpoint::load(&checkpoint)?;
            let calib = match (calib, quant) {
                (Some(dir), _) => Some(export::calibration_set(&ckpt, &dir, skip_bad_images)?),
                (None, Quant::Int8) => Some(export::calibration_set(
                    &ckpt,
                    &ckpt.data_dir,
                    skip_bad_images,
                )?),
                (None, _) => None,
            };
            if let Some(w) = calib.as_ref().and_then(data::Loaded::warning) {
                eprintln!("warning: {w}");
            }
            let calib = calib.map(|l| l.images);
            let bytes = export::export(
                kestrel_trainer::backend::cpu::Cpu::new(),
                &ckpt,
                quant,
                calib.as_ref(),
            )?;
            checkpoint::write_atomic(&out, &bytes)?;
            println!(
                "wrote {} ({} bytes, {:?})",
                out.display(),
                bytes.len(),
                quant
            );
            // The report beside the checkpoint gains this model's accuracy and agreement.
            print_report(&report::write(&checkpoint, &[out], None)?);
            Ok(())
        }
        Cmd::Encode {
            model,
            data,
            n,
            json,
        } => {
            let buf = eval::read_model(&model)?;
            let m = parse_model(&buf, &model)?;
            let patches = encode::held_out_patches(&m, &data, n)?;
            let r = encode::measure(&m, &patches)?;
            if json {
                println!("{}", json_line(&r)?);
            } else {
                println!("{}", r.table());
            }
            Ok(())
        }
        Cmd::Eval {
            model,
            data,
            skip_bad_images,
            limit,
            json,
            dump_logits,
            layer_times,
        } => {
            let buf = eval::read_model(&model)?;
            let m = parse_model(&buf, &model)?;
            let loaded = eval::test_set(&m, &data, skip_bad_images)?;
            if let Some(w) = loaded.warning() {
                eprintln!("warning: {w}");
            }
            let set = match limit {
                Some(n) => loaded.limit(n).images,
                None => loaded.images,
            };
            let mut outputs = Vec::new();
            let keep = dump_logits.is_some().then_some(&mut outputs);
            let mut r = eval::evaluate_keeping(&m, &set, keep)?;
            if let Some(path) = dump_logits {
                checkpoint::write_atomic(&path, &eval::le_bytes(&outputs))?;
            }
            if layer_times {
                r.layers = eval::layer_times(&m, &set)?;
            }
            if json {
                println!("{}", json_line(&r)?);
            } else {
                println!(
                    "{}: {} accuracy {:.2}% ({}/{}) on the runtime ({} kernels); latency mean {:.1} µs, median {:.1} µs; arena {} bytes; model {} bytes",
                    model.display(),
                    r.precision,
                    100.0 * r.accuracy,
                    r.correct,
                    r.n,
                    r.kernels,
                    r.mean_latency_us,
                    r.median_latency_us,
                    r.arena_bytes,
                    r.model_bytes
                );
                for (i, l) in r.layers.iter().enumerate() {
                    let at = i
                        .checked_sub(1)
                        .map_or("  -".to_string(), |l| format!("{l:3}"));
                    println!("{at}  {:<10} {:>9.2} µs (median)", l.op, l.median_us);
                }
            }
            Ok(())
        }
        Cmd::Inspect { model, json } => {
            let buf = eval::read_model(&model)?;
            let m = parse_model(&buf, &model)?;
            let r = inspect::inspect(&m)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&r).map_err(|e| Error::Other(e.to_string()))?
                );
            } else {
                print!("{}", r.table());
            }
            Ok(())
        }
        Cmd::Firmware {
            cmd:
                FirmwareCmd::Run {
                    target,
                    model,
                    data,
                    n,
                    firmware_dir,
                    build_dir,
                    timeout,
                    json,
                },
        } => {
            let mut opts = firmware::FirmwareOptions::new(target, model, data, n);
            if let Some(dir) = firmware_dir {
                opts.examples_dir = dir;
            }
            if let Some(dir) = build_dir {
                opts.build_dir = dir;
            }
            opts.timeout = std::time::Duration::from_secs(timeout);
            let r = firmware::run(&opts)?;
            if json {
                println!("{}", json_line(&r)?);
            } else {
                print!("{}", r.table());
            }
            if !r.outputs_match_host {
                return Err(Error::Other(format!(
                    "{} of the firmware's output bytes differ from the host runtime's",
                    r.mismatched_bytes
                )));
            }
            Ok(())
        }
        Cmd::Psd { cmd } => run_psd(cmd),
        Cmd::Gradcheck {
            arch,
            encoder,
            seed,
        } => {
            let rows = match (arch, encoder) {
                (_, Some(e)) => gradcheck::gradcheck_encoder(e.parse::<EncoderKind>()?, seed)?,
                (Some(a), None) => gradcheck::gradcheck_arch(&Arch::load(&a)?, seed)?,
                (None, None) => {
                    return Err(Error::Other(
                        "kestrel gradcheck needs --arch or --encoder".into(),
                    ))
                }
            };
            let mut failed = 0;
            println!(
                "{:>3}  {:<10} {:<7} {:>14} {:>8} {:>8}  result",
                "#", "layer", "wrt", "worst rel err", "checked", "skipped"
            );
            for r in &rows {
                println!(
                    "{:>3}  {:<10} {:<7} {:>14.3e} {:>8} {:>8}  {}",
                    r.layer,
                    r.op,
                    r.wrt,
                    r.worst_rel_err,
                    r.checked,
                    r.skipped,
                    if r.pass { "ok" } else { "FAIL" }
                );
                failed += usize::from(!r.pass);
            }
            if failed > 0 {
                return Err(Error::Other(format!(
                    "gradient check failed for {failed} layer(s)"
                )));
            }
            println!("all {} gradient checks passed", rows.len());
            Ok(())
        }
        Cmd::Report {
            checkpoint,
            model,
            out,
        } => {
            print_report(&report::write(&checkpoint, &model, out.as_deref())?);
            Ok(())
        }
        Cmd::Visualize {
            checkpoint,
            out,
            scale,
        } => {
            let opts = visualize::GridOptions {
                scale,
                ..Default::default()
            };
            let d = visualize::visualize_checkpoint(&checkpoint, &out, &opts)?;
            println!(
                "wrote {} ({}×{} pixels): {}",
                out.display(),
                d.width,
                d.height,
                d.banks.join("; ")
            );
            Ok(())
        }
    }
}

fn run_psd(cmd: PsdCmd) -> Result<()> {
    match cmd {
        PsdCmd::Train {
            data,
            patch,
            atoms,
            lambda,
            encoder,
            conv,
            epochs,
            seed,
            out,
            alpha,
            patches,
            batch,
            lr,
            encoder_epochs,
            encoder_lr,
            encoder_patches,
            target,
            no_contrast,
            device,
            tf32,
            threads: t,
        } => {
            threads(t);
            let mut o = psd::train::PsdOptions::new(data, patch, atoms, encoder.parse()?, out);
            o.lambda = lambda;
            o.conv = conv;
            o.epochs = epochs;
            o.seed = seed;
            o.alpha = alpha;
            o.patches = patches;
            o.batch = batch;
            o.lr = lr;
            o.encoder_epochs = encoder_epochs;
            o.encoder_lr = encoder_lr;
            o.encoder_patches = encoder_patches;
            o.target = target.parse()?;
            if no_contrast {
                o.contrast = None;
            }
            let m = on_backend!(&device, tf32, |be| psd::train::train(&be, &o))?;
            let l = m.meta.history.last();
            println!(
                "wrote {} and {} ({} epochs, {} encoder, {} atoms; last epoch E(x,h*) {:.4}, E(x,g(x)) {:.4}, non-zeros {:.1}%)",
                o.out.display(),
                psd::train::energy_png_path(&o.out).display(),
                m.meta.epochs_done,
                m.meta.encoder,
                m.meta.atoms,
                l.map_or(f32::NAN, |l| l.energy),
                l.map_or(f32::NAN, |l| l.encoder_energy),
                l.map_or(f32::NAN, |l| 100.0 * l.nonzero_fraction),
            );
            Ok(())
        }
        PsdCmd::Eval {
            checkpoint,
            data,
            n,
            json,
        } => {
            let m = psd::PsdModel::load(&checkpoint)?;
            let n = n.unwrap_or(if m.meta.conv {
                psd::eval::DEFAULT_EVAL_IMAGES
            } else {
                psd::eval::DEFAULT_EVAL_PATCHES
            });
            let r = psd::eval::evaluate(
                &kestrel_trainer::backend::cpu::Cpu::new(),
                &m,
                data.as_deref(),
                n,
            )?;
            if json {
                println!("{}", json_line(&r)?);
            } else {
                println!(
                    "{}: {} encoder on {} held-out {}: energy {:.4} vs converged FISTA {:.4} (ratio {:.4}); relative reconstruction error {:.4} (FISTA {:.4}); non-zeros {:.1}% (FISTA {:.1}%, {} iterations{})",
                    checkpoint.display(),
                    r.encoder,
                    r.n,
                    if m.meta.conv { "images" } else { "patches" },
                    r.encoder_energy,
                    r.fista_energy,
                    r.ratio,
                    r.reconstruction_error,
                    r.fista_reconstruction_error,
                    100.0 * r.nonzero_fraction,
                    100.0 * r.fista_nonzero_fraction,
                    r.fista_iterations,
                    if r.fista_converged { "" } else { ", not converged" }
                );
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where the report went, and what it lacks.
fn print_report(w: &report::Written) {
    for e in &w.measured {
        println!(
            "{}: {} accuracy {:.2}% on the runtime, agrees with the float network on {:.2}% of {} test images",
            e.model.display(),
            e.precision,
            100.0 * e.accuracy,
            100.0 * e.agreement,
            e.n
        );
    }
    if let Some(why) = &w.missing_test {
        println!("report without the test-split sections ({why})");
    }
    println!("report: {}", w.path.display());
}
