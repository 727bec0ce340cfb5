//! Training checkpoints: everything needed to export, evaluate or resume.
//!
//! Layout: magic `KCKP`, u32 version, u32 CRC32 of the payload, then a postcard payload
//! ([`Envelope`]): the checkpoint's kind (`convnet` from `kestrel train`; other trainers
//! store their own kinds in the same envelope), the metadata as JSON text (architectures
//! use tagged enums, which postcard can't encode), and the named parameter tensors and
//! momentum buffers of every layer in binary. Written atomically (temporary file in the
//! same directory, fsync, rename), so a crash never leaves a half-written checkpoint behind.
//!
//! Version 2 stores any number of named tensors per layer; version 1 files (one `weight`
//! and one `bias` per layer, always a convnet) still load, their tensors named so.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Arch, TrainConfig};
use crate::data::Normalize;
use crate::error::{Error, Result};
use crate::nn::{LayerParams, NamedTensor};

const MAGIC: &[u8; 4] = b"KCKP";
/// The version this build writes.
pub const VERSION: u32 = 2;
/// [`Envelope::kind`] of `kestrel train`'s checkpoints.
pub const KIND_CONVNET: &str = "convnet";

/// One epoch's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based epoch.
    pub epoch: usize,
    /// Learning rate at the end of the epoch.
    pub lr: f32,
    /// Mean training loss.
    pub train_loss: f32,
    /// Training error on the (augmented) batches seen, in `[0, 1]`.
    pub train_error: f32,
    /// Validation error, in `[0, 1]` (`None` without a validation split).
    pub val_error: Option<f32>,
    /// Wall time of the epoch's training steps (validation excluded).
    pub seconds: f32,
}

/// A serialized training state.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The architecture trained.
    pub arch: Arch,
    /// The settings used.
    pub train: TrainConfig,
    /// Input normalization.
    pub normalize: Normalize,
    /// Class names by label.
    pub classes: Vec<String>,
    /// Data directory trained on.
    pub data_dir: PathBuf,
    /// Training images used (excluding validation).
    pub train_samples: usize,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Per-epoch history.
    pub history: Vec<EpochLog>,
    /// Float test accuracy, once measured.
    pub test_accuracy: Option<f32>,
    /// Parameters of every layer that has them.
    pub params: Vec<LayerParams>,
    /// Momentum buffers, for resuming.
    pub velocities: Vec<LayerParams>,
}

/// Everything but the tensors, stored as JSON.
#[derive(Serialize, Deserialize)]
struct Meta {
    arch: Arch,
    train: TrainConfig,
    normalize: Normalize,
    classes: Vec<String>,
    data_dir: PathBuf,
    train_samples: usize,
    epochs_done: usize,
    history: Vec<EpochLog>,
    test_accuracy: Option<f32>,
}

/// The postcard payload of a checkpoint file, whatever trained it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// What trained it ([`KIND_CONVNET`], …): decides how `meta` reads.
    pub kind: String,
    /// Everything but the tensors, as JSON.
    pub meta: String,
    /// Named parameter tensors of every layer that has them.
    pub params: Vec<LayerParams>,
    /// Their momentum buffers (empty when not resumable).
    pub velocities: Vec<LayerParams>,
}

/// Version 1's payload: one weight and one bias per layer, always a convnet.
#[derive(Serialize, Deserialize)]
struct StoredV1 {
    meta: String,
    params: Vec<LayerParamsV1>,
    velocities: Vec<LayerParamsV1>,
}

#[derive(Serialize, Deserialize)]
struct LayerParamsV1 {
    layer: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl From<LayerParamsV1> for LayerParams {
    fn from(p: LayerParamsV1) -> LayerParams {
        let named = |name: &str, data| NamedTensor {
            name: name.into(),
            data,
        };
        LayerParams {
            layer: p.layer,
            tensors: vec![named("weight", p.weight), named("bias", p.bias)],
        }
    }
}

impl Envelope {
    /// The file's bytes: header (magic, [`VERSION`], CRC32) and payload.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let payload = postcard::to_stdvec(self)
            .map_err(|e| Error::Other(format!("encoding checkpoint: {e}")))?;
        let mut out = Vec::with_capacity(payload.len() + 12);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Decodes a checkpoint file of any supported version; `path` is for messages.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Envelope> {
        let err = |message: String| Error::Checkpoint {
            path: path.to_path_buf(),
            message,
        };
        if bytes.len() < 12 {
            return Err(err(format!(
                "truncated: {} bytes, header needs 12",
                bytes.len()
            )));
        }
        if &bytes[..4] != MAGIC {
            return Err(err(format!(
                "bad magic {:02x?} at offset 0, expected \"KCKP\"",
                &bytes[..4]
            )));
        }
        let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        if version == 0 || version > VERSION {
            return Err(err(format!(
                "version {version} not supported (this build reads 1 to {VERSION}; a newer \
                 kestrel wrote it?)"
            )));
        }
        let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let computed = crc32fast::hash(&bytes[12..]);
        if crc != computed {
            return Err(err(format!(
                "CRC mismatch: header {crc:#010x}, payload {computed:#010x} (file corrupt)"
            )));
        }
        let payload = &bytes[12..];
        let bad = |e: postcard::Error| err(format!("version {version} payload at offset 12: {e}"));
        if version == 1 {
            let v1: StoredV1 = postcard::from_bytes(payload).map_err(bad)?;
            return Ok(Envelope {
                kind: KIND_CONVNET.into(),
                meta: v1.meta,
                params: v1.params.into_iter().map(Into::into).collect(),
                velocities: v1.velocities.into_iter().map(Into::into).collect(),
            });
        }
        postcard::from_bytes(payload).map_err(bad)
    }

    /// Reads a checkpoint file of any kind.
    pub fn load(path: &Path) -> Result<Envelope> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Envelope::from_bytes(&bytes, path)
    }

    /// Fails with a clear message unless this is a `want` checkpoint (`what` says which
    /// command makes those).
    pub fn expect_kind(&self, want: &str, what: &str, path: &Path) -> Result<()> {
        if self.kind == want {
            return Ok(());
        }
        Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!(
                "this is a {} checkpoint; expected a {want} checkpoint ({what})",
                self.kind
            ),
        })
    }
}

impl Checkpoint {
    /// Encodes to bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let meta = Meta {
            arch: self.arch.clone(),
            train: self.train.clone(),
            normalize: self.normalize,
            classes: self.classes.clone(),
            data_dir: self.data_dir.clone(),
            train_samples: self.train_samples,
            epochs_done: self.epochs_done,
            history: self.history.clone(),
            test_accuracy: self.test_accuracy,
        };
        Envelope {
            kind: KIND_CONVNET.into(),
            meta: serde_json::to_string(&meta)
                .map_err(|e| Error::Other(format!("encoding checkpoint: {e}")))?,
            params: self.params.clone(),
            velocities: self.velocities.clone(),
        }
        .to_bytes()
    }

    /// Decodes bytes; `path` is for messages. A checkpoint of another kind is an
    /// [`Error::Checkpoint`] naming both kinds.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
        Checkpoint::from_envelope(Envelope::from_bytes(bytes, path)?, path)
    }

    /// The convnet checkpoint in `env`.
    pub fn from_envelope(env: Envelope, path: &Path) -> Result<Checkpoint> {
        env.expect_kind(KIND_CONVNET, "from kestrel train", path)?;
        let m: Meta = serde_json::from_str(&env.meta).map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            message: format!("metadata: {e}"),
        })?;
        Ok(Checkpoint {
            arch: m.arch,
            train: m.train,
            normalize: m.normalize,
            classes: m.classes,
            data_dir: m.data_dir,
            train_samples: m.train_samples,
            epochs_done: m.epochs_done,
            history: m.history,
            test_accuracy: m.test_accuracy,
            params: env.params,
            velocities: env.velocities,
        })
    }

    /// Writes atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?)
    }

    /// Reads a checkpoint file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Checkpoint::from_bytes(&bytes, path)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
/// flushed to disk and renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let arch = Arch::load("jarrett").unwrap();
        let ck = Checkpoint {
            arch: arch.clone(),
            train: arch.train.clone(),
            normalize: Normalize {
                mean: 0.3,
                std: 0.4,
            },
            classes: vec!["a".into(); 10],
            data_dir: "/data".into(),
            train_samples: 5,
            epochs_done: 1,
            history: vec![EpochLog {
                epoch: 1,
                lr: 0.1,
                train_loss: 1.0,
                train_error: 0.5,
                val_error: None,
                seconds: 1.0,
            }],
            test_accuracy: Some(0.5),
            params: vec![LayerParams {
                layer: 0,
                tensors: vec![
                    NamedTensor {
                        name: "weight".into(),
                        data: vec![1.0, 2.0],
                    },
                    NamedTensor {
                        name: "bias".into(),
                        data: vec![3.0],
                    },
                ],
            }],
            velocities: vec![],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ckpt");
        ck.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), ck);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        let e = Checkpoint::from_bytes(&bytes, &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("CRC mismatch") && e.contains("c.ckpt"), "{e}");
        let e = Checkpoint::from_bytes(b"KCKP\x03\0\0\0\0\0\0\0", &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 3 not supported"), "{e}");
        let e = Checkpoint::from_bytes(b"NOPE", &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    /// A version-1 file (written by the format before named tensors) loads, its tensors
    /// named `weight` and `bias`; a checkpoint of another kind is refused by name.
    #[test]
    fn version_1_loads_and_other_kinds_are_refused() {
        let arch = Arch::load("lenet").unwrap();
        let meta = Meta {
            arch: arch.clone(),
            train: arch.train.clone(),
            normalize: Normalize {
                mean: 0.5,
                std: 0.25,
            },
            classes: vec![],
            data_dir: "/d".into(),
            train_samples: 1,
            epochs_done: 1,
            history: vec![],
            test_accuracy: None,
        };
        let v1 = StoredV1 {
            meta: serde_json::to_string(&meta).unwrap(),
            params: vec![LayerParamsV1 {
                layer: 0,
                weight: vec![1.0; 3],
                bias: vec![2.0],
            }],
            velocities: vec![],
        };
        let payload = postcard::to_stdvec(&v1).unwrap();
        let mut bytes = b"KCKP\x01\0\0\0".to_vec();
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let path = Path::new("old.ckpt");
        let c = Checkpoint::from_bytes(&bytes, path).unwrap();
        assert_eq!(c.arch, arch);
        assert_eq!(c.params[0].weight_bias(), (&[1.0; 3][..], &[2.0][..]));

        let other = Envelope {
            kind: "psd".into(),
            meta: "{}".into(),
            params: vec![],
            velocities: vec![],
        };
        let e = Checkpoint::from_bytes(&other.to_bytes().unwrap(), path)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("old.ckpt") && e.contains("psd checkpoint") && e.contains("convnet"),
            "{e}"
        );
    }
}
