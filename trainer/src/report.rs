//! The training report: one self-contained HTML file beside the checkpoint
//! (`runs/lenet.ckpt` → `runs/lenet.html`), with no network access needed to read it.
//!
//! It shows the training curves (loss, train and validation error, learning rate) as PNG
//! plots, the per-layer table (shapes, parameters, MACs and activation statistics of the
//! float network on a sample of test images), the first convolution's filters, the float
//! network's confusion matrix and per-class accuracy on the test split, and every exported
//! model's accuracy on the runtime with its agreement with the float network.
//!
//! Pictures are embedded as base64 `data:` URIs; the page's only script checks that each
//! one decoded to a non-blank picture and marks `<body data-rendered="ok">` (what the
//! headless-browser test reads). Exports are remembered in a sidecar JSON file
//! (`runs/lenet.ckpt.exports.json`) keyed by model path and tagged with the checkpoint's
//! CRC32, so a retrained checkpoint ignores the exports of the old one. Every file is
//! written with [`checkpoint::write_atomic`].

use std::path::{Path, PathBuf};

use kestrel_format::Model;
use serde::{Deserialize, Serialize};

use crate::backend::cpu::Cpu;
use crate::checkpoint::{self, Checkpoint};
use crate::data::{self, Images, Split};
use crate::error::{Error, Result};
use crate::nn::{Network, Op};
use crate::train::argmax;

mod html;

/// Test images the activation statistics are measured on.
pub const ACTIVATION_SAMPLE: usize = 500;

/// The report beside `checkpoint`: the same path with extension `.html`.
pub fn report_path(checkpoint: &Path) -> PathBuf {
    checkpoint.with_extension("html")
}

/// The exports sidecar beside `checkpoint`: its file name with `.exports.json` appended.
pub fn exports_path(checkpoint: &Path) -> PathBuf {
    let mut name = checkpoint.file_name().unwrap_or_default().to_os_string();
    name.push(".exports.json");
    checkpoint.with_file_name(name)
}

/// An exported model measured on the checkpoint's test split, on the runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// The model file.
    pub model: PathBuf,
    /// `f32`, `f16` or `int8`.
    pub precision: String,
    /// File size.
    pub model_bytes: usize,
    /// Test images evaluated.
    pub n: usize,
    /// Fraction classified correctly by the runtime.
    pub accuracy: f64,
    /// Fraction of images whose runtime argmax equals the float network's.
    pub agreement: f64,
    /// CRC32 of the checkpoint file the model was exported from.
    pub checkpoint_crc: u32,
}

/// The float network's predictions on the test split.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResults {
    /// Predicted class of every test image.
    pub predictions: Vec<usize>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl TestResults {
    /// Fraction of test images predicted correctly.
    pub fn accuracy(&self) -> f64 {
        let n: usize = self.confusion.iter().flatten().sum();
        let right: usize = (0..self.confusion.len())
            .map(|c| self.confusion[c][c])
            .sum();
        right as f64 / n.max(1) as f64
    }
}

/// One row of the per-layer table.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    /// The op (`conv2d`, `relu`, …).
    pub op: &'static str,
    /// Input `[c, h, w]`.
    pub input: [usize; 3],
    /// Output `[c, h, w]`.
    pub output: [usize; 3],
    /// Trainable parameters.
    pub params: usize,
    /// Multiply-accumulates per image (convolutions and linear layers).
    pub macs: u64,
    /// Statistics of the layer's output on the sample, when the test data was at hand.
    pub stats: Option<ActStats>,
}

/// Statistics of one layer's outputs over a sample of images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActStats {
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
    /// Fraction of exact zeros.
    pub zeros: f64,
    /// Largest magnitude.
    pub max_abs: f64,
}

impl ActStats {
    fn of(values: &[f32]) -> ActStats {
        let n = values.len().max(1) as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        ActStats {
            mean,
            std: var.sqrt(),
            zeros: values.iter().filter(|&&v| v == 0.0).count() as f64 / n,
            max_abs: values.iter().fold(0f64, |m, &v| m.max((v as f64).abs())),
        }
    }
}

/// Multiply-accumulates per image of a layer (the arithmetic of convolutions and linear
/// layers; the elementwise and pooling ops count none).
pub fn layer_macs(op: &Op) -> u64 {
    match op {
        Op::Conv2d(s) => (s.out_c * s.out_h * s.out_w * s.patch_len()) as u64,
        Op::Linear(s) => (s.inputs * s.outputs) as u64,
        Op::Act(_)
        | Op::MaxPool2d(_)
        | Op::AvgPool2d(_)
        | Op::Lcn { .. }
        | Op::Dropout { .. }
        | Op::Flatten => 0,
    }
}

/// Everything the page shows, measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The checkpoint's path, as given.
    pub checkpoint: PathBuf,
    /// The checkpoint.
    pub ckpt: Checkpoint,
    /// Per-layer table.
    pub layers: Vec<LayerRow>,
    /// The float network on the test split, or why it is missing.
    pub test: std::result::Result<TestResults, String>,
    /// Exports of this checkpoint.
    pub exports: Vec<ExportRecord>,
}

/// The float network of a checkpoint, on the CPU backend.
fn float_network(ckpt: &Checkpoint) -> Result<Network<Cpu>> {
    let mut net = Network::new(Cpu::new(), &ckpt.arch, ckpt.train.seed)?;
    net.set_params(&ckpt.params)?;
    Ok(net)
}

/// The float network's predictions on all of `set`, 500 at a time, with a progress bar.
pub fn float_predictions(ckpt: &Checkpoint, set: &Images) -> Result<Vec<usize>> {
    let mut net = float_network(ckpt)?;
    let classes = net.num_classes();
    let bar = crate::progress::bar(set.n, "float network on the test split");
    let mut x = Vec::new();
    let mut out = Vec::with_capacity(set.n);
    let idx: Vec<usize> = (0..set.n).collect();
    for chunk in idx.chunks(500) {
        ckpt.normalize.batch(set, chunk, &mut x);
        let logits = net.predict(&x, chunk.len())?;
        out.extend(logits.chunks(classes).map(argmax));
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Confusion counts of `predictions` against `set`'s labels.
pub fn confusion(set: &Images, predictions: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; classes]; classes];
    for (&label, &p) in set.labels.iter().zip(predictions) {
        if (label as usize) < classes && p < classes {
            m[label as usize][p] += 1;
        }
    }
    m
}

/// The per-layer table; with `sample`, activation statistics of the float network on it.
pub fn layer_rows(ckpt: &Checkpoint, sample: Option<&Images>) -> Result<Vec<LayerRow>> {
    let mut net = float_network(ckpt)?;
    let stats = match sample {
        Some(set) if set.n > 0 => {
            let idx: Vec<usize> = (0..set.n).collect();
            let mut x = Vec::new();
            ckpt.normalize.batch(set, &idx, &mut x);
            let trace = net.forward_trace(&x, set.n)?;
            trace.iter().map(|t| Some(ActStats::of(t))).collect()
        }
        _ => vec![None; net.layers().len()],
    };
    Ok(net
        .layers()
        .iter()
        .zip(stats)
        .map(|(l, stats)| LayerRow {
            op: l.op.name(),
            input: l.input,
            output: l.output,
            params: l.op.num_params(),
            macs: layer_macs(&l.op),
            stats,
        })
        .collect())
}

/// CRC32 of a file's bytes (which checkpoint an export came from).
fn file_crc(path: &Path) -> Result<u32> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(crc32fast::hash(&bytes))
}

/// The exports recorded beside `checkpoint` (none when the sidecar does not exist).
pub fn load_exports(checkpoint: &Path) -> Result<Vec<ExportRecord>> {
    let path = exports_path(checkpoint);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
            path,
            message: format!("exports sidecar: {e}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Records `record` beside `checkpoint`, replacing any earlier record of the same model.
pub fn save_export(checkpoint: &Path, record: ExportRecord) -> Result<()> {
    let mut all = load_exports(checkpoint)?;
    all.retain(|r| r.model != record.model);
    all.push(record);
    let json = serde_json::to_vec_pretty(&all).map_err(|e| Error::Other(e.to_string()))?;
    checkpoint::write_atomic(&exports_path(checkpoint), &json)
}

/// Runs `model_path` on `set` on the runtime and compares it with the float `predictions`.
pub fn measure_export(
    model_path: &Path,
    set: &Images,
    predictions: &[usize],
    checkpoint_crc: u32,
) -> Result<ExportRecord> {
    let buf = crate::eval::read_model(model_path)?;
    let model = Model::from_bytes(&buf).map_err(|e| Error::Model {
        path: model_path.to_path_buf(),
        source: e,
    })?;
    let mut outputs = Vec::with_capacity(set.n);
    let spin = crate::progress::spinner(format!("{} on the runtime", model_path.display()));
    let r = crate::eval::evaluate_keeping(&model, set, Some(&mut outputs));
    spin.finish_and_clear();
    let r = r?;
    let agree = outputs
        .iter()
        .zip(predictions)
        .filter(|(o, &p)| argmax(o) == p)
        .count();
    Ok(ExportRecord {
        model: model_path.to_path_buf(),
        precision: r.precision,
        model_bytes: r.model_bytes,
        n: r.n,
        accuracy: r.accuracy,
        agreement: agree as f64 / set.n.max(1) as f64,
        checkpoint_crc,
    })
}

/// What [`write`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The HTML file.
    pub path: PathBuf,
    /// Why the test-split sections are missing, if they are.
    pub missing_test: Option<String>,
    /// Exports measured by this call (the `models` given).
    pub measured: Vec<ExportRecord>,
}

/// Builds the report of the checkpoint at `checkpoint`: measures each of `models` on the
/// test split (and records it in the sidecar), then writes the page to `out` (default
/// [`report_path`]). A missing test split leaves out the test sections, saying why.
pub fn write(checkpoint: &Path, models: &[PathBuf], out: Option<&Path>) -> Result<Written> {
    let ckpt = Checkpoint::load(checkpoint)?;
    let crc = file_crc(checkpoint)?;
    let test = data::load(&ckpt.data_dir, Split::Test).map_err(|e| e.to_string());
    let predictions = match &test {
        Ok(set) => Some(float_predictions(&ckpt, set)?),
        Err(_) => None,
    };
    let mut measured = Vec::new();
    for model in models {
        let (Ok(set), Some(pred)) = (&test, &predictions) else {
            break;
        };
        let record = measure_export(model, set, pred, crc)?;
        save_export(checkpoint, record.clone())?;
        measured.push(record);
    }
    let exports = load_exports(checkpoint)?
        .into_iter()
        .filter(|r| r.checkpoint_crc == crc)
        .collect();
    let layers = layer_rows(
        &ckpt,
        test.as_ref()
            .ok()
            .map(|s| s.take(ACTIVATION_SAMPLE.min(s.n)))
            .as_ref(),
    )?;
    let test_results = match (test, predictions) {
        (Ok(set), Some(predictions)) => {
            let classes = ckpt
                .classes
                .len()
                .max(1 + set.labels.iter().copied().max().unwrap_or(0) as usize);
            Ok(TestResults {
                confusion: confusion(&set, &predictions, classes),
                predictions,
            })
        }
        (Err(why), _) => Err(why),
        (Ok(_), None) => Err("no predictions".into()),
    };
    let missing_test = test_results.as_ref().err().cloned();
    let report = Report {
        checkpoint: checkpoint.to_path_buf(),
        ckpt,
        layers,
        test: test_results,
        exports,
    };
    let path = out.map_or_else(|| report_path(checkpoint), Path::to_path_buf);
    checkpoint::write_atomic(&path, html::page(&report)?.as_bytes())?;
    Ok(Written {
        path,
        missing_test,
        measured,
    })
}

/// Base64 (standard alphabet, padded) of `bytes`, for `data:` URIs.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Text with `&`, `<`, `>` and `"` escaped for HTML.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests;
