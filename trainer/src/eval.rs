//! Evaluation of exported model files **on the runtime crate itself**: the accuracy printed
//! here is the accuracy a device running the same bytes gets. There is no second copy of
//! the inference arithmetic in the trainer.

use std::path::Path;
use std::time::Instant;

use kestrel_format::{AlignedBuf, Model, Precision};
use kestrel_runtime::{Input, KernelSet, Plan};
use serde::Serialize;

use crate::data::{self, Images, Loaded, Split};
use crate::error::{Error, Result};
use crate::train::argmax;

/// What `kestrel eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Fraction of images classified correctly.
    pub accuracy: f64,
    /// Images evaluated.
    pub n: usize,
    /// Correct predictions.
    pub correct: usize,
    /// Mean wall time of one `Plan::run` (one image, one thread), microseconds.
    pub mean_latency_us: f64,
    /// Median of the same.
    pub median_latency_us: f64,
    /// `f32`, `f16` or `int8`.
    pub precision: String,
    /// Kernel set the runtime ran (the fastest this CPU runs, or `KESTREL_KERNELS`).
    pub kernels: &'static str,
    /// Arena bytes the runtime needed.
    pub arena_bytes: usize,
    /// Model file size.
    pub model_bytes: usize,
    /// Float accuracy the trainer recorded in the file (NaN if none).
    pub float_accuracy: f32,
    /// With `kestrel eval --layer-times`: each layer's median time (a second pass over the
    /// same images, timed around every layer; the latencies above come from the first,
    /// untouched by these timers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerTime>,
}

/// One layer's median time per image (`kestrel eval --layer-times`).
#[derive(Debug, Clone, Serialize)]
pub struct LayerTime {
    /// The op (`conv2d`, `tanh`, …); the model input's preparation is `input`.
    pub op: &'static str,
    /// Median microseconds per image.
    pub median_us: f64,
}

/// The median time of the model input's preparation and of each layer over `set`, one
/// image at a time: timed by `Plan::run_observed`'s hook, so each figure includes one
/// `Instant::now()` (tens of nanoseconds).
pub fn layer_times(model: &Model<'_>, set: &Images) -> Result<Vec<LayerTime>> {
    let (plan, mut arena) = prepare(model, set)?;
    let arena: &mut [u8] = bytemuck::cast_slice_mut(&mut arena);
    let layers = model.layers();
    let mut times = vec![Vec::with_capacity(set.n); layers.len() + 1];
    for i in 0..set.n {
        let mut last = Instant::now();
        plan.run_observed(arena, Input::Pixels(set.image(i)), |done| {
            let now = Instant::now();
            let slot = done.map_or(0, |l| l + 1);
            times[slot].push((now - last).as_secs_f64() * 1e6);
            last = now;
        })
        .map_err(Error::Runtime)?;
    }
    Ok(times
        .into_iter()
        .enumerate()
        .map(|(slot, mut t)| {
            t.sort_by(f64::total_cmp);
            LayerTime {
                op: slot
                    .checked_sub(1)
                    .map_or("input", |l| layers[l].kind.name()),
                median_us: t.get(t.len() / 2).copied().unwrap_or(0.0),
            }
        })
        .collect())
}

/// The test split of `dir` for `model`: an image folder is resized to the model's input and
/// labelled by the model's class names (a test class the model lacks is an error naming
/// its folder); IDX files are read as they are.
pub fn test_set(model: &Model<'_>, dir: &Path, skip_bad_images: bool) -> Result<Loaded> {
    let s = model.input_shape();
    let classes: Vec<String> = model.desc.classes.iter().map(|c| c.to_string()).collect();
    let opts = data::LoadOptions {
        size: Some([s.h as usize, s.w as usize]),
        skip_bad_images,
        classes: Some(&classes),
    };
    data::load_with(dir, Split::Test, &opts)
}

/// A model whose input is not the data's image shape is an error naming both.
pub(crate) fn check_input(model: &Model<'_>, set: &Images) -> Result<()> {
    let s = model.input_shape();
    if (s.c, s.h as usize, s.w as usize) != (1, set.rows, set.cols) {
        return Err(Error::Other(format!(
            "model input is {:?} but the data has 1×{}×{} images",
            s.dims(),
            set.rows,
            set.cols
        )));
    }
    Ok(())
}

/// Precision as a lower-case word.
pub fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::F32 => "f32",
        Precision::F16 => "f16",
        Precision::Int8 => "int8",
    }
}

/// Loads and validates a model file from disk into aligned memory.
pub fn read_model(path: &Path) -> Result<AlignedBuf> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let buf = AlignedBuf::new(&bytes);
    Model::from_bytes(&buf).map_err(|e| Error::Model {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(buf)
}

/// The environment variable that forces a kernel set (`reference`, `avx2`, `neon`, …) in
/// every command that runs the runtime, to compare sets.
pub const KERNELS_ENV: &str = "KESTREL_KERNELS";

/// A plan for `model` with the kernel set [`KERNELS_ENV`] names, else the fastest this CPU
/// runs ([`Plan::new`]). An unknown name, or a set this build or CPU cannot run, is an
/// error naming the variable, the set and what this machine runs.
pub fn plan<'m, 'a>(model: &'m Model<'a>) -> Result<Plan<'m, 'a>> {
    match std::env::var(KERNELS_ENV) {
        Ok(name) if !name.is_empty() => {
            let set = KernelSet::from_name(&name).ok_or_else(|| {
                let names: Vec<&str> = KernelSet::ALL.iter().map(|s| s.name()).collect();
                Error::Other(format!(
                    "{KERNELS_ENV}={name}: no such kernel set (one of {})",
                    names.join(", ")
                ))
            })?;
            Plan::with_kernels(model, set)
                .map_err(|e| Error::Other(format!("{KERNELS_ENV}={name}: {e}")))
        }
        _ => Plan::new(model).map_err(Error::Runtime),
    }
}

/// A plan for `model` ([`plan`]), its input checked against `set`'s images, and a
/// 16-byte aligned arena for it.
fn prepare<'m, 'a>(model: &'m Model<'a>, set: &Images) -> Result<(Plan<'m, 'a>, Vec<u128>)> {
    let plan = plan(model)?;
    check_input(model, set)?;
    let arena = vec![0u128; plan.arena_bytes().div_ceil(16)];
    Ok((plan, arena))
}

/// Runs `plan` on every image of `set` in `arena`, calling `each(i, logits, microseconds)`.
fn run_each(
    plan: &Plan<'_, '_>,
    arena: &mut [u8],
    set: &Images,
    mut each: impl FnMut(usize, &[f32], f64),
) -> Result<()> {
    let mut out = vec![0f32; plan.model().output_shape().len()];
    for i in 0..set.n {
        let t = Instant::now();
        plan.run_f32(arena, Input::Pixels(set.image(i)), &mut out)
            .map_err(Error::Runtime)?;
        let us = t.elapsed().as_secs_f64() * 1e6;
        each(i, &out, us);
    }
    Ok(())
}

/// All output vectors (dequantized for int8) of the runtime on `set`.
pub fn outputs(model: &Model<'_>, set: &Images) -> Result<Vec<Vec<f32>>> {
    let (plan, mut arena) = prepare(model, set)?;
    let mut all = Vec::with_capacity(set.n);
    let arena = bytemuck::cast_slice_mut(&mut arena);
    run_each(&plan, arena, set, |_, out, _| all.push(out.to_vec()))?;
    Ok(all)
}

/// Output vectors as little-endian f32 bytes, one after another (`kestrel eval
/// --dump-logits`): the same bytes on every machine that computes the same outputs.
pub fn le_bytes(outputs: &[Vec<f32>]) -> Vec<u8> {
    outputs
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// Accuracy and latency of `model` on `set`.
pub fn evaluate(model: &Model<'_>, set: &Images) -> Result<EvalReport> {
    evaluate_keeping(model, set, None)
}

/// [`evaluate`], also appending every output vector to `outputs` when given (in the same
/// pass: the outputs are copied outside the timed calls).
pub fn evaluate_keeping(
    model: &Model<'_>,
    set: &Images,
    mut outputs: Option<&mut Vec<Vec<f32>>>,
) -> Result<EvalReport> {
    let (plan, mut arena) = prepare(model, set)?;
    let mut correct = 0;
    let mut times = Vec::with_capacity(set.n);
    run_each(
        &plan,
        bytemuck::cast_slice_mut(&mut arena),
        set,
        |i, out, us| {
            correct += usize::from(argmax(out) == set.labels[i] as usize);
            times.push(us);
            if let Some(all) = outputs.as_deref_mut() {
                all.push(out.to_vec());
            }
        },
    )?;
    times.sort_by(f64::total_cmp);
    let n = set.n.max(1);
    Ok(EvalReport {
        accuracy: correct as f64 / n as f64,
        n: set.n,
        correct,
        mean_latency_us: times.iter().sum::<f64>() / n as f64,
        median_latency_us: times.get(times.len() / 2).copied().unwrap_or(0.0),
        precision: precision_name(model.precision()).into(),
        kernels: plan.kernel_set().name(),
        arena_bytes: plan.arena_bytes(),
        model_bytes: model.file_len(),
        float_accuracy: model.desc.provenance.float_accuracy,
        layers: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn le_bytes_lays_outputs_end_to_end() {
        let bytes = super::le_bytes(&[vec![1.0, -2.0], vec![0.5]]);
        let want: Vec<u8> = [1.0f32, -2.0, 0.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(bytes, want);
    }
}
