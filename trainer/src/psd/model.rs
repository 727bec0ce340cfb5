//! The PSD checkpoint: a trained dictionary and feed-forward encoder, on the host.
//!
//! Stored in a [`checkpoint::Envelope`] of kind [`KIND_PSD`]: `meta` is the JSON of
//! [`PsdMeta`]; layer 0 holds the tensor `dictionary`, layer 1 the encoder's `weight`, `bias`,
//! and `gain` (tanh) or `theta` (shrink; lista: one `[n]` per step), and `S` (lista). The
//! exporter reads this
//! file; [`PsdModel::encode`] is the float reference its runtime encoders are compared to.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::KIND_PSD;
use crate::checkpoint::{self, Envelope};
use crate::error::{Error, Result};
use crate::nn::{LayerParams, NamedTensor};

/// Which feed-forward encoder `g(x)` predicts the sparse code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EncoderKind {
    /// `g(x) = G ⊙ tanh(W x + b)`, a learned gain per atom.
    Tanh,
    /// `g(x) = shrink_θ(W x + b)`, a learned threshold `θ ≥ 0` per atom.
    Shrink,
    /// LISTA: `h ← shrink_θ(b')`, then `steps` times `h ← shrink_θ(b' + S h)`, `b' = W x + b`.
    Lista {
        /// Unrolled steps `T`, 1 to 255.
        steps: u8,
    },
}

impl fmt::Display for EncoderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncoderKind::Tanh => f.write_str("tanh"),
            EncoderKind::Shrink => f.write_str("shrink"),
            EncoderKind::Lista { steps } => write!(f, "lista:{steps}"),
        }
    }
}

impl FromStr for EncoderKind {
    type Err = Error;

    /// `tanh`, `shrink` or `lista:T` with `T` in 1..=255; anything else is an
    /// [`Error::Config`] naming `--encoder`.
    fn from_str(s: &str) -> Result<EncoderKind> {
        let bad = |why: String| Error::Config {
            path: PathBuf::from("--encoder"),
            message: format!("{s:?}: {why}"),
        };
        match s {
            "tanh" => Ok(EncoderKind::Tanh),
            "shrink" => Ok(EncoderKind::Shrink),
            _ => match s.strip_prefix("lista:") {
                Some(t) => match t.parse::<u8>() {
                    Ok(0) => Err(bad(
                        "lista needs at least one step (lista:T with T in 1..=255; lista:0 would \
                         be the shrink encoder)"
                            .into(),
                    )),
                    Ok(steps) => Ok(EncoderKind::Lista { steps }),
                    Err(_) => Err(bad(format!(
                        "the step count {t:?} is not an integer in 1..=255"
                    ))),
                },
                None => Err(bad("expected tanh, shrink or lista:T (T in 1..=255)".into())),
            },
        }
    }
}

impl From<EncoderKind> for String {
    fn from(k: EncoderKind) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for EncoderKind {
    type Error = Error;
    fn try_from(s: String) -> Result<EncoderKind> {
        s.parse()
    }
}

impl EncoderKind {
    /// The name of the per-atom tensor besides weight and bias: `gain` or `theta`.
    pub fn scale_name(self) -> &'static str {
        match self {
            EncoderKind::Tanh => "gain",
            EncoderKind::Shrink | EncoderKind::Lista { .. } => "theta",
        }
    }

    /// LISTA's step count (0 for the one-layer encoders).
    pub fn steps(self) -> usize {
        match self {
            EncoderKind::Lista { steps } => steps as usize,
            EncoderKind::Tanh | EncoderKind::Shrink => 0,
        }
    }
}

/// One epoch of PSD training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PsdEpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f32,
    /// Mean `E(x, h*)` of the inferred codes over the epoch's patches.
    pub energy: f32,
    /// Mean `E(x, g(x))` of the encoder's codes (before each step's update).
    pub encoder_energy: f32,
    /// Fraction of non-zero entries of `h*`.
    pub nonzero_fraction: f32,
    /// Wall time.
    pub seconds: f32,
}

/// Everything in a PSD checkpoint but the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PsdMeta {
    /// The encoder.
    pub encoder: EncoderKind,
    /// Convolutional PSD (on whole images) instead of patches.
    pub conv: bool,
    /// Dense: the patch side `K` (input `K×K`); convolutional: the filter side.
    pub patch: usize,
    /// Input channels (1 for grayscale).
    pub channels: usize,
    /// Dictionary atoms `n`.
    pub atoms: usize,
    /// Sparsity weight `λ` of `E(x, h) = ½‖x − D h‖² + λ‖h‖₁`.
    pub lambda: f32,
    /// Prediction weight `α` of `α‖h − g(x)‖²`.
    pub alpha: f32,
    /// Patch normalization: mean removal always, then `/max(RMS, eps)` if `Some(eps)`
    /// ([`crate::patches::normalize_patch`]).
    pub contrast: Option<f32>,
    /// Data trained on.
    pub data_dir: PathBuf,
    /// Seed of the run.
    pub seed: u64,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Training patches per epoch.
    pub train_patches: usize,
    /// Per-epoch history.
    pub history: Vec<PsdEpochLog>,
}

/// A PSD model on the host: dictionary and encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct PsdModel {
    /// Settings and history.
    pub meta: PsdMeta,
    /// Dense: `[k, n]` row-major (`k = channels·patch²`, column `j` = atom `j`, unit norm);
    /// convolutional: `[n, channels, K, K]` decoder filters.
    pub dictionary: Vec<f32>,
    /// Dense: `[n, k]` row-major; convolutional: `[n, channels, K, K]`.
    pub weight: Vec<f32>,
    /// `[n]`.
    pub bias: Vec<f32>,
    /// tanh: `code = gain ⊙ tanh(W x + b)`.
    pub gain: Option<Vec<f32>>,
    /// Thresholds `θ ≥ 0`: shrink `[n]`; lista `[(T+1)·n]`, step `t`'s at `t·n..` (`0` is
    /// the first shrink). A LISTA checkpoint from before per-step thresholds has `[n]`,
    /// shared by every step: [`PsdModel::from_envelope`] repeats it.
    pub theta: Option<Vec<f32>>,
    /// LISTA's `S`, `[n, n]` row-major (`S[i*n+j]` = `S[i, j]`).
    pub lateral: Option<Vec<f32>>,
}

/// Soft threshold `sign(v)·max(|v| − θ, 0)`.
#[inline]
pub fn shrink(v: f32, theta: f32) -> f32 {
    if v > theta {
        v - theta
    } else if v < -theta {
        v + theta
    } else {
        0.0
    }
}

fn named(name: &str, data: &[f32]) -> NamedTensor {
    NamedTensor {
        name: name.into(),
        data: data.to_vec(),
    }
}

impl PsdModel {
    /// Input length `k = channels·patch²`.
    pub fn inputs(&self) -> usize {
        self.meta.channels * self.meta.patch * self.meta.patch
    }

    /// The checkpoint envelope (kind [`KIND_PSD`]).
    pub fn to_envelope(&self) -> Result<Envelope> {
        let mut enc = vec![named("weight", &self.weight), named("bias", &self.bias)];
        if let Some(g) = &self.gain {
            enc.push(named("gain", g));
        }
        if let Some(t) = &self.theta {
            enc.push(named("theta", t));
        }
        if let Some(s) = &self.lateral {
            enc.push(named("S", s));
        }
        Ok(Envelope {
            kind: KIND_PSD.into(),
            meta: serde_json::to_string(&self.meta)
                .map_err(|e| Error::Other(format!("encoding PSD checkpoint metadata: {e}")))?,
            params: vec![
                LayerParams {
                    layer: 0,
                    tensors: vec![named("dictionary", &self.dictionary)],
                },
                LayerParams {
                    layer: 1,
                    tensors: enc,
                },
            ],
            velocities: vec![],
        })
    }

    /// The PSD model in `env`, every tensor's length checked against the metadata; `path`
    /// is for messages.
    pub fn from_envelope(env: Envelope, path: &Path) -> Result<PsdModel> {
        env.expect_kind(KIND_PSD, "from kestrel psd train", path)?;
        let bad = |message: String| Error::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        let meta: PsdMeta =
            serde_json::from_str(&env.meta).map_err(|e| bad(format!("PSD metadata: {e}")))?;
        let (k, n) = (meta.channels * meta.patch * meta.patch, meta.atoms);
        if k == 0 || n == 0 {
            return Err(bad(format!(
                "PSD metadata: {} channels × {}² inputs and {n} atoms (each must be > 0)",
                meta.channels, meta.patch
            )));
        }
        let tensor = |layer: usize, name: &str, len: usize| -> Result<Option<Vec<f32>>> {
            let Some(t) = env
                .params
                .iter()
                .find(|p| p.layer == layer)
                .and_then(|p| p.get(name))
            else {
                return Ok(None);
            };
            if t.len() != len {
                return Err(bad(format!(
                    "layer {layer} tensor {name:?}: {} values, expected {len}",
                    t.len()
                )));
            }
            Ok(Some(t.to_vec()))
        };
        let need = |layer: usize, name: &str, len: usize| -> Result<Vec<f32>> {
            tensor(layer, name, len)?.ok_or_else(|| {
                bad(format!(
                    "layer {layer} has no tensor {name:?} ({} encoder)",
                    meta.encoder
                ))
            })
        };
        let dictionary = need(0, "dictionary", k * n)?;
        let weight = need(1, "weight", n * k)?;
        let bias = need(1, "bias", n)?;
        let (gain, theta, lateral) = match meta.encoder {
            EncoderKind::Tanh => (Some(need(1, "gain", n)?), None, None),
            EncoderKind::Shrink => (None, Some(need(1, "theta", n)?), None),
            EncoderKind::Lista { steps } => {
                let per_step = (usize::from(steps) + 1) * n;
                let theta = match tensor(1, "theta", n) {
                    // Before per-step thresholds: one θ for every step.
                    Ok(Some(t)) => t.repeat(usize::from(steps) + 1),
                    _ => need(1, "theta", per_step)?,
                };
                (None, Some(theta), Some(need(1, "S", n * n)?))
            }
        };
        Ok(PsdModel {
            meta,
            dictionary,
            weight,
            bias,
            gain,
            theta,
            lateral,
        })
    }

    /// Reads a PSD checkpoint; a checkpoint of another kind is an [`Error::Checkpoint`]
    /// naming both kinds.
    pub fn load(path: &Path) -> Result<Self> {
        PsdModel::from_envelope(Envelope::load(path)?, path)
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        checkpoint::write_atomic(path, &self.to_envelope()?.to_bytes()?)
    }

    /// The encoder's code for one normalized input `x` (`k` floats; a convolutional model's
    /// encoder at one position of a `K×K` window), in plain f32 arithmetic, sums in index
    /// order: the float reference the exported runtime encoders are compared with.
    ///
    /// # Panics
    /// If `x.len()` is not [`inputs`](Self::inputs) (a caller's bug, not bad data).
    pub fn encode(&self, x: &[f32]) -> Vec<f32> {
        let (k, n) = (self.inputs(), self.meta.atoms);
        assert_eq!(x.len(), k, "PsdModel::encode: input length");
        let pre: Vec<f32> = (0..n)
            .map(|i| {
                let w = &self.weight[i * k..(i + 1) * k];
                w.iter().zip(x).fold(self.bias[i], |s, (&w, &x)| s + w * x)
            })
            .collect();
        match self.meta.encoder {
            EncoderKind::Tanh => {
                let g = self.gain.as_deref().unwrap_or(&[]);
                pre.iter().zip(g).map(|(&v, &g)| g * v.tanh()).collect()
            }
            EncoderKind::Shrink | EncoderKind::Lista { .. } => {
                let t = self.theta.as_deref().unwrap_or(&[]);
                let mut h: Vec<f32> = pre.iter().zip(t).map(|(&v, &t)| shrink(v, t)).collect();
                let s = self.lateral.as_deref().unwrap_or(&[]);
                for step in 1..=self.meta.encoder.steps() {
                    let t = &t[step * n..(step + 1) * n];
                    h = (0..n)
                        .map(|i| {
                            let row = &s[i * n..(i + 1) * n];
                            let z = row.iter().zip(&h).fold(pre[i], |a, (&s, &h)| a + s * h);
                            shrink(z, t[i])
                        })
                        .collect();
                }
                h
            }
        }
    }

    /// `E(x, h) = ½‖x − D h‖² + λ‖h‖₁` of a dense model, in f64.
    pub fn energy(&self, x: &[f32], h: &[f32]) -> f64 {
        let (k, n) = (self.inputs(), self.meta.atoms);
        let mut e = 0.0f64;
        for (row, &xr) in self.dictionary.chunks_exact(n).zip(&x[..k]) {
            let rec: f64 = row.iter().zip(h).map(|(&d, &h)| d as f64 * h as f64).sum();
            let d = xr as f64 - rec;
            e += 0.5 * d * d;
        }
        e + self.meta.lambda as f64 * h.iter().map(|v| v.abs() as f64).sum::<f64>()
    }
}
