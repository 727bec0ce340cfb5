//! Export of convolutional PSD encoders (`kestrel psd train --conv`): a tiny conv PSD trained
//! on Fashion-MNIST is exported through `kestrel export`'s entry point at f32, f16 and int8,
//! run on the runtime on held-out images and compared with the trainer's float encoder
//! (`psd::conv::encode_images`): f32 to 1e-4 absolute, f16 to 5e-3 of the code scale, int8 by
//! the energy of its dequantized codes under the conv dictionary (within 2% of f32's; every
//! code within 5% of the code scale).
//! Malformed checkpoints are typed errors naming the field; `kestrel export` and
//! `kestrel psd eval` work on a conv checkpoint file.

mod common;
use common::kestrel;

use std::path::{Path, PathBuf};

use kestrel_format::{AlignedBuf, Model, Precision};
use kestrel_runtime::{Input, Plan};
use kestrel_trainer::backend::cpu::Cpu;
use kestrel_trainer::backend::Backend;
use kestrel_trainer::export::Quant;
use kestrel_trainer::export_encoder::conv::{export_conv, ConvInput};
use kestrel_trainer::export_encoder::{export, export_psd};
use kestrel_trainer::patches::{Dataset, Part};
use kestrel_trainer::psd::conv::{
    encode_images, train_conv_psd, ConvDict, ConvEncoderParams, ConvNonlin, ConvPsdOptions,
};
use kestrel_trainer::psd::{EncoderKind, PsdMeta, PsdModel};
use kestrel_trainer::Error;

const DATA: &str = "/usr/share/datasets/fashion-mnist";
/// Filter side and maps of the test models.
const K: usize = 5;
const N: usize = 6;
const SIDE: usize = 28;
/// Training images and held-out test images.
const TRAIN: usize = 48;
const TEST: usize = 12;
const LAMBDA: f32 = 0.5;

fn meta(encoder: EncoderKind) -> PsdMeta {
    PsdMeta {
        encoder,
        conv: true,
        patch: K,
        channels: 1,
        atoms: N,
        lambda: LAMBDA,
        alpha: 1.0,
        contrast: None,
        data_dir: PathBuf::from(DATA),
        seed: 3,
        epochs_done: 2,
        train_patches: TRAIN,
        history: Vec::new(),
    }
}

/// A conv PSD trained on the first [`TRAIN`] Fashion-MNIST training images, as `kestrel psd
/// train --conv` normalizes them (training pixel statistics, no contrast normalization).
fn trained(ds: &Dataset, encoder: EncoderKind) -> PsdModel {
    let norm = ds.pixel_stats(Part::Train);
    let mut images = ds.images(Part::Train, &norm);
    images.truncate(TRAIN);
    let nonlin = match encoder {
        EncoderKind::Tanh => ConvNonlin::Tanh,
        _ => ConvNonlin::Shrink,
    };
    let o = ConvPsdOptions {
        kernel: K,
        atoms: N,
        lambda: LAMBDA,
        nonlin,
        epochs: 2,
        seed: 3,
        batch: 16,
        ..ConvPsdOptions::default()
    };
    let c = train_conv_psd(&Cpu::new(), &images, 1, &o, |_| Ok(())).expect("trains");
    c.to_model(meta(encoder))
}

fn params(m: &PsdModel) -> ConvEncoderParams {
    let (nonlin, scale) = match m.meta.encoder {
        EncoderKind::Tanh => (ConvNonlin::Tanh, m.gain.clone().unwrap()),
        _ => (ConvNonlin::Shrink, m.theta.clone().unwrap()),
    };
    ConvEncoderParams {
        nonlin,
        channels: 1,
        kernel: K,
        atoms: N,
        weight: m.weight.clone(),
        bias: m.bias.clone(),
        scale,
    }
}

/// Raw pixels of the first [`TEST`] held-out (test split) images.
fn test_images(ds: &Dataset) -> Vec<Vec<u8>> {
    ds.regions(Part::HeldOut)
        .iter()
        .take(TEST)
        .map(|r| {
            assert_eq!((r.rows, r.cols), (SIDE, SIDE));
            ds.pictures[r.image].pixels.clone()
        })
        .collect()
}

/// The runtime's code maps of every test image.
fn run(bytes: &[u8], images: &[Vec<u8>]) -> Vec<Vec<f32>> {
    let buf = AlignedBuf::new(bytes);
    let model = Model::from_bytes(&buf).expect("exported model loads");
    let out_shape = model.output_shape();
    assert_eq!(out_shape.dims(), [N as u32, SIDE as u32, SIDE as u32]);
    let plan = Plan::new(&model).expect("plans");
    let mut arena = vec![0u8; plan.arena_bytes() + 16];
    images
        .iter()
        .map(|raw| {
            let mut out = vec![0f32; N * SIDE * SIDE];
            plan.run_f32(&mut arena, Input::Pixels(raw), &mut out)
                .expect("runs");
            out
        })
        .collect()
}

/// Sparse-coding energy `½‖x − A z‖² + λ‖z‖₁` of one image's code maps.
fn energy(be: &Cpu, dict: &ConvDict<Cpu>, x: &[f32], z: &[f32]) -> f64 {
    let e = dict
        .energy(
            be,
            1,
            LAMBDA,
            &be.upload(x).unwrap(),
            &be.upload(z).unwrap(),
        )
        .unwrap();
    e[0] as f64
}

#[test]
fn conv_encoders_at_every_precision_match_the_trainer_float_encoder() {
    let ds = Dataset::open(Path::new(DATA)).expect("Fashion-MNIST");
    let norm = ds.pixel_stats(Part::Train);
    let images = test_images(&ds);
    let be = Cpu::new();
    for encoder in [EncoderKind::Tanh, EncoderKind::Shrink] {
        let mut m = trained(&ds, encoder);
        if let Some(g) = m.gain.as_mut() {
            // A negative gain: export folds its sign into the filter and bias.
            g[1] = -g[1].abs().max(0.5);
        }
        let p = params(&m);
        let dict = ConvDict::new(&be, &m.dictionary, 1, N, K, SIDE, SIDE, 1).unwrap();
        let xs: Vec<Vec<f32>> = images
            .iter()
            .map(|raw| raw.iter().map(|&v| norm.apply(v)).collect())
            .collect();
        let float: Vec<Vec<f32>> = xs
            .iter()
            .map(|x| encode_images(&be, &p, SIDE, SIDE, 1, x).unwrap())
            .collect();
        let scale = float.iter().flatten().fold(0f32, |a, v| a.max(v.abs()));
        assert!(scale > 0.05, "{encoder}: codes all but empty ({scale})");

        let mut e32 = 0f64;
        for quant in [Quant::F32, Quant::F16, Quant::Int8] {
            // `kestrel export`'s entry point: statistics and calibration from the data dir.
            let bytes = export(&m, quant, None).expect("export");
            let buf = AlignedBuf::new(&bytes);
            let model = Model::from_bytes(&buf).unwrap();
            let input = model.desc.input;
            assert_eq!((input.mean, input.std), (norm.mean, norm.std));
            assert_eq!(model.precision(), Precision::from(quant));
            let codes = run(&bytes, &images);
            let err = codes
                .iter()
                .flatten()
                .zip(float.iter().flatten())
                .fold(0f32, |a, (r, f)| a.max((r - f).abs()));
            let e: f64 = codes
                .iter()
                .zip(&xs)
                .map(|(z, x)| energy(&be, &dict, x, z))
                .sum::<f64>()
                / images.len() as f64;
            println!(
                "{encoder} {quant:?}: worst |Δ| {err:.3e} (code scale {scale:.3}), mean energy {e:.4}"
            );
            match quant {
                Quant::F32 => {
                    assert!(err <= 1e-4, "{encoder} f32: worst |runtime − float| {err}");
                    e32 = e;
                }
                Quant::F16 => assert!(
                    err <= 5e-3 * scale,
                    "{encoder} f16: worst |runtime − float| {err} > 5e-3·{scale}"
                ),
                Quant::Int8 => {
                    assert!(
                        (e - e32).abs() <= 0.02 * e32,
                        "{encoder} int8: energy {e} vs f32 {e32} (more than 2% apart)"
                    );
                    assert!(
                        err <= 0.05 * scale,
                        "{encoder} int8: worst |runtime − float| {err} > 0.05·{scale}"
                    );
                }
            }
        }
    }
}

/// A conv PSD model with deterministic parameters (no training) for the error paths.
fn fixed(encoder: EncoderKind) -> PsdModel {
    let len = N * K * K;
    let w: Vec<f32> = (0..len)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 40.0)
        .collect();
    PsdModel {
        meta: meta(encoder),
        dictionary: w.clone(),
        weight: w,
        bias: vec![0.01; N],
        gain: (encoder == EncoderKind::Tanh).then(|| vec![0.8; N]),
        theta: (encoder != EncoderKind::Tanh).then(|| vec![0.05; N]),
        lateral: None,
    }
}

fn field_of(e: Error) -> String {
    match e {
        Error::PsdCheckpoint { field, .. } => field,
        other => panic!("expected Error::PsdCheckpoint, got {other}"),
    }
}

#[test]
fn malformed_conv_checkpoints_are_typed_errors() {
    let input = ConvInput {
        norm: kestrel_trainer::data::Normalize {
            mean: 0.3,
            std: 0.35,
        },
        rows: SIDE,
        cols: SIDE,
    };
    let calib = vec![vec![100u8; SIDE * SIDE]; 4];
    // The fixtures themselves export, at every precision.
    for encoder in [EncoderKind::Tanh, EncoderKind::Shrink] {
        for quant in [Quant::F32, Quant::F16, Quant::Int8] {
            export_conv(&fixed(encoder), quant, &input, &calib).expect("well-formed exports");
        }
    }

    let mut m = fixed(EncoderKind::Tanh);
    m.weight.pop();
    let e = export_conv(&m, Quant::F32, &input, &calib).unwrap_err();
    assert!(e.to_string().contains("149 values, expected 150"), "{e}");
    assert_eq!(field_of(e), "weight");

    let mut m = fixed(EncoderKind::Tanh);
    m.bias.push(0.0);
    assert_eq!(
        field_of(export_conv(&m, Quant::F16, &input, &calib).unwrap_err()),
        "bias"
    );

    let mut m = fixed(EncoderKind::Tanh);
    m.gain = None;
    assert_eq!(
        field_of(export_conv(&m, Quant::Int8, &input, &calib).unwrap_err()),
        "gain"
    );

    let mut m = fixed(EncoderKind::Shrink);
    m.theta.as_mut().unwrap()[2] = -0.1;
    assert_eq!(
        field_of(export_conv(&m, Quant::F32, &input, &calib).unwrap_err()),
        "theta[2]"
    );

    let mut m = fixed(EncoderKind::Shrink);
    m.dictionary.truncate(10);
    assert_eq!(
        field_of(export_conv(&m, Quant::F32, &input, &calib).unwrap_err()),
        "dictionary"
    );

    let mut m = fixed(EncoderKind::Shrink);
    m.meta.patch = 4;
    assert_eq!(
        field_of(export_conv(&m, Quant::F32, &input, &calib).unwrap_err()),
        "patch"
    );

    let m = fixed(EncoderKind::Lista { steps: 2 });
    assert_eq!(
        field_of(export_conv(&m, Quant::F32, &input, &calib).unwrap_err()),
        "encoder"
    );

    // A dense model is not a conv one, and the dense exporter refuses a conv one.
    let mut m = fixed(EncoderKind::Shrink);
    m.meta.conv = false;
    assert_eq!(
        field_of(export_conv(&m, Quant::F32, &input, &calib).unwrap_err()),
        "conv"
    );
    let e = export_psd(&fixed(EncoderKind::Shrink), Quant::F32, &[]).unwrap_err();
    assert!(e.to_string().contains("export_conv"), "{e}");

    // `psd eval` checks the encoder tensors before it opens any data.
    let mut m = fixed(EncoderKind::Tanh);
    m.gain = None;
    let e = kestrel_trainer::psd::eval::evaluate(&Cpu::new(), &m, Some(Path::new(DATA)), 2);
    assert_eq!(field_of(e.unwrap_err()), "gain");

    // int8 without calibration images.
    let e = export_conv(&fixed(EncoderKind::Tanh), Quant::Int8, &input, &[]).unwrap_err();
    assert!(e.to_string().contains("calibration"), "{e}");
}

#[test]
fn cli_exports_and_evaluates_a_conv_checkpoint() {
    let ds = Dataset::open(Path::new(DATA)).expect("Fashion-MNIST");
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("conv.ckpt");
    let kmodel = tmp.path().join("conv.kmodel");
    trained(&ds, EncoderKind::Shrink).save(&ckpt).unwrap();
    let s = |p: &Path| p.to_string_lossy().into_owned();

    let (ok, out, err) = kestrel(&[
        "export",
        "--checkpoint",
        &s(&ckpt),
        "--quant",
        "int8",
        "--out",
        &s(&kmodel),
    ]);
    assert!(ok, "export failed: {out}{err}");
    let bytes = std::fs::read(&kmodel).unwrap();
    let codes = run(&bytes, &test_images(&ds)[..2]);
    assert!(codes.iter().flatten().any(|&v| v != 0.0), "all-zero codes");

    let (ok, out, err) = kestrel(&[
        "psd",
        "eval",
        "--checkpoint",
        &s(&ckpt),
        "--n",
        "6",
        "--json",
    ]);
    assert!(ok, "psd eval failed: {out}{err}");
    println!("{}", out.trim());
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    for key in [
        "n",
        "encoder",
        "encoder_energy",
        "fista_energy",
        "ratio",
        "reconstruction_error",
        "fista_reconstruction_error",
        "nonzero_fraction",
        "fista_nonzero_fraction",
        "fista_iterations",
        "fista_converged",
    ] {
        assert!(v.get(key).is_some(), "no {key} in {out}");
    }
    assert_eq!(v["n"], 6);
    assert_eq!(v["encoder"], "shrink");
    let ratio = v["ratio"].as_f64().unwrap();
    let fista = v["fista_energy"].as_f64().unwrap();
    assert!(
        ratio.is_finite() && ratio >= 0.999 && fista > 0.0,
        "ratio {ratio}, FISTA energy {fista}: {out}"
    );
}
