//! PSD training on patches: dictionary and dense encoder, jointly.
//!
//! Per mini-batch `x [batch, k]`:
//! 1. the encoder predicts `g = g(x)`;
//! 2. FISTA infers `h*` for `E(x, h) = ½‖x − D h‖² + λ‖h‖₁`, warm-started from `g` (the
//!    prediction term `α‖h − g‖²` is left out of the inference: with the encoder trained
//!    on the energy it only slows FISTA down, and `h*` is then the exact code the encoder
//!    is measured against);
//! 3. the encoder steps on the mean of its target ([`EncoderTarget`]): the energy of its own
//!    codes `E(x, g(x))` (default: lower energies in calibration and in
//!    `docs/BENCHMARKS.md`), the regression `α‖h* − g(x)‖²`, or both;
//! 4. the dictionary steps on `½‖x − D h*‖²` and its columns are renormalized to unit length.
//!
//! Step sizes are fractions of each parameter's inverse curvature, so one `--lr` fits every
//! tensor, patch size and λ: the energy's curvature in the code is `L` (the Lipschitz
//! constant of `DᵀD`, plus `2α` with regression), so `W` steps by `lr / (L·mean‖x‖²)`, `b`,
//! `θ` and gains by `lr / L`, `S` by `lr / (L·mean‖h*‖²)`, and `D` by `lr / mean‖h*‖²`
//! (batch means). `lr` decays linearly to a tenth over the run; momentum 0.9.
//!
//! Then `encoder_epochs` encoder-only epochs with the dictionary frozen (the dense encoder's
//! final fit, as in LISTA's own protocol: a fixed dictionary, the encoder trained to
//! convergence). These need no FISTA when the target is the energy, so they are cheap and
//! run on a fresh, larger sample (`encoder_patches`, which narrows the gap between training
//! and held-out energies); they use Adam (step `encoder_lr`, cosine decay to zero): plain SGD
//! moves LISTA's `S` and `θ` too slowly (`docs/BENCHMARKS.md`). FISTA codes for the frozen
//! dictionary are computed once: the reference energy in the log (first 10,000 patches) and,
//! for the regression target, of every patch.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::encoder::{init_values, lista_theta, Encoder, Trace};
use super::model::{EncoderKind, PsdEpochLog, PsdMeta, PsdModel};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::nn::{normal, Constraint, Init, Param, ParamSpec};
use crate::patches::{Dataset, Part, PatchOptions, DEFAULT_CONTRAST_EPS};
use crate::sparse::{energy, fista, Problem, SolveOptions};
use crate::visualize;

/// Default `λ`.
pub const DEFAULT_LAMBDA: f32 = 0.5;
/// Default epochs.
pub const DEFAULT_EPOCHS: usize = 10;
/// Default training patches.
pub const DEFAULT_PATCHES: usize = 20_000;
/// Default mini-batch.
pub const DEFAULT_BATCH: usize = 256;
/// Default learning rate (a fraction of each parameter's inverse curvature).
pub const DEFAULT_LR: f32 = 0.1;
/// Default `α`.
pub const DEFAULT_ALPHA: f32 = 1.0;
/// Momentum of every parameter.
pub const MOMENTUM: f32 = 0.9;
/// Default encoder-only epochs after the joint ones (dictionary frozen).
pub const DEFAULT_ENCODER_EPOCHS: usize = 50;
/// Default training patches of the encoder-only epochs.
pub const DEFAULT_ENCODER_PATCHES: usize = 100_000;
/// Default Adam step of the encoder-only epochs.
pub const DEFAULT_ENCODER_LR: f32 = 1e-3;
/// Patches whose FISTA codes give the encoder-only epochs' reference energy (energy target).
const REFERENCE_PATCHES: usize = 10_000;
/// Adam's `(β₁, β₂)` and `ε` in the encoder-only epochs.
const ADAM: ((f32, f32), f32) = ((0.9, 0.999), 1e-8);

/// What the encoder is trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderTarget {
    /// The energy of its own codes, `E(x, g(x))`.
    #[default]
    Energy,
    /// Regression to the inferred codes, `α‖h* − g(x)‖²`.
    Regression,
    /// Both summed.
    Both,
}

impl std::str::FromStr for EncoderTarget {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "energy" => Ok(EncoderTarget::Energy),
            "regression" => Ok(EncoderTarget::Regression),
            "both" => Ok(EncoderTarget::Both),
            _ => Err(Error::Config {
                path: "--target".into(),
                message: format!("{s:?}: expected energy, regression or both"),
            }),
        }
    }
}

/// Everything `kestrel psd train` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct PsdOptions {
    /// IDX directory or folder of pictures.
    pub data: PathBuf,
    /// Patch side `K`.
    pub patch: usize,
    /// Atoms `n`.
    pub atoms: usize,
    /// `λ > 0`.
    pub lambda: f32,
    /// The encoder.
    pub encoder: EncoderKind,
    /// Convolutional PSD.
    pub conv: bool,
    /// Passes over the training patches.
    pub epochs: usize,
    /// Seed of patch sampling, initialization and order.
    pub seed: u64,
    /// Checkpoint to write (every epoch); the energy curve goes to `<out>.energy.png`.
    pub out: PathBuf,
    /// `α ≥ 0`.
    pub alpha: f32,
    /// Training patches.
    pub patches: usize,
    /// Mini-batch.
    pub batch: usize,
    /// Base learning rate.
    pub lr: f32,
    /// Encoder-only epochs after the joint ones (dense PSD).
    pub encoder_epochs: usize,
    /// Adam step of the encoder-only epochs.
    pub encoder_lr: f32,
    /// Training patches of the encoder-only epochs (a fresh sample).
    pub encoder_patches: usize,
    /// Contrast normalization floor (`None`: mean removal only).
    pub contrast: Option<f32>,
    /// The encoder's objective.
    pub target: EncoderTarget,
    /// No progress bar or per-epoch lines.
    pub quiet: bool,
}

impl PsdOptions {
    /// The defaults for the required arguments given.
    pub fn new(
        data: PathBuf,
        patch: usize,
        atoms: usize,
        encoder: EncoderKind,
        out: PathBuf,
    ) -> Self {
        PsdOptions {
            data,
            patch,
            atoms,
            lambda: DEFAULT_LAMBDA,
            encoder,
            conv: false,
            epochs: DEFAULT_EPOCHS,
            seed: 1,
            out,
            alpha: DEFAULT_ALPHA,
            patches: DEFAULT_PATCHES,
            batch: DEFAULT_BATCH,
            lr: DEFAULT_LR,
            encoder_epochs: DEFAULT_ENCODER_EPOCHS,
            encoder_lr: DEFAULT_ENCODER_LR,
            encoder_patches: DEFAULT_ENCODER_PATCHES,
            contrast: Some(DEFAULT_CONTRAST_EPS),
            target: EncoderTarget::default(),
            quiet: false,
        }
    }

    /// Typed errors naming the flag for values no run can use.
    pub fn validate(&self) -> Result<()> {
        let bad = |flag: &str, message: String| {
            Err(Error::Config {
                path: PathBuf::from(flag),
                message,
            })
        };
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return bad(
                "--lambda",
                format!("{}: λ must be a finite number > 0", self.lambda),
            );
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return bad(
                "--alpha",
                format!("{}: α must be a finite number ≥ 0", self.alpha),
            );
        }
        for (flag, v) in [("--lr", self.lr), ("--encoder-lr", self.encoder_lr)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(flag, format!("{v}: must be a finite number > 0"));
            }
        }
        for (flag, v) in [
            ("--atoms", self.atoms),
            ("--patch", self.patch),
            ("--epochs", self.epochs),
            ("--patches", self.patches),
            ("--encoder-patches", self.encoder_patches),
            ("--batch", self.batch),
        ] {
            if v == 0 {
                return bad(flag, "0: must be at least 1".into());
            }
        }
        if self.conv {
            if let EncoderKind::Lista { .. } = self.encoder {
                return bad(
                    "--encoder",
                    format!(
                        "{}: LISTA is not supported with --conv (use tanh or shrink)",
                        self.encoder
                    ),
                );
            }
            if self.patch.is_multiple_of(2) {
                return bad(
                    "--patch",
                    format!(
                        "{}: convolutional filters need an odd side (code maps are aligned \
                         with the image by padding (K − 1) / 2)",
                        self.patch
                    ),
                );
            }
        }
        Ok(())
    }
}

/// `<out>.energy.png`.
pub fn energy_png_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".energy.png");
    PathBuf::from(s)
}

/// Dictionary start: random training patches plus a little noise (no zero atoms), unit
/// columns, `[k, n]`.
fn init_dictionary(data: &[f32], k: usize, n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let count = data.len() / k;
    let mut d = vec![0.0f32; k * n];
    for j in 0..n {
        let p = &data[(j % count) * k..(j % count + 1) * k];
        for r in 0..k {
            d[r * n + j] = p[r] + 0.1 * normal(rng);
        }
    }
    for j in 0..n {
        let norm = (0..k).map(|r| d[r * n + j].powi(2)).sum::<f32>().sqrt();
        for r in 0..k {
            d[r * n + j] /= norm;
        }
    }
    d
}

/// Trains a PSD model on `be`, writing the checkpoint (and energy curve) after every epoch.
pub fn train<B: Backend>(be: &B, o: &PsdOptions) -> Result<PsdModel> {
    o.validate()?;
    if o.conv {
        return train_conv(be, o);
    }
    let ds = Dataset::open(&o.data)?;
    let popts = PatchOptions {
        size: o.patch,
        contrast: o.contrast,
    };
    let patches = ds.sample(Part::Train, o.patches, &popts, o.seed)?;
    let (k, n) = (o.patch * o.patch, o.atoms);
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0x95D0);
    let d0 = init_dictionary(&patches.data, k, n, &mut rng);
    let p0 = Problem::new(be, &d0, k, n, o.lambda)?;
    let mut enc = Encoder::new(
        be,
        o.encoder,
        k,
        n,
        &init_values(o.encoder, &d0, k, n, o.lambda, p0.lipschitz),
    )?;
    let dspec = ParamSpec {
        name: "dictionary",
        len: k * n,
        init: Init::Const(0.0),
        decay: false,
        constraint: Some(Constraint::UnitColumns { rows: k, cols: n }),
    };
    let mut dict = Param::new(be, dspec, &mut rng)?;
    be.upload_into(&mut dict.value, &d0)?;
    drop(p0);

    let mut meta = PsdMeta {
        encoder: o.encoder,
        conv: false,
        patch: o.patch,
        channels: 1,
        atoms: n,
        lambda: o.lambda,
        alpha: o.alpha,
        contrast: o.contrast,
        data_dir: o.data.clone(),
        seed: o.seed,
        epochs_done: 0,
        train_patches: patches.len(),
        history: Vec::new(),
    };
    let steps = patches.len().div_ceil(o.batch);
    let solve = SolveOptions {
        max_iter: 200,
        tol: 1e-3,
    };
    let mut order: Vec<usize> = (0..patches.len()).collect();
    let mut model = None;
    for epoch in 1..=o.epochs {
        let t0 = Instant::now();
        let progress = (epoch - 1) as f32 / o.epochs.max(2).saturating_sub(1) as f32;
        let lr = o.lr * (1.0 - 0.9 * progress);
        order.shuffle(&mut rng);
        let bar = progress_bar(o, steps, format!("{epoch}/{}", o.epochs))?;
        let (mut e_sum, mut g_sum, mut nz) = (0.0f64, 0.0f64, 0usize);
        for (step, idx) in order.chunks(o.batch).enumerate() {
            let batch = idx.len();
            let (x, host) = upload_batch(be, &patches, idx)?;
            let x_sq = host.iter().map(|v| v * v).sum::<f32>() / batch as f32;
            let mut trace = Trace::new(be, &enc, batch)?;
            enc.forward(be, &x, &mut trace)?;
            let dhost = be.download(&dict.value)?;
            let p = Problem::new(be, &dhost, k, n, o.lambda)?;
            let mut h = be.zeros(batch * n)?;
            be.copy(trace.code(), &mut h)?;
            fista(be, &p, &x, &mut h, batch, &solve)?;
            let eh = energy(be, &p, &x, &h, batch)?;
            let eg = energy(be, &p, &x, trace.code(), batch)?;
            let e_batch: f64 = eh.iter().map(|&v| v as f64).sum();
            if !e_batch.is_finite() {
                return Err(Error::Diverged {
                    epoch,
                    step,
                    loss: e_batch as f32,
                });
            }
            e_sum += e_batch;
            g_sum += eg.iter().map(|&v| v as f64).sum::<f64>();
            let hh = be.download(&h)?;
            nz += hh.iter().filter(|&&v| v != 0.0).count();
            let h_sq = hh.iter().map(|v| v * v).sum::<f32>() / batch as f32;

            // Encoder: gradient of the mean target w.r.t. its codes.
            let mut dcode = be.zeros(batch * n)?;
            let curv = code_grad(be, o, &p, &x, trace.code(), &h, batch, &mut dcode)?;
            enc.backward(be, &x, &trace, &dcode)?;
            let lrs: Vec<f32> = enc
                .params
                .iter()
                .map(|q| match q.name() {
                    "weight" => lr / (curv * x_sq.max(1e-6)),
                    "S" => lr / (curv * h_sq.max(1e-3)),
                    _ => lr / curv,
                })
                .collect();
            enc.sgd_update(be, &lrs, MOMENTUM)?;

            // Dictionary: ∇ ½‖x − D h*‖² = −(x − h* Dᵀ)ᵀ h*, batch mean.
            let inv = 1.0 / batch as f32;
            let mut r = be.zeros(batch * k)?;
            be.copy(&x, &mut r)?;
            be.gemm(false, true, batch, k, n, -1.0, &h, &p.d, 1.0, &mut r)?;
            be.gemm(true, false, k, n, batch, -inv, &r, &h, 0.0, &mut dict.grad)?;
            dict.sgd_update(be, lr / h_sq.max(1e-3), MOMENTUM, 0.0)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let count = patches.len() as f64;
        let log = PsdEpochLog {
            epoch,
            lr,
            energy: (e_sum / count) as f32,
            encoder_energy: (g_sum / count) as f32,
            nonzero_fraction: (nz as f64 / (count * n as f64)) as f32,
            seconds: t0.elapsed().as_secs_f32(),
        };
        let m = end_epoch(be, o, &mut meta, &dict, &enc, log)?;
        if !o.quiet {
            let l = meta.history.last().expect("just pushed");
            println!(
                "epoch {epoch}: E(x,h*) {:.4}  E(x,g(x)) {:.4}  ratio {:.4}  non-zeros {:.1}%  lr {:.3}  {:.1} s",
                l.energy,
                l.encoder_energy,
                l.encoder_energy / l.energy,
                100.0 * l.nonzero_fraction,
                l.lr,
                l.seconds
            );
        }
        model = Some(m);
    }
    // A larger, fresh sample for the encoder-only epochs (no FISTA per step there): it
    // narrows the gap between training and held-out energies.
    let patches = if o.encoder_epochs > 0 {
        ds.sample(Part::Train, o.encoder_patches, &popts, o.seed ^ 0xE0C0)?
    } else {
        patches
    };
    if let Some(m) = train_encoder(be, o, &patches, &dict, &mut enc, &mut meta, &mut rng)? {
        model = Some(m);
    }
    model.ok_or_else(|| Error::Other("no epoch ran".into()))
}

/// `dcode ← ∂/∂g` of the batch-mean encoder target ([`PsdOptions::target`]) at codes `g` of
/// `x [batch, k]` (`h*` the inferred codes, read by the regression term). Returns the
/// target's curvature in the code (`L`, plus `2α` with regression), at least `1e-6`.
#[allow(clippy::too_many_arguments)]
fn code_grad<B: Backend>(
    be: &B,
    o: &PsdOptions,
    p: &Problem<B>,
    x: &B::Tensor,
    g: &B::Tensor,
    h: &B::Tensor,
    batch: usize,
    dcode: &mut B::Tensor,
) -> Result<f32> {
    let (k, n) = (p.k, p.n);
    let inv = 1.0 / batch as f32;
    be.fill(dcode, 0.0)?;
    let mut curv = 0.0;
    if o.target != EncoderTarget::Regression {
        // ∇E(g) = −(x − g Dᵀ) D + λ sign(g)
        let mut r = be.zeros(batch * k)?;
        be.copy(x, &mut r)?;
        be.gemm(false, true, batch, k, n, -1.0, g, &p.d, 1.0, &mut r)?;
        be.gemm(false, false, batch, n, k, -inv, &r, &p.d, 0.0, dcode)?;
        be.add_sign(o.lambda * inv, g, dcode)?;
        curv = p.lipschitz;
    }
    if o.target != EncoderTarget::Energy {
        // 2α(g − h*)
        be.axpby(2.0 * o.alpha * inv, g, 1.0, dcode)?;
        be.axpby(-2.0 * o.alpha * inv, h, 1.0, dcode)?;
        curv += 2.0 * o.alpha;
    }
    Ok(curv.max(1e-6))
}

/// The encoder-only epochs (module docs): `d` frozen, Adam on the encoder's target, the
/// checkpoint written after every epoch. Appends to `meta.history` (the FISTA energy of the
/// frozen dictionary in `energy`, the same on every line).
#[allow(clippy::too_many_arguments)]
fn train_encoder<B: Backend>(
    be: &B,
    o: &PsdOptions,
    patches: &crate::patches::Patches,
    dict: &Param<B>,
    enc: &mut Encoder<B>,
    meta: &mut PsdMeta,
    rng: &mut ChaCha8Rng,
) -> Result<Option<PsdModel>> {
    if o.encoder_epochs == 0 {
        return Ok(None);
    }
    let (k, n) = (o.patch * o.patch, o.atoms);
    let count = patches.len();
    let dhost = be.download(&dict.value)?;
    let p = Problem::new(be, &dhost, k, n, o.lambda)?;
    // FISTA codes for the frozen dictionary, warm-started from the encoder: of every patch
    // when they are the regression target, else of the first REFERENCE_PATCHES (the log's
    // reference energy only).
    let t0 = Instant::now();
    let solve = SolveOptions {
        max_iter: 500,
        tol: 1e-4,
    };
    let all: Vec<usize> = (0..count).collect();
    let solved = if o.target == EncoderTarget::Energy {
        count.min(REFERENCE_PATCHES)
    } else {
        count
    };
    // Kept only where they are the regression target.
    let keep = o.target != EncoderTarget::Energy;
    let mut hstar = vec![0.0f32; if keep { solved * n } else { 0 }];
    let (mut e_ref, mut nz) = (0.0f64, 0usize);
    for idx in all[..solved].chunks(o.batch) {
        let (x, _) = upload_batch(be, patches, idx)?;
        let mut trace = Trace::new(be, enc, idx.len())?;
        enc.forward(be, &x, &mut trace)?;
        let mut h = be.zeros(idx.len() * n)?;
        be.copy(trace.code(), &mut h)?;
        fista(be, &p, &x, &mut h, idx.len(), &solve)?;
        e_ref += energy(be, &p, &x, &h, idx.len())?
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>();
        let hh = be.download(&h)?;
        nz += hh.iter().filter(|&&v| v != 0.0).count();
        if keep {
            hstar[idx[0] * n..(idx[0] + idx.len()) * n].copy_from_slice(&hh);
        }
    }
    let e_ref = (e_ref / solved as f64) as f32;
    let nonzero_fraction = (nz as f64 / (solved * n) as f64) as f32;
    let mut setup = t0.elapsed().as_secs_f32();

    let mut moments = enc
        .params
        .iter()
        .map(|q| Ok((be.zeros(q.spec.len)?, be.zeros(q.spec.len)?)))
        .collect::<Result<Vec<_>>>()?;
    let steps = count.div_ceil(o.batch);
    let total = (o.encoder_epochs * steps) as f32;
    let mut order = all;
    let mut t = 0u32;
    let mut model = None;
    for epoch in 1..=o.encoder_epochs {
        let t0 = Instant::now();
        order.shuffle(rng);
        let bar = progress_bar(o, steps, format!("encoder {epoch}/{}", o.encoder_epochs))?;
        let (mut g_sum, mut lr) = (0.0f64, o.encoder_lr);
        for (step, idx) in order.chunks(o.batch).enumerate() {
            let batch = idx.len();
            let (x, _) = upload_batch(be, patches, idx)?;
            let mut trace = Trace::new(be, enc, batch)?;
            enc.forward(be, &x, &mut trace)?;
            let eg: f64 = energy(be, &p, &x, trace.code(), batch)?
                .iter()
                .map(|&v| v as f64)
                .sum();
            if !eg.is_finite() {
                return Err(Error::Diverged {
                    epoch: o.epochs + epoch,
                    step,
                    loss: eg as f32,
                });
            }
            g_sum += eg;
            let h = if o.target == EncoderTarget::Energy {
                be.zeros(0)?
            } else {
                let mut hh = Vec::with_capacity(batch * n);
                for &i in idx {
                    hh.extend_from_slice(&hstar[i * n..(i + 1) * n]);
                }
                be.upload(&hh)?
            };
            let mut dcode = be.zeros(batch * n)?;
            code_grad(be, o, &p, &x, trace.code(), &h, batch, &mut dcode)?;
            enc.backward(be, &x, &trace, &dcode)?;
            // Cosine decay from `encoder_lr` to zero over all encoder steps.
            lr = o.encoder_lr * 0.5 * (1.0 + (std::f32::consts::PI * t as f32 / total).cos());
            t += 1;
            for (q, (m, v)) in enc.params.iter_mut().zip(&mut moments) {
                be.adam_update(&mut q.value, m, v, &q.grad, lr, ADAM.0, ADAM.1, t)?;
                q.project(be)?;
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let log = PsdEpochLog {
            epoch: meta.epochs_done + 1,
            lr,
            energy: e_ref,
            encoder_energy: (g_sum / count as f64) as f32,
            nonzero_fraction,
            seconds: t0.elapsed().as_secs_f32() + std::mem::take(&mut setup),
        };
        let m = end_epoch(be, o, meta, dict, enc, log)?;
        if !o.quiet {
            let l = meta.history.last().expect("just pushed");
            println!(
                "encoder epoch {epoch}: E(x,h*) {:.4}  E(x,g(x)) {:.4}  ratio {:.4}  lr {:.2e}  {:.1} s",
                l.energy,
                l.encoder_energy,
                l.encoder_energy / l.energy,
                l.lr,
                l.seconds
            );
        }
        model = Some(m);
    }
    Ok(model)
}

/// Records an epoch (`log.epoch` becomes `epochs_done`) and writes the checkpoint and its
/// energy curve.
fn end_epoch<B: Backend>(
    be: &B,
    o: &PsdOptions,
    meta: &mut PsdMeta,
    dict: &Param<B>,
    enc: &Encoder<B>,
    log: PsdEpochLog,
) -> Result<PsdModel> {
    meta.epochs_done = log.epoch;
    meta.history.push(log);
    let m = host_model(be, meta, dict, enc)?;
    m.save(&o.out)?;
    energy_curve(&o.out, meta)?;
    Ok(m)
}

/// The patches `idx` as one `[idx.len(), k]` batch on the backend, and its host copy.
fn upload_batch<B: Backend>(
    be: &B,
    patches: &crate::patches::Patches,
    idx: &[usize],
) -> Result<(B::Tensor, Vec<f32>)> {
    let mut host = Vec::with_capacity(idx.len() * patches.size * patches.size);
    for &i in idx {
        host.extend_from_slice(patches.patch(i));
    }
    Ok((be.upload(&host)?, host))
}

/// A progress bar over `steps` mini-batches (hidden with `quiet`).
fn progress_bar(o: &PsdOptions, steps: usize, msg: String) -> Result<ProgressBar> {
    let bar = if o.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(steps as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("epoch {msg} [{bar:30}] {pos}/{len} {elapsed}<{eta}")
            .map_err(|e| Error::Other(format!("progress bar template: {e}")))?
            .progress_chars("=> "),
    );
    bar.set_message(msg);
    Ok(bar)
}

/// Mini-batch of `--conv` training when `--batch` is left at [`DEFAULT_BATCH`] (whole
/// images per step rather than patches).
pub const CONV_DEFAULT_BATCH: usize = 16;

/// `kestrel psd train --conv`: convolutional PSD ([`super::conv`]) on the first
/// `o.patches` whole training images (`(p/255 − mean) / std` with the training part's pixel
/// statistics; no contrast normalization), `o.patch` the (odd) filter side. `--lr` is a
/// fraction of each tensor's inverse curvature for the encoder and the decoder alike (see
/// [`super::conv`]). Writes the checkpoint (`meta.conv = true`)
/// and its energy curve after every epoch.
pub fn train_conv<B: Backend>(be: &B, o: &PsdOptions) -> Result<PsdModel> {
    use super::conv::{train_conv_psd, ConvNonlin, ConvPsdOptions};
    let ds = Dataset::open(&o.data)?;
    let norm = ds.pixel_stats(Part::Train);
    let mut images = ds.images(Part::Train, &norm);
    images.truncate(o.patches);
    let nonlin = match o.encoder {
        EncoderKind::Tanh => ConvNonlin::Tanh,
        EncoderKind::Shrink => ConvNonlin::Shrink,
        EncoderKind::Lista { .. } => {
            return Err(Error::Config {
                path: "--encoder".into(),
                message: format!("{}: LISTA is not supported with --conv", o.encoder),
            })
        }
    };
    let co = ConvPsdOptions {
        kernel: o.patch,
        atoms: o.atoms,
        lambda: o.lambda,
        alpha: o.alpha,
        nonlin,
        epochs: o.epochs,
        seed: o.seed,
        batch: if o.batch == DEFAULT_BATCH {
            CONV_DEFAULT_BATCH
        } else {
            o.batch
        },
        lr: o.lr,
        dict_lr: o.lr,
        quiet: o.quiet,
        ..ConvPsdOptions::default()
    };
    let mut meta = PsdMeta {
        encoder: o.encoder,
        conv: true,
        patch: o.patch,
        channels: 1,
        atoms: o.atoms,
        lambda: o.lambda,
        alpha: o.alpha,
        contrast: None,
        data_dir: o.data.clone(),
        seed: o.seed,
        epochs_done: 0,
        train_patches: images.len(),
        history: Vec::new(),
    };
    let mut last = None;
    train_conv_psd(be, &images, 1, &co, |m| {
        let l = m
            .history
            .last()
            .copied()
            .ok_or_else(|| Error::Other("no epoch ran".into()))?;
        meta.epochs_done = l.epoch;
        meta.history.push(PsdEpochLog {
            epoch: l.epoch,
            lr: l.lr,
            energy: l.energy,
            encoder_energy: l.encoder_energy,
            nonzero_fraction: l.nonzero_fraction,
            seconds: l.seconds,
        });
        let model = m.to_model(meta.clone());
        model.save(&o.out)?;
        energy_curve(&o.out, &meta)?;
        last = Some(model);
        Ok(())
    })?;
    last.ok_or_else(|| Error::Other("no epoch ran".into()))
}

/// The host model from the training state.
fn host_model<B: Backend>(
    be: &B,
    meta: &PsdMeta,
    dict: &Param<B>,
    enc: &Encoder<B>,
) -> Result<PsdModel> {
    let values = enc.values(be)?;
    let mut v = values.iter().cloned();
    let (weight, bias, scale) = (
        v.next().unwrap_or_default(),
        v.next().unwrap_or_default(),
        v.next().unwrap_or_default(),
    );
    let lateral = v.next();
    let (gain, theta) = match meta.encoder {
        EncoderKind::Tanh => (Some(scale), None),
        EncoderKind::Shrink => (None, Some(scale)),
        EncoderKind::Lista { steps } => (None, Some(lista_theta(&values, steps.into()))),
    };
    Ok(PsdModel {
        meta: meta.clone(),
        dictionary: be.download(&dict.value)?,
        weight,
        bias,
        gain,
        theta,
        lateral,
    })
}

/// Writes `<out>.energy.png`: mean energies per epoch.
fn energy_curve(out: &Path, meta: &PsdMeta) -> Result<()> {
    let pts = |f: fn(&PsdEpochLog) -> f32| -> Vec<(f64, f64)> {
        meta.history
            .iter()
            .map(|l| (l.epoch as f64, f(l) as f64))
            .collect()
    };
    let (fista_pts, enc_pts) = (pts(|l| l.energy), pts(|l| l.encoder_energy));
    visualize::curve_png(
        &energy_png_path(out),
        &format!(
            "PSD {} encoder, {} atoms, λ = {}",
            meta.encoder, meta.atoms, meta.lambda
        ),
        &[
            ("FISTA codes E(x, h*)", &fista_pts),
            ("encoder E(x, g(x))", &enc_pts),
        ],
        "epoch",
        "mean energy",
    )
}
