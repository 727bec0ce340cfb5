//! Writes the fuzzers' seed corpus: every shipped architecture (`examples/archs/*.toml`) at
//! every precision, with the parameters of a fresh initialization (training would change
//! values, not structure, and structure is what the mutations work on), plus dense PSD
//! encoders (tanh, shrink, LISTA) at every precision.
//!
//!     cargo run -p kestrel-fuzz --bin fuzz-seeds -- DIR
//!
//! int8 exports are calibrated on synthetic images, so no dataset is needed.

use std::path::{Path, PathBuf};

use kestrel_format::{AlignedBuf, Model};
use kestrel_trainer::backend::cpu::Cpu;
use kestrel_trainer::checkpoint::{write_atomic, Checkpoint};
use kestrel_trainer::config::Arch;
use kestrel_trainer::data::{Images, Normalize};
use kestrel_trainer::export::{export, Quant};
use kestrel_trainer::export_encoder::export_psd;
use kestrel_trainer::nn::Network;
use kestrel_trainer::psd::model::{EncoderKind, PsdMeta, PsdModel};

const QUANTS: [(Quant, &str); 3] = [
    (Quant::F32, "f32"),
    (Quant::F16, "f16"),
    (Quant::Int8, "int8"),
];

/// A tiny deterministic generator: seeds need variety, not statistics.
fn wave(i: usize, k: usize) -> f32 {
    (((i * 7919 + k * 104_729) % 2003) as f32 / 2003.0) * 2.0 - 1.0
}

fn synthetic_images(n: usize, rows: usize, cols: usize) -> Images {
    let pixels = (0..n * rows * cols)
        .map(|i| ((i * 31 + i / (rows * cols) * 17) % 256) as u8)
        .collect();
    Images {
        n,
        rows,
        cols,
        pixels,
        labels: vec![0; n],
    }
}

fn convnet(arch_path: &Path, out: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    let arch = Arch::load(&arch_path.to_string_lossy())?;
    let net = Network::new(Cpu::new(), &arch, 1)?;
    let classes = net.num_classes();
    let ckpt = Checkpoint {
        train: arch.train.clone(),
        normalize: Normalize {
            mean: 0.3,
            std: 0.35,
        },
        classes: (0..classes).map(|c| format!("class{c}")).collect(),
        data_dir: PathBuf::from("synthetic"),
        train_samples: 0,
        epochs_done: 0,
        history: Vec::new(),
        test_accuracy: None,
        params: net.params()?,
        velocities: Vec::new(),
        arch: arch.clone(),
    };
    let [_, rows, cols] = arch.input;
    let calib = synthetic_images(64, rows, cols);
    let mut written = 0;
    for (quant, name) in QUANTS {
        let bytes = export(Cpu::new(), &ckpt, quant, Some(&calib))?;
        let path = out.join(format!("{}-{name}.kmodel", arch.name));
        write_atomic(&path, &bytes)?;
        written += 1;
    }
    Ok(written)
}

fn psd(encoder: EncoderKind, label: &str, out: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    const K: usize = 5;
    const N: usize = 12;
    let k = K * K;
    let mut d: Vec<f32> = (0..k * N).map(|i| wave(i, 1)).collect();
    for j in 0..N {
        let norm = (0..k)
            .map(|r| d[r * N + j].powi(2))
            .sum::<f32>()
            .sqrt()
            .max(1e-3);
        (0..k).for_each(|r| d[r * N + j] /= norm);
    }
    let weight = (0..N * k).map(|i| 0.15 * wave(i, 2)).collect();
    let bias = (0..N).map(|i| 0.05 * wave(i, 3)).collect();
    let (mut gain, mut theta, mut lateral) = (None, None, None);
    match encoder {
        EncoderKind::Tanh => gain = Some((0..N).map(|i| 0.5 + 0.4 * wave(i, 4)).collect()),
        EncoderKind::Shrink => theta = Some((0..N).map(|i| 0.1 + 0.05 * wave(i, 5)).collect()),
        EncoderKind::Lista { steps } => {
            let len = (steps as usize + 1) * N;
            theta = Some((0..len).map(|i| 0.1 + 0.05 * wave(i, 6)).collect());
            lateral = Some(
                (0..N * N)
                    .map(|i| {
                        if i / N == i % N {
                            0.6
                        } else {
                            0.1 * wave(i, 7)
                        }
                    })
                    .collect(),
            );
        }
    }
    let m = PsdModel {
        meta: PsdMeta {
            encoder,
            conv: false,
            patch: K,
            channels: 1,
            atoms: N,
            lambda: 0.1,
            alpha: 1.0,
            contrast: Some(0.02),
            data_dir: PathBuf::from("synthetic"),
            seed: 1,
            epochs_done: 1,
            train_patches: 100,
            history: Vec::new(),
        },
        dictionary: d,
        weight,
        bias,
        gain,
        theta,
        lateral,
    };
    let calib: Vec<Vec<u8>> = (0..200)
        .map(|p| {
            (0..k)
                .map(|i| ((p * 13 + i * 29 + (i * p) % 7) % 256) as u8)
                .collect()
        })
        .collect();
    let mut written = 0;
    for (quant, name) in QUANTS {
        let bytes = export_psd(&m, quant, &calib)?;
        write_atomic(&out.join(format!("psd-{label}-{name}.kmodel")), &bytes)?;
        written += 1;
    }
    Ok(written)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::args().nth(1).ok_or("usage: fuzz-seeds DIR")?);
    std::fs::create_dir_all(&out)?;
    let archs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/archs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&archs)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let mut n = 0;
    for f in &files {
        n += convnet(f, &out)?;
    }
    for (encoder, label) in [
        (EncoderKind::Tanh, "tanh"),
        (EncoderKind::Shrink, "shrink"),
        (EncoderKind::Lista { steps: 2 }, "lista2"),
    ] {
        n += psd(encoder, label, &out)?;
    }
    // Every seed must be a valid model: the mutations start from there.
    for e in std::fs::read_dir(&out)? {
        let p = e?.path();
        let buf = AlignedBuf::new(&std::fs::read(&p)?);
        Model::from_bytes(&buf).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    println!("{n} seed models written to {}", out.display());
    Ok(())
}
