//! Architectures and training settings, read from TOML (`examples/archs/*.toml`).
//!
//! ```toml
//! name = "lenet"
//! input = [1, 28, 28]
//! loss = "nll"            # or "hinge"
//!
//! [[layer]]
//! type = "conv2d"
//! out = 6
//! kernel = 5
//! pad = 2
//!
//! [[layer]]
//! type = "relu"
//!
//! [train]
//! epochs = 15
//! lr = 0.05
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One layer of an architecture, as written in TOML (`type = "..."`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// Convolution with `out` filters of `kernel × kernel`, zero padding `pad`.
    Conv2d {
        /// Output channels.
        out: usize,
        /// Kernel side.
        kernel: usize,
        /// Stride.
        #[serde(default = "one")]
        stride: usize,
        /// Zero padding.
        #[serde(default)]
        pad: usize,
    },
    /// Fully connected to `out` units (the input is flattened implicitly).
    Linear {
        /// Output units.
        out: usize,
    },
    /// `max(0, x)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `|x|` (Jarrett et al.'s rectification).
    Abs,
    /// Max pooling, no padding.
    #[serde(rename = "maxpool2d")]
    MaxPool2d {
        /// Window.
        kernel: usize,
        /// Stride (defaults to the window).
        stride: Option<usize>,
    },
    /// Average pooling, no padding.
    #[serde(rename = "avgpool2d")]
    AvgPool2d {
        /// Window.
        kernel: usize,
        /// Stride (defaults to the window).
        stride: Option<usize>,
    },
    /// Local contrast normalization with a `size × size` Gaussian window.
    Lcn {
        /// Window side (odd).
        #[serde(default = "nine")]
        size: usize,
        /// Gaussian standard deviation in pixels.
        #[serde(default = "two")]
        sigma: f32,
        /// Divisor floor.
        #[serde(default = "lcn_eps")]
        eps: f32,
    },
    /// Dropout with drop probability `p` (training only; not exported).
    Dropout {
        /// Probability of zeroing a unit.
        p: f32,
    },
    /// `[c, h, w]` → `[c·h·w]`.
    Flatten,
}

fn one() -> usize {
    1
}
fn nine() -> usize {
    9
}
fn two() -> f32 {
    2.0
}
fn lcn_eps() -> f32 {
    1e-4
}

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Softmax + negative log-likelihood (the seed's strategy #1).
    #[default]
    Nll,
    /// Multi-class margin loss `Σ_{j≠y} max(0, m − (s_y − s_j))` (strategy #2), margin 1.
    /// Its gradient on the true class can be 9× the NLL's (10 classes), so it wants a lower
    /// learning rate: `lenet5` collapses at 0.05 and trains at 0.01.
    Hinge,
}

/// How the learning rate falls over training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// Constant.
    Constant,
    /// Exponential from `lr` to `lr / factor` over all steps (the seed: ~1000×).
    Exponential {
        /// Total decay factor at the end of training.
        factor: f32,
    },
    /// Cosine from `lr` to `lr / factor`.
    Cosine {
        /// Total decay factor at the end of training.
        factor: f32,
    },
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epoch period.
        every: usize,
        /// Factor.
        gamma: f32,
    },
}

impl Default for LrSchedule {
    fn default() -> Self {
        LrSchedule::Exponential { factor: 1000.0 }
    }
}

impl LrSchedule {
    /// Learning rate at `progress ∈ [0, 1]` of training (epoch-based for `Step`).
    pub fn lr(&self, base: f32, progress: f32, epoch: usize) -> f32 {
        let p = progress.clamp(0.0, 1.0);
        match *self {
            LrSchedule::Constant => base,
            LrSchedule::Exponential { factor } => base * factor.powf(-p),
            LrSchedule::Cosine { factor } => {
                let min = base / factor;
                min + 0.5 * (base - min) * (1.0 + (std::f32::consts::PI * p).cos())
            }
            LrSchedule::Step { every, gamma } => base * gamma.powi((epoch / every.max(1)) as i32),
        }
    }
}

/// Optimization and augmentation settings; every field has a default and can be
/// overridden on the command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch: usize,
    /// Initial learning rate.
    pub lr: f32,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// Epochs of linear learning-rate warm-up from 0 (fractions allowed).
    pub warmup: f32,
    /// SGD momentum (`Δ ← μΔ + ∂L/∂θ`).
    pub momentum: f32,
    /// L2 weight decay on weights (not biases).
    pub weight_decay: f32,
    /// Random left-right mirroring, for mirror-symmetric classes only. Off unless asked for
    /// (`kestrel train --flip`): the shipped architectures assume nothing about the data.
    pub flip: bool,
    /// Random shifts of up to ± this many pixels (input jitter).
    pub jitter: usize,
    /// Standard deviation of Gaussian noise added to normalized inputs.
    pub noise: f32,
    /// Images held out of the training set for validation: `None` holds out
    /// [`default_validation`] of them (10%, at most 5,000), `Some(0)` none.
    pub validation: Option<usize>,
    /// Seed for initialization, shuffling, dropout and augmentation.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 15,
            batch: 64,
            lr: 0.05,
            schedule: LrSchedule::default(),
            warmup: 0.0,
            momentum: 0.9,
            weight_decay: 5e-4,
            flip: false,
            jitter: 0,
            noise: 0.0,
            validation: None,
            seed: 1,
        }
    }
}

/// Most images the default validation split holds out.
pub const DEFAULT_VALIDATION_CAP: usize = 5000;

/// The default validation split for `n` training images: 10% of them, at most
/// [`DEFAULT_VALIDATION_CAP`], so that a small dataset keeps 90% of its images for training.
pub fn default_validation(n: usize) -> usize {
    (n / 10).min(DEFAULT_VALIDATION_CAP)
}

impl TrainConfig {
    /// Learning rate at `step` (0-based over the whole run) of `total` steps, with
    /// `per_epoch` steps an epoch: the schedule, times the linear warm-up while it lasts.
    pub fn lr_at(&self, step: usize, total: usize, per_epoch: usize) -> f32 {
        let progress = step as f32 / total.max(1) as f32;
        let lr = self.schedule.lr(self.lr, progress, step / per_epoch.max(1));
        let warm = self.warmup * per_epoch as f32;
        if (step as f32) < warm {
            lr * (step + 1) as f32 / warm
        } else {
            lr
        }
    }
}

/// A whole architecture file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arch {
    /// Name (`lenet`).
    pub name: String,
    /// Input `[c, h, w]`.
    pub input: [usize; 3],
    /// Loss.
    #[serde(default)]
    pub loss: LossKind,
    /// Layers in order; the last one's output units are the classes.
    #[serde(rename = "layer")]
    pub layers: Vec<LayerSpec>,
    /// Training defaults for this architecture.
    #[serde(default)]
    pub train: TrainConfig,
}

/// Architectures shipped with Kestrel, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("lenet", include_str!("../../examples/archs/lenet.toml")),
    ("lenet5", include_str!("../../examples/archs/lenet5.toml")),
    ("jarrett", include_str!("../../examples/archs/jarrett.toml")),
];

impl Arch {
    /// Parses TOML text; `origin` names the source in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Arch> {
        toml::from_str(text).map_err(|e| Error::Config {
            path: PathBuf::from(origin),
            message: e.to_string(),
        })
    }

    /// A built-in name (`lenet`, `lenet5`, `jarrett`) or a path to a TOML file.
    pub fn load(name_or_path: &str) -> Result<Arch> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Arch::from_toml(text, name_or_path);
        }
        let path = Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|e| {
            let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            Error::Config {
                path: path.to_path_buf(),
                message: format!(
                    "not a built-in architecture ({}) and not a readable file: {e}",
                    names.join(", ")
                ),
            }
        })?;
        Arch::from_toml(&text, name_or_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Architecture files describe networks: none of the shipped ones turns on an
    /// augmentation that assumes something about the data (flips are wrong for digits).
    #[test]
    fn shipped_architectures_assume_nothing_about_the_data() {
        for (name, _) in BUILTIN {
            let arch = Arch::load(name).unwrap();
            assert!(!arch.train.flip, "{name} flips by default");
            assert_eq!(arch.train.validation, None, "{name} sets a validation size");
        }
    }

    #[test]
    fn default_validation_is_a_tenth_capped() {
        assert_eq!(default_validation(8000), 800);
        assert_eq!(default_validation(60_000), DEFAULT_VALIDATION_CAP);
        assert_eq!(default_validation(9), 0);
    }
}
