//! Export of dense PSD encoders: every encoder kind at every precision, with random
//! parameters of the sizes training produces, runs on the runtime and matches the trainer's
//! float encoder (`PsdModel::encode`): f32 to rounding, f16 to f16 weight rounding, int8 to
//! a fraction of the code scale. Bad checkpoints are typed errors.

use std::path::PathBuf;

use kestrel_format::{AlignedBuf, Model};
use kestrel_runtime::{Input, Plan};
use kestrel_trainer::export::Quant;
use kestrel_trainer::export_encoder::export_psd;
use kestrel_trainer::patches::{normalize_patch, unit};
use kestrel_trainer::psd::model::{EncoderKind, PsdMeta, PsdModel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const K: usize = 7;
const N: usize = 24;

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    // Box–Muller: plenty for test parameters.
    let (u, v): (f32, f32) = (rng.random_range(1e-6..1.0), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// A dense PSD model with random parameters in the ranges training gives: unit-norm atoms,
/// encoder rows of norm about 1, small thresholds, `S ≈ I − DᵀD/L`-like lateral weights.
fn model(encoder: EncoderKind, seed: u64) -> PsdModel {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = K * K;
    let mut d: Vec<f32> = (0..k * N).map(|_| normal(&mut rng)).collect();
    for j in 0..N {
        let norm = (0..k).map(|r| d[r * N + j].powi(2)).sum::<f32>().sqrt();
        (0..k).for_each(|r| d[r * N + j] /= norm);
    }
    let weight: Vec<f32> = (0..N * k).map(|_| 0.15 * normal(&mut rng)).collect();
    let bias: Vec<f32> = (0..N).map(|_| 0.05 * normal(&mut rng)).collect();
    let (mut gain, mut theta, mut lateral) = (None, None, None);
    match encoder {
        // One negative gain: export folds its sign into the row. Two dead atoms (gains 0
        // and 1e-14, as training leaves unused atoms): int8 rescalings too small for the
        // format, exported as the smallest one (codes 0 either way).
        EncoderKind::Tanh => {
            gain = Some(
                (0..N)
                    .map(|i| match i {
                        3 => -0.7,
                        5 => 0.0,
                        6 => 1e-14,
                        _ => 0.3 + rng.random::<f32>(),
                    })
                    .collect(),
            )
        }
        EncoderKind::Shrink => theta = Some((0..N).map(|_| 0.2 * rng.random::<f32>()).collect()),
        EncoderKind::Lista { steps } => {
            // One threshold vector per step, as training learns them.
            let len = (steps as usize + 1) * N;
            theta = Some((0..len).map(|_| 0.2 * rng.random::<f32>()).collect());
            lateral = Some(
                (0..N * N)
                    .map(|i| {
                        if i / N == i % N {
                            0.6
                        } else {
                            0.1 * normal(&mut rng)
                        }
                    })
                    .collect(),
            );
        }
    }
    PsdModel {
        meta: PsdMeta {
            encoder,
            conv: false,
            patch: K,
            channels: 1,
            atoms: N,
            lambda: 0.1,
            alpha: 1.0,
            contrast: Some(0.02),
            data_dir: PathBuf::from("/nonexistent"),
            seed,
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
    }
}

/// Random textured patches (raw pixels).
fn patches(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (a, b) = (rng.random_range(0..128u32), rng.random_range(1..128u32));
            (0..K * K)
                .map(|i| (a + (i as u32 * b + rng.random_range(0..40)) % 128) as u8)
                .collect()
        })
        .collect()
}

fn float_codes(m: &PsdModel, raw: &[u8]) -> Vec<f32> {
    let mut x: Vec<f32> = raw.iter().map(|&p| unit(p)).collect();
    normalize_patch(&mut x, m.meta.contrast);
    m.encode(&x)
}

/// Worst `|runtime − float|` over the patches, and the largest float code magnitude.
fn worst(m: &PsdModel, quant: Quant) -> (f32, f32) {
    // As many calibration patches as `kestrel export` uses: a smaller set misses the
    // extremes of the test patches, which then saturate.
    let calib = patches(2000, 1);
    let bytes = export_psd(m, quant, &calib).expect("export");
    let buf = AlignedBuf::new(&bytes);
    let model = Model::from_bytes(&buf).expect("exported model loads");
    let plan = Plan::new(&model).expect("plans");
    let mut arena = vec![0u8; plan.arena_bytes() + 16];
    let mut out = vec![0f32; N];
    let (mut err, mut scale) = (0f32, 0f32);
    for raw in patches(200, 2) {
        plan.run_f32(&mut arena, Input::Pixels(&raw), &mut out)
            .expect("runs");
        for (a, b) in out.iter().zip(float_codes(m, &raw)) {
            err = err.max((a - b).abs());
            scale = scale.max(b.abs());
        }
    }
    (err, scale)
}

#[test]
fn every_encoder_at_every_precision_matches_the_float_encoder() {
    let kinds = [
        EncoderKind::Tanh,
        EncoderKind::Shrink,
        EncoderKind::Lista { steps: 1 },
        EncoderKind::Lista { steps: 3 },
    ];
    for (i, &kind) in kinds.iter().enumerate() {
        let m = model(kind, 10 + i as u64);
        for (quant, bound) in [(Quant::F32, 1e-5), (Quant::F16, 5e-3), (Quant::Int8, 0.06)] {
            let (err, scale) = worst(&m, quant);
            println!("{kind} {quant:?}: worst |Δ| {err:.3e}, code scale {scale:.3}");
            assert!(scale > 0.1, "{kind}: codes all but empty ({scale})");
            assert!(
                err <= bound * scale,
                "{kind} {quant:?}: worst |runtime − float| {err} > {bound}·{scale}"
            );
        }
    }
}

/// A LISTA row of `S` with all but zero weights (a dead atom) exports at int8: its scale is
/// floored so that `b`'s rescaling stays representable, and the codes still match.
#[test]
fn a_lista_checkpoint_with_one_threshold_for_every_step_still_loads() {
    // Checkpoints from before per-step thresholds hold `theta [n]`, used by every step.
    let mut m = model(EncoderKind::Lista { steps: 2 }, 5);
    let shared: Vec<f32> = m.theta.as_ref().unwrap()[..N].to_vec();
    m.theta = Some(shared.clone());
    let env = m.to_envelope().unwrap();
    let back = PsdModel::from_envelope(env, &PathBuf::from("old.ckpt")).unwrap();
    assert_eq!(back.theta.as_deref(), Some(&shared.repeat(3)[..]));
    // … and encodes as it did: the same θ at every step.
    let x: Vec<f32> = (0..K * K).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut per_step = back.clone();
    per_step.theta = Some(shared.repeat(3));
    assert_eq!(back.encode(&x), per_step.encode(&x));
    // A theta of any other length is a typed error naming the tensor and both lengths.
    m.theta = Some(vec![0.1; 2 * N]);
    let err = PsdModel::from_envelope(m.to_envelope().unwrap(), &PathBuf::from("bad.ckpt"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.ckpt") && err.contains("theta") && err.contains(&format!("{}", 3 * N)),
        "{err}"
    );
}

#[test]
fn a_dead_lista_row_exports_at_int8() {
    let mut m = model(EncoderKind::Lista { steps: 1 }, 20);
    let s = m.lateral.as_mut().unwrap();
    s[4 * N..5 * N].iter_mut().for_each(|v| *v = 1e-13);
    let (err, scale) = worst(&m, Quant::Int8);
    assert!(
        scale > 0.1 && err <= 0.06 * scale,
        "worst |Δ| {err} of {scale}"
    );
}

#[test]
fn bad_checkpoints_are_typed_errors() {
    let calib = patches(10, 1);
    let mut m = model(EncoderKind::Shrink, 3);
    m.theta = None;
    let e = export_psd(&m, Quant::F32, &calib).unwrap_err().to_string();
    assert!(e.contains("theta") && e.contains("missing"), "{e}");

    let mut m = model(EncoderKind::Lista { steps: 2 }, 3);
    m.lateral.as_mut().unwrap().pop();
    let e = export_psd(&m, Quant::F32, &calib).unwrap_err().to_string();
    assert!(e.contains("S has 575 values, expected 576"), "{e}");

    let mut m = model(EncoderKind::Shrink, 3);
    m.meta.lambda = 0.0;
    let e = export_psd(&m, Quant::F32, &calib).unwrap_err().to_string();
    assert!(e.contains("lambda"), "{e}");

    let m = model(EncoderKind::Tanh, 3);
    let e = export_psd(&m, Quant::Int8, &[]).unwrap_err().to_string();
    assert!(e.contains("calibration"), "{e}");
}
