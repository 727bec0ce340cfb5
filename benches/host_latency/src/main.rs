//! Host latency of Kestrel's runtime against tract on the same network and the same inputs,
//! plus the float agreement checks; `benches/host_latency.sh` drives it and adds onnxruntime.
//!
//! ```text
//! host-latency agree --checkpoint CKPT --onnx MODEL.onnx --data DIR --n N --dump DIR
//!     the trainer's forward pass vs tract on the first N test images (batch 1)
//! host-latency bench --int8 M --f32 M --onnx MODEL.onnx --data DIR --images N --rounds R
//!                    --dump DIR
//!     tract vs Kestrel f32 on the first N test images, then latency on the same images:
//!     one thread, batch 1, every image R times, engines interleaved per image; medians
//! ```
//! Both write `inputs.f32` (normalized images, row-major, little-endian) and the reference
//! outputs (`trainer.f32` or `kestrel_f32.f32`) under `--dump`, for the onnxruntime side.
//! Agreement: every logit within `1e-5 · max(1, |reference|)` (absolute below 1, relative
//! above), or the command fails.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use kestrel_format::{AlignedBuf, Model};
use kestrel_runtime::{Input, Plan};
use kestrel_trainer::backend::cpu::Cpu;
use kestrel_trainer::checkpoint::Checkpoint;
use kestrel_trainer::data::{self, Normalize, Split};
use kestrel_trainer::nn::Network;
use tract_onnx::prelude::*;

/// Agreement tolerance (see the crate docs).
pub const TOL: f32 = 1e-5;

type Res<T> = Result<T, String>;

/// Largest absolute difference, largest difference relative to `max(1, |reference|)`, and
/// the number of logits beyond [`TOL`] of that.
pub fn compare(got: &[f32], want: &[f32]) -> (f32, f32, usize) {
    let mut worst = (0f32, 0f32, 0);
    for (&g, &w) in got.iter().zip(want) {
        let d = (g - w).abs();
        let rel = d / w.abs().max(1.0);
        worst.0 = worst.0.max(d);
        worst.1 = worst.1.max(rel);
        // NaN counts as a miss.
        worst.2 += usize::from(rel.is_nan() || rel > TOL);
    }
    worst
}

/// tract's optimized plan for `onnx` at batch 1, input `[1, c, h, w]`.
pub struct Tract {
    state: TypedSimpleState,
    shape: [usize; 4],
}

impl Tract {
    /// Loads ONNX bytes, fixes the batch to 1, optimizes and plans.
    pub fn new(onnx: &[u8], chw: [usize; 3]) -> Res<Tract> {
        let shape = [1, chw[0], chw[1], chw[2]];
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &onnx[..])
            .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| format!("tract: {e:?}"))?;
        let state = TypedSimpleState::new(&plan).map_err(|e| format!("tract: {e:?}"))?;
        Ok(Tract { state, shape })
    }

    /// [`Tract::new`] from a file.
    pub fn load(onnx: &Path, chw: [usize; 3]) -> Res<Tract> {
        let bytes = std::fs::read(onnx).map_err(|e| format!("{}: {e}", onnx.display()))?;
        Tract::new(&bytes, chw).map_err(|e| format!("{}: {e}", onnx.display()))
    }

    /// Logits of one normalized image into `out`.
    pub fn run(&mut self, x: &[f32], out: &mut [f32]) -> Res<()> {
        let t = Tensor::from_shape(&self.shape, x).map_err(|e| format!("tract input: {e:?}"))?;
        let y = self
            .state
            .run(tvec![t.into()])
            .map_err(|e| format!("tract run: {e:?}"))?;
        let view = y[0]
            .try_as_plain_ram()
            .map_err(|e| format!("tract output: {e:?}"))?;
        let y = view
            .as_slice::<f32>()
            .map_err(|e| format!("tract output: {e:?}"))?;
        if y.len() != out.len() {
            return Err(format!("tract: {} logits, expected {}", y.len(), out.len()));
        }
        out.copy_from_slice(y);
        Ok(())
    }
}

/// The first `n` test images of `dir`, normalized, concatenated.
fn images(dir: &Path, n: usize, norm: Normalize) -> Res<(Vec<f32>, usize)> {
    let set = data::load(dir, Split::Test).map_err(|e| e.to_string())?;
    let n = n.min(set.n);
    let idx: Vec<usize> = (0..n).collect();
    let mut x = Vec::new();
    norm.batch(&set, &idx, &mut x);
    Ok((x, n))
}

fn write_f32(path: &Path, v: &[f32]) -> Res<()> {
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    kestrel_trainer::checkpoint::write_atomic(path, &bytes).map_err(|e| e.to_string())
}

fn report(what: &str, got: &[f32], want: &[f32], n: usize) -> Res<()> {
    let (abs, rel, bad) = compare(got, want);
    println!(
        "agree {what}: {n} images, {} logits: max |diff| {abs:.2e}, max |diff|/max(1,|ref|) {rel:.2e} (tolerance {TOL:e}): {}",
        want.len(),
        if bad == 0 { "ok" } else { "FAIL" }
    );
    if bad > 0 {
        return Err(format!("{what}: {bad} logits differ by more than {TOL:e}"));
    }
    Ok(())
}

/// The trainer's eval-mode forward pass vs tract.
fn agree(a: &Args) -> Res<()> {
    let ckpt = Checkpoint::load(&a.path("checkpoint")?).map_err(|e| e.to_string())?;
    let (x, n) = images(&a.path("data")?, a.num("n", 200)?, ckpt.normalize)?;
    let mut net =
        Network::new(Cpu::new(), &ckpt.arch, ckpt.train.seed).map_err(|e| e.to_string())?;
    net.set_params(&ckpt.params).map_err(|e| e.to_string())?;
    let want = net.predict(&x, n);
    let classes = net.num_classes();
    let mut tract = Tract::load(&a.path("onnx")?, ckpt.arch.input)?;
    let per = x.len() / n;
    let mut got = vec![0f32; n * classes];
    for (xi, yi) in x.chunks(per).zip(got.chunks_mut(classes)) {
        tract.run(xi, yi)?;
    }
    let dump = a.path("dump")?;
    write_f32(&dump.join("inputs.f32"), &x)?;
    write_f32(&dump.join("trainer.f32"), &want)?;
    report(
        &format!("{} trainer vs tract", ckpt.arch.name),
        &got,
        &want,
        n,
    )
}

fn load_model(path: &Path) -> Res<AlignedBuf> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(AlignedBuf::new(&bytes))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Kestrel int8 and f32 vs tract: agreement, then latency.
fn bench(a: &Args) -> Res<()> {
    let (b8, b32) = (load_model(&a.path("int8")?)?, load_model(&a.path("f32")?)?);
    let m8 = Model::from_bytes(&b8).map_err(|e| format!("int8 model: {e}"))?;
    let m32 = Model::from_bytes(&b32).map_err(|e| format!("f32 model: {e}"))?;
    let (p8, p32) = (
        Plan::new(&m8).map_err(|e| format!("int8 plan: {e}"))?,
        Plan::new(&m32).map_err(|e| format!("f32 plan: {e}"))?,
    );
    let spec = m32.desc.input;
    let chw = [spec.shape.c, spec.shape.h, spec.shape.w].map(|v| v as usize);
    let norm = Normalize {
        mean: spec.mean,
        std: spec.std,
    };
    let (x, n) = images(&a.path("data")?, a.num("images", 500)?, norm)?;
    if n < 100 {
        return Err(format!(
            "{n} images: the agreement check needs at least 100"
        ));
    }
    let per = x.len() / n;
    let classes = m32.output_shape().len();
    let mut tract = Tract::load(&a.path("onnx")?, chw)?;
    let mut arena8 = vec![0u8; p8.arena_bytes() + 16];
    let mut arena32 = vec![0u8; p32.arena_bytes() + 16];
    println!("kestrel_runtime::IMPL = {}", kestrel_runtime::IMPL);

    // Float agreement: tract vs Kestrel's f32 runtime.
    let (mut kf, mut tf) = (vec![0f32; n * classes], vec![0f32; n * classes]);
    for i in 0..n {
        let xi = &x[i * per..][..per];
        let out = &mut kf[i * classes..][..classes];
        p32.run_f32(&mut arena32, Input::Normalized(xi), out)
            .map_err(|e| format!("kestrel f32: {e}"))?;
        tract.run(xi, &mut tf[i * classes..][..classes])?;
    }
    let dump = a.path("dump")?;
    write_f32(&dump.join("inputs.f32"), &x)?;
    write_f32(&dump.join("kestrel_f32.f32"), &kf)?;
    report("tract vs kestrel f32", &tf, &kf, n)?;

    // Latency: every image `rounds` times, the three engines interleaved per image so that
    // the machine's load falls on all of them alike.
    let rounds = a.num("rounds", 20)?;
    let mut y = vec![0f32; classes];
    let mut t = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..=rounds {
        for i in 0..n {
            let xi = &x[i * per..][..per];
            let s = Instant::now();
            let _ = black_box(p8.run_f32(&mut arena8, Input::Normalized(black_box(xi)), &mut y));
            let e8 = s.elapsed();
            let s = Instant::now();
            let _ = black_box(p32.run_f32(&mut arena32, Input::Normalized(black_box(xi)), &mut y));
            let e32 = s.elapsed();
            let s = Instant::now();
            tract.run(black_box(xi), &mut y)?;
            let et = s.elapsed();
            if round > 0 {
                // round 0 warms caches and branch predictors
                for (v, e) in t.iter_mut().zip([e8, e32, et]) {
                    v.push(e.as_secs_f64() * 1e6);
                }
            }
        }
    }
    let [k8, k32, tr] = t.map(|mut v| median(&mut v));
    println!("latency: one thread, batch 1, {n} distinct test images × {rounds} rounds, median µs");
    println!("kestrel int8 {k8:.2} µs ({})", kestrel_runtime::IMPL);
    println!("kestrel f32  {k32:.2} µs ({})", kestrel_runtime::IMPL);
    println!("tract f32    {tr:.2} µs (optimized plan)");
    let json = format!(
        "{{\"impl\":\"{}\",\"images\":{n},\"rounds\":{rounds},\"kestrel_int8_us\":{k8},\"kestrel_f32_us\":{k32},\"tract_us\":{tr}}}",
        kestrel_runtime::IMPL
    );
    std::fs::write(dump.join("rust.json"), json).map_err(|e| format!("rust.json: {e}"))
}

/// `--key value` pairs after the subcommand.
struct Args(Vec<(String, String)>);

impl Args {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn path(&self, key: &str) -> Res<PathBuf> {
        self.get(key)
            .map(PathBuf::from)
            .ok_or_else(|| format!("missing --{key}"))
    }
    fn num(&self, key: &str, default: usize) -> Res<usize> {
        self.get(key).map_or(Ok(default), |v| {
            v.parse().map_err(|e| format!("--{key} {v}: {e}"))
        })
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = argv
        .split_first()
        .map_or(("", &[][..]), |(c, r)| (c.as_str(), r));
    let mut pairs = Vec::new();
    let mut it = rest.iter();
    while let Some(k) = it.next() {
        match (k.strip_prefix("--"), it.next()) {
            (Some(k), Some(v)) => pairs.push((k.to_string(), v.clone())),
            _ => {
                eprintln!("error: expected --key value pairs, got {k}");
                return ExitCode::from(2);
            }
        }
    }
    let args = Args(pairs);
    let r = match cmd {
        "agree" => agree(&args),
        "bench" => bench(&args),
        _ => Err("usage: host-latency agree|bench --key value ... (see the crate docs)".into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    //! The export computes the trainer's forward pass, in tract, without a dataset: random
    //! initial weights, non-zero biases, pseudo-random inputs.
    use super::*;
    use kestrel_trainer::config::Arch;
    use kestrel_trainer::export_onnx::export_onnx;

    fn agrees(name: &str) {
        let arch = Arch::load(name).unwrap();
        let mut net = Network::new(Cpu::new(), &arch, 3).unwrap();
        let mut params = net.params();
        for p in &mut params {
            for (j, b) in p.bias.iter_mut().enumerate() {
                *b = 0.05 * ((j % 7) as f32 - 3.0);
            }
        }
        net.set_params(&params).unwrap();
        let ckpt = Checkpoint {
            arch: arch.clone(),
            train: arch.train.clone(),
            normalize: Normalize {
                mean: 0.3,
                std: 0.35,
            },
            classes: vec![],
            data_dir: "-".into(),
            train_samples: 0,
            epochs_done: 0,
            history: vec![],
            test_accuracy: None,
            params,
            velocities: vec![],
        };
        let mut tract = Tract::new(&export_onnx(Cpu::new(), &ckpt).unwrap(), arch.input).unwrap();
        let (n, per) = (16, arch.input.iter().product::<usize>());
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let x: Vec<f32> = (0..n * per)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 40) as f32 / (1u64 << 24) as f32 * 3.0 - 1.0
            })
            .collect();
        let want = net.predict(&x, n);
        let classes = net.num_classes();
        let mut got = vec![0f32; want.len()];
        for (xi, yi) in x.chunks(per).zip(got.chunks_mut(classes)) {
            tract.run(xi, yi).unwrap();
        }
        let (abs, rel, bad) = compare(&got, &want);
        println!("{name}: max |diff| {abs:.2e}, relative {rel:.2e}");
        assert_eq!(bad, 0, "{name}: max |diff| {abs:e}, relative {rel:e}");
    }

    #[test]
    fn lenet_export_runs_the_trainer_forward_pass_in_tract() {
        agrees("lenet");
    }

    #[test]
    fn jarrett_export_runs_the_trainer_forward_pass_in_tract() {
        agrees("jarrett");
    }
}
