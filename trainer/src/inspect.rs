//! `kestrel inspect`: per-layer ops, shapes, parameters, MACs and activation bytes, with
//! totals, read from a model file through the runtime's planner (so `arena_bytes` is the
//! number the device will need).

use kestrel_format::Model;
use serde::Serialize;

use crate::error::Result;
use crate::eval::precision_name;

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRow {
    /// Position in the model.
    pub index: usize,
    /// Operation name.
    pub op: &'static str,
    /// Input `[c, h, w]`.
    pub input: [u32; 3],
    /// Output `[c, h, w]`.
    pub output: [u32; 3],
    /// Weights + biases.
    pub params: usize,
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// Work per inference, whatever the op (the runtime's `layer_ops`: MACs, window taps,
    /// elements), what the runtime's `Limits::max_ops` bounds.
    pub ops: u64,
    /// Bytes of the output activation.
    pub activation_bytes: usize,
    /// Scratch bytes the kernel needs.
    pub scratch_bytes: usize,
}

/// The whole report (`--json` prints it as is).
#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    /// Model name.
    pub name: String,
    /// `f32`, `f16` or `int8`.
    pub precision: &'static str,
    /// Layers.
    pub layers: Vec<LayerRow>,
    /// Total parameters.
    pub params: usize,
    /// Total MACs per inference.
    pub macs: u64,
    /// Total operations per inference (`Plan::ops`: every layer's plus one per input
    /// element).
    pub ops: u64,
    /// Kernel set a plan runs on this machine (the fastest this CPU runs, or
    /// `KESTREL_KERNELS`).
    pub kernels: &'static str,
    /// The input normalization `x = (p / 255 − input_mean) / input_std`.
    pub input_mean: f32,
    /// See `input_mean`.
    pub input_std: f32,
    /// File size.
    pub model_bytes: usize,
    /// Arena the runtime needs.
    pub arena_bytes: usize,
    /// Class names.
    pub classes: Vec<String>,
    /// Recorded float accuracy (NaN if none).
    pub float_accuracy: f32,
}

/// Builds the report.
pub fn inspect(model: &Model<'_>) -> Result<InspectReport> {
    let plan = crate::eval::plan(model)?;
    let layers: Vec<LayerRow> = model
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let s = plan.layer_stats(i).unwrap_or(kestrel_runtime::LayerStats {
                params: 0,
                macs: 0,
                ops: 0,
                in_bytes: 0,
                out_bytes: 0,
                scratch_bytes: 0,
                in_place: false,
            });
            LayerRow {
                index: i,
                op: l.kind.name(),
                input: l.input.dims(),
                output: l.output.dims(),
                params: s.params,
                macs: s.macs,
                ops: s.ops,
                activation_bytes: s.out_bytes,
                scratch_bytes: s.scratch_bytes,
            }
        })
        .collect();
    Ok(InspectReport {
        name: model.desc.name.to_string(),
        precision: precision_name(model.precision()),
        params: layers.iter().map(|l| l.params).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        ops: plan.ops(),
        kernels: plan.kernel_set().name(),
        layers,
        input_mean: model.desc.input.mean,
        input_std: model.desc.input.std,
        model_bytes: model.file_len(),
        arena_bytes: plan.arena_bytes(),
        classes: model.desc.classes.iter().map(|s| s.to_string()).collect(),
        float_accuracy: model.desc.provenance.float_accuracy,
    })
}

impl InspectReport {
    /// A human-readable table.
    pub fn table(&self) -> String {
        let mut s = format!("model {} ({})\n", self.name, self.precision);
        s += &format!(
            "{:>3}  {:<10} {:>16} {:>16} {:>9} {:>11} {:>11} {:>10} {:>9}\n",
            "#", "op", "input", "output", "params", "MACs", "ops", "act bytes", "scratch"
        );
        let dims = |d: [u32; 3]| format!("{}x{}x{}", d[0], d[1], d[2]);
        for l in &self.layers {
            s += &format!(
                "{:>3}  {:<10} {:>16} {:>16} {:>9} {:>11} {:>11} {:>10} {:>9}\n",
                l.index,
                l.op,
                dims(l.input),
                dims(l.output),
                l.params,
                l.macs,
                l.ops,
                l.activation_bytes,
                l.scratch_bytes
            );
        }
        s += &format!(
            "total: {} params, {} MACs, {} ops, model {} bytes, arena {} bytes ({} kernels)\n",
            self.params, self.macs, self.ops, self.model_bytes, self.arena_bytes, self.kernels
        );
        s
    }
}
