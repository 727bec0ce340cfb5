//! The training loop: mini-batch SGD with momentum, weight decay, a learning-rate schedule,
//! input jitter and noise, a validation split, a progress bar and an atomic checkpoint per
//! epoch. Deterministic for a given seed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::Backend;
use crate::checkpoint::{Checkpoint, EpochLog};
use crate::config::{default_validation, Arch, TrainConfig, DEFAULT_VALIDATION_CAP};
use crate::data::{self, Augment, Images, Normalize, Split};
use crate::error::{Error, Result};
use crate::nn::{mix, weight_std, Network, Op};

/// What to train and where to put it.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The architecture.
    pub arch: Arch,
    /// Settings (the arch's `[train]` table with command-line overrides applied).
    pub config: TrainConfig,
    /// MNIST-format directory or image folder ([`data::load_with`]).
    pub data_dir: PathBuf,
    /// Leave out unreadable pictures of an image folder (with a warning) instead of failing.
    pub skip_bad_images: bool,
    /// Checkpoint path, rewritten after every epoch.
    pub out: PathBuf,
    /// Use only `limit` training images (for quick runs and tests): the first ones, or for an
    /// image folder ones spread over the classes ([`data::Loaded::limit`]).
    pub limit: Option<usize>,
    /// Continue from this checkpoint (its epochs count towards `config.epochs`).
    pub resume: Option<PathBuf>,
    /// No progress bar or per-epoch lines.
    pub quiet: bool,
    /// Initialize the first convolution from a convolutional PSD encoder (not with `resume`).
    pub init_from: Option<InitFrom>,
}

/// How `--init-scale` rescales the PSD encoder's filters (and bias) for the convnet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitScale {
    /// Multiply by this factor (`1` keeps the PSD filters as they are).
    Factor(f32),
    /// Rescale so the filters' RMS equals the random init's standard deviation for that
    /// layer ([`crate::nn::weight_std`], He or LeCun).
    Std,
}

impl std::str::FromStr for InitScale {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "std" {
            return Ok(InitScale::Std);
        }
        match s.parse::<f32>() {
            Ok(f) if f > 0.0 && f.is_finite() => Ok(InitScale::Factor(f)),
            _ => Err(Error::Config {
                path: "--init-scale".into(),
                message: format!("expected a positive number or `std`, got {s:?}"),
            }),
        }
    }
}

/// `kestrel train --init-from <psd checkpoint> [--init-scale S]`: the seed's layer-wise
/// protocol, unsupervised pretraining of the first layer, then supervised fine-tuning.
#[derive(Debug, Clone, PartialEq)]
pub struct InitFrom {
    /// A `psd` checkpoint with `conv = true`.
    pub path: PathBuf,
    /// Rescaling of the filters.
    pub scale: InitScale,
}

/// What [`init_first_conv`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InitReport {
    /// Index of the first convolution.
    pub layer: usize,
    /// The factor the filters and bias were multiplied by.
    pub factor: f32,
}

/// The encoder tensors of a convolutional PSD checkpoint: its shape `[n, c, K, K]`,
/// `weight`, and the bias the convolution gets: `b` for tanh encoders, `b − θ` for shrinkage
/// ones (so a ReLU after the convolution computes the positive half of `shrink_θ(W ⋆ x + b)`).
/// The checkpoint is read and checked by [`PsdModel::from_envelope`](crate::psd::PsdModel);
/// another kind or a dense PSD is an [`Error::InitFromKind`] naming the file.
pub fn psd_encoder_filters(path: &Path) -> Result<([usize; 4], Vec<f32>, Vec<f32>)> {
    let env = crate::checkpoint::Envelope::load(path)?;
    if env.kind != crate::psd::KIND_PSD {
        return Err(Error::InitFromKind {
            path: path.to_path_buf(),
            found: format!("a {} checkpoint", env.kind),
        });
    }
    let m = crate::psd::PsdModel::from_envelope(env, path)?;
    if !m.meta.conv {
        return Err(Error::InitFromKind {
            path: path.to_path_buf(),
            found: format!(
                "a dense (patch) PSD checkpoint ({}×{} patches, {} atoms)",
                m.meta.patch, m.meta.patch, m.meta.atoms
            ),
        });
    }
    if m.lateral.is_some() {
        return Err(Error::InitFromKind {
            path: path.to_path_buf(),
            found: format!(
                "a {} PSD checkpoint (LISTA has no convolution form)",
                m.meta.encoder
            ),
        });
    }
    let shape = [m.meta.atoms, m.meta.channels, m.meta.patch, m.meta.patch];
    let mut bias = m.bias;
    if let Some(theta) = &m.theta {
        bias.iter_mut().zip(theta).for_each(|(b, t)| *b -= t);
    }
    Ok((shape, m.weight, bias))
}

/// Sets the first convolution of `net` from the convolutional PSD encoder at `init.path`
/// (weights and bias, times the [`InitScale`] factor). Typed errors: a checkpoint that is
/// not a convolutional PSD ([`Error::InitFromKind`]), filters whose `[out, in, k, k]` differ
/// from the convolution's ([`Error::InitFromShape`]), an architecture without convolution.
pub fn init_first_conv<B: Backend>(net: &mut Network<B>, init: &InitFrom) -> Result<InitReport> {
    let (got, weight, bias) = psd_encoder_filters(&init.path)?;
    let ops: Vec<Op> = net.layers().iter().map(|l| l.op).collect();
    let Some((layer, s)) = ops.iter().enumerate().find_map(|(i, op)| match op {
        Op::Conv2d(s) => Some((i, *s)),
        _ => None,
    }) else {
        return Err(Error::NoFilters {
            path: init.path.clone(),
            message: format!(
                "architecture {} has no convolution to initialize",
                net.arch().name
            ),
        });
    };
    let expected = [s.out_c, s.in_c, s.kernel, s.kernel];
    if expected != got {
        return Err(Error::InitFromShape {
            path: init.path.clone(),
            arch: net.arch().name.clone(),
            layer,
            expected,
            got,
        });
    }
    let factor = match init.scale {
        InitScale::Factor(f) => f,
        InitScale::Std => {
            let rms = (weight.iter().map(|v| (*v as f64).powi(2)).sum::<f64>()
                / weight.len() as f64)
                .sqrt();
            if rms > 0.0 {
                (weight_std(&ops, layer) as f64 / rms) as f32
            } else {
                1.0
            }
        }
    };
    let mut params = net.params()?;
    for entry in params.iter_mut().filter(|p| p.layer == layer) {
        for t in &mut entry.tensors {
            let src = match t.name.as_str() {
                "weight" => &weight,
                "bias" => &bias,
                _ => continue,
            };
            t.data = src.iter().map(|v| v * factor).collect();
        }
    }
    net.set_params(&params)?;
    Ok(InitReport { layer, factor })
}

/// Index of the largest value (first on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Eval-mode predictions of `net` for images `idx` of `set`.
pub fn predict<B: Backend>(
    net: &mut Network<B>,
    set: &Images,
    idx: &[usize],
    norm: Normalize,
) -> Result<Vec<usize>> {
    let classes = net.num_classes();
    let mut x = Vec::new();
    let mut out = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(500) {
        norm.batch(set, chunk, &mut x);
        let logits = net.predict(&x, chunk.len())?;
        out.extend(logits.chunks(classes).map(argmax));
    }
    Ok(out)
}

/// Fraction of `idx` whose prediction is wrong (`NaN` for no images).
pub fn error_rate<B: Backend>(
    net: &mut Network<B>,
    set: &Images,
    idx: &[usize],
    norm: Normalize,
) -> Result<f32> {
    if idx.is_empty() {
        return Ok(f32::NAN);
    }
    let pred = predict(net, set, idx, norm)?;
    let wrong = pred
        .iter()
        .zip(idx)
        .filter(|(p, &i)| **p != set.labels[i] as usize)
        .count();
    Ok(wrong as f32 / idx.len() as f32)
}

/// Float test accuracy of a network on a whole split.
pub fn accuracy<B: Backend>(net: &mut Network<B>, set: &Images, norm: Normalize) -> Result<f32> {
    let idx: Vec<usize> = (0..set.n).collect();
    Ok(1.0 - error_rate(net, set, &idx, norm)?)
}

fn check_input(arch: &Arch, set: &Images, path: &Path) -> Result<()> {
    if arch.input[0] != 1 {
        return Err(Error::Config {
            path: path.to_path_buf(),
            message: format!(
                "architecture {} expects {} input channels; the trainer reads images as 1 \
                 (grayscale) channel only",
                arch.name, arch.input[0]
            ),
        });
    }
    if arch.input != [1, set.rows, set.cols] {
        return Err(Error::Config {
            path: path.to_path_buf(),
            message: format!(
                "architecture {} expects input {:?} but the data has 1×{}×{} images",
                arch.name, arch.input, set.rows, set.cols
            ),
        });
    }
    Ok(())
}

/// The training log's line on the validation split: how many images, out of how many,
/// chosen how, and how to change it.
fn validation_note(n_val: usize, n: usize, cfg: &TrainConfig) -> String {
    if n_val == 0 {
        return "validation: none held out (--validation 0); no validation error per epoch".into();
    }
    let why = match cfg.validation {
        None => format!(
            "the default: 10% of the training split, at most {DEFAULT_VALIDATION_CAP}; \
             --validation N to change"
        ),
        Some(_) => "--validation".into(),
    };
    format!(
        "validation: {n_val} of the {n} training images held out ({:.1}%, drawn at random with \
         seed {}; {why})",
        100.0 * n_val as f64 / n as f64,
        cfg.seed
    )
}

/// Trains on `backend`, writing a checkpoint per epoch; returns the final checkpoint with
/// its float test accuracy filled in.
pub fn train<B: Backend>(backend: B, opts: &TrainOptions) -> Result<Checkpoint> {
    let cfg = &opts.config;
    if cfg.batch == 0 || cfg.epochs == 0 || !(cfg.lr > 0.0 && cfg.lr.is_finite()) {
        return Err(Error::Config {
            path: opts.out.clone(),
            message: format!(
                "need batch > 0, epochs > 0 and a positive lr (got {}, {}, {})",
                cfg.batch, cfg.epochs, cfg.lr
            ),
        });
    }
    let load = data::LoadOptions {
        size: Some([opts.arch.input[1], opts.arch.input[2]]),
        skip_bad_images: opts.skip_bad_images,
        classes: None,
    };
    let (train_set, test_set) = (
        data::load_with(&opts.data_dir, Split::Train, &load)?,
        data::load_with(&opts.data_dir, Split::Test, &load)?,
    );
    for warning in [&train_set, &test_set].iter().filter_map(|l| l.warning()) {
        eprintln!("warning: {warning}");
    }
    let classes_found = train_set.classes.clone();
    let full = match opts.limit {
        Some(limit) => train_set.limit(limit).images,
        None => train_set.images,
    };
    let test = test_set.images;
    check_input(&opts.arch, &full, &opts.data_dir)?;

    let mut net = Network::new(backend, &opts.arch, cfg.seed)?;
    let classes = net.num_classes();
    if let Some(names) = classes_found.as_ref().filter(|n| n.len() != classes) {
        return Err(Error::Config {
            path: opts.data_dir.clone(),
            message: format!(
                "{} class folders ({}) but the architecture {} has {classes} outputs",
                names.len(),
                names.join(", "),
                opts.arch.name
            ),
        });
    }
    if let Some(bad) = full
        .labels
        .iter()
        .chain(&test.labels)
        .find(|&&l| l as usize >= classes)
    {
        return Err(Error::Config {
            path: opts.data_dir.clone(),
            message: format!("label {bad} found but the architecture has {classes} outputs"),
        });
    }

    // A fixed, seeded hold-out split.
    let mut order: Vec<usize> = (0..full.n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(cfg.seed, 0x5EED)));
    let n_val = match cfg.validation {
        None => default_validation(full.n),
        Some(v) if v < full.n => v,
        Some(v) => {
            return Err(Error::Config {
                path: opts.data_dir.clone(),
                message: format!(
                    "--validation {v} would hold out every one of the {} training images",
                    full.n
                ),
            })
        }
    };
    let (train_idx, val_idx) = order.split_at(full.n - n_val);
    let mut train_idx = train_idx.to_vec();
    let val_idx = val_idx.to_vec();

    if let Some(init) = &opts.init_from {
        if opts.resume.is_some() {
            return Err(Error::Config {
                path: init.path.clone(),
                message: "--init-from starts a new run; it cannot be combined with --resume".into(),
            });
        }
        let r = init_first_conv(&mut net, init)?;
        if !opts.quiet {
            println!(
                "layer {} (conv2d) initialized from {} (filters and bias × {:.4})",
                r.layer,
                init.path.display(),
                r.factor
            );
        }
    }
    let mut ckpt = match &opts.resume {
        Some(path) => {
            let c = Checkpoint::load(path)?;
            if c.arch != opts.arch {
                return Err(Error::Checkpoint {
                    path: path.clone(),
                    message: "architecture differs from --arch".into(),
                });
            }
            net.set_params(&c.params)?;
            net.set_velocities(&c.velocities)?;
            Checkpoint {
                train: cfg.clone(),
                ..c
            }
        }
        None => {
            let (mean, std) = full.pixel_stats();
            Checkpoint {
                arch: opts.arch.clone(),
                train: cfg.clone(),
                normalize: Normalize { mean, std },
                classes: classes_found
                    .clone()
                    .unwrap_or_else(|| data::class_names(&opts.data_dir, classes)),
                data_dir: opts.data_dir.clone(),
                train_samples: train_idx.len(),
                epochs_done: 0,
                history: Vec::new(),
                test_accuracy: None,
                params: Vec::new(),
                velocities: Vec::new(),
            }
        }
    };
    let norm = ckpt.normalize;
    let aug = Augment {
        flip: cfg.flip,
        jitter: cfg.jitter,
        noise: cfg.noise,
    };
    let background = norm.apply(0);
    let steps_per_epoch = train_idx.len().div_ceil(cfg.batch);
    let total_steps = (steps_per_epoch * cfg.epochs).max(1);
    let img_len = full.rows * full.cols;

    if !opts.quiet {
        println!(
            "training {} ({} parameters) on {} images from {}, {} epochs, batch {}",
            opts.arch.name,
            net.num_params(),
            train_idx.len(),
            opts.data_dir.display(),
            cfg.epochs,
            cfg.batch
        );
        println!("{}", validation_note(val_idx.len(), full.n, cfg));
        if cfg.flip {
            println!(
                "augmentation: random left-right flips (--flip; for mirror-symmetric classes)"
            );
        }
    }
    let mut x = Vec::with_capacity(cfg.batch * img_len);
    let mut labels = Vec::with_capacity(cfg.batch);
    for epoch in ckpt.epochs_done..cfg.epochs {
        let start = Instant::now();
        train_idx.sort_unstable();
        train_idx.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(
            cfg.seed,
            1 + epoch as u64,
        )));
        let bar = if opts.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(steps_per_epoch as u64)
        };
        bar.set_style(
            ProgressStyle::with_template("epoch {msg} [{bar:30}] {pos}/{len} {elapsed}<{eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let mut lr = cfg.lr;
        for (step, batch) in train_idx.chunks(cfg.batch).enumerate() {
            let global = epoch * steps_per_epoch + step;
            lr = cfg.lr_at(global, total_steps, steps_per_epoch);
            norm.batch(&full, batch, &mut x);
            if cfg.flip || cfg.jitter > 0 || cfg.noise > 0.0 {
                let mut rng = ChaCha8Rng::seed_from_u64(mix(cfg.seed, (global as u64) << 8 | 2));
                for img in x.chunks_mut(img_len) {
                    aug.apply(img, full.rows, full.cols, background, &mut rng);
                }
            }
            labels.clear();
            labels.extend(batch.iter().map(|&i| full.labels[i]));
            let stats = net.train_step(&x, &labels, mix(cfg.seed, (global as u64) << 8 | 3))?;
            if !stats.loss.is_finite() {
                return Err(Error::Diverged {
                    epoch: epoch + 1,
                    step,
                    loss: stats.loss,
                });
            }
            net.sgd_update(lr, cfg.momentum, cfg.weight_decay)?;
            loss_sum += stats.loss as f64 * batch.len() as f64;
            correct += stats.correct;
            seen += batch.len();
            if step % 16 == 0 {
                bar.set_message(format!(
                    "{}/{} loss {:.4}",
                    epoch + 1,
                    cfg.epochs,
                    loss_sum / seen as f64
                ));
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let seconds = start.elapsed().as_secs_f32();
        let val_error = if val_idx.is_empty() {
            None
        } else {
            Some(error_rate(&mut net, &full, &val_idx, norm)?)
        };
        let log = EpochLog {
            epoch: epoch + 1,
            lr,
            train_loss: (loss_sum / seen.max(1) as f64) as f32,
            train_error: 1.0 - correct as f32 / seen.max(1) as f32,
            val_error,
            seconds,
        };
        if !opts.quiet {
            println!(
                "epoch {:>3}/{}  lr {:.2e}  loss {:.4}  train err {:6.2}%  val err {:>7}  {:.2}s",
                log.epoch,
                cfg.epochs,
                log.lr,
                log.train_loss,
                100.0 * log.train_error,
                log.val_error
                    .map_or("-".into(), |v| format!("{:.2}%", 100.0 * v)),
                log.seconds
            );
        }
        ckpt.history.push(log);
        ckpt.epochs_done = epoch + 1;
        ckpt.params = net.params()?;
        ckpt.velocities = net.velocities()?;
        ckpt.save(&opts.out)?;
    }
    let acc = accuracy(&mut net, &test, norm)?;
    ckpt.test_accuracy = Some(acc);
    ckpt.params = net.params()?;
    ckpt.velocities = net.velocities()?;
    ckpt.save(&opts.out)?;
    if !opts.quiet {
        println!(
            "float test accuracy: {:.2}% on {} images; checkpoint {}",
            100.0 * acc,
            test.n,
            opts.out.display()
        );
    }
    Ok(ckpt)
}
