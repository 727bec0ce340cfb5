//! Acceptance: on all 10,000 test images, the f32 runtime matches the trainer's own forward
//! pass, and int8 / f16 exports stay close to f32.

use kestrel_format::{AlignedBuf, Model};
use kestrel_tests::{test_set, trained_lenet};
use kestrel_trainer::backend::cpu::Cpu;
use kestrel_trainer::eval;
use kestrel_trainer::export::{export, Quant};
use kestrel_trainer::nn::Network;
use kestrel_trainer::train::argmax;

/// f32 runtime outputs, computed once and shared by the tests that compare against them.
fn f32_outputs() -> &'static [Vec<f32>] {
    static OUT: std::sync::OnceLock<Vec<Vec<f32>>> = std::sync::OnceLock::new();
    OUT.get_or_init(|| runtime_outputs(Quant::F32))
}

fn runtime_outputs(quant: Quant) -> Vec<Vec<f32>> {
    let bytes = export(Cpu::new(), trained_lenet(), quant, None).expect("export");
    let buf = AlignedBuf::new(&bytes);
    let model = Model::from_bytes(&buf).expect("valid model");
    eval::outputs(&model, test_set()).expect("runtime runs")
}

fn trainer_outputs() -> Vec<Vec<f32>> {
    let ck = trained_lenet();
    let mut net = Network::new(Cpu::new(), &ck.arch, 0).unwrap();
    net.set_params(&ck.params).unwrap();
    let set = test_set();
    let mut x = Vec::new();
    let mut out = Vec::new();
    let idx: Vec<usize> = (0..set.n).collect();
    for chunk in idx.chunks(500) {
        ck.normalize.batch(set, chunk, &mut x);
        let logits = net.predict(&x, chunk.len()).unwrap();
        out.extend(logits.chunks(10).map(<[f32]>::to_vec));
    }
    out
}

#[test]
fn f32_runtime_matches_trainer_forward() {
    let rt = f32_outputs();
    let tr = trainer_outputs();
    assert_eq!(rt.len(), 10_000);
    let mut worst = 0f32;
    for (a, b) in rt.iter().zip(&tr) {
        // Relative to the image's largest logit, so logits near zero don't divide by ~0.
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
        for (x, y) in a.iter().zip(b) {
            worst = worst.max((x - y).abs() / scale);
        }
    }
    println!("f32 runtime vs trainer: worst relative difference {worst:.3e}");
    assert!(
        worst <= 1e-5,
        "f32 runtime differs from the trainer by {worst:e} (relative)"
    );
    let same = rt
        .iter()
        .zip(&tr)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    assert_eq!(same, 10_000);
}

/// Stated bound: every dequantized int8 logit is within 0.1 × (that image's f32 logit range)
/// of the f32 logit; the mean absolute error is below 0.02 × the mean logit range.
#[test]
fn int8_agrees_with_f32_on_all_test_images() {
    let f = f32_outputs();
    let q = runtime_outputs(Quant::Int8);
    let agree = f
        .iter()
        .zip(&q)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    let (mut worst, mut sum_err, mut sum_range, mut n) = (0f32, 0f64, 0f64, 0usize);
    for (a, b) in f.iter().zip(&q) {
        let range = a.iter().cloned().fold(f32::NEG_INFINITY, f32::max)
            - a.iter().cloned().fold(f32::INFINITY, f32::min);
        for (x, y) in a.iter().zip(b) {
            worst = worst.max((x - y).abs() / range.max(1e-3));
            sum_err += (x - y).abs() as f64;
            n += 1;
        }
        sum_range += range as f64;
    }
    let mean_rel = sum_err / n as f64 / (sum_range / f.len() as f64);
    println!("int8 vs f32: top-1 agreement {agree}/10000, worst |Δlogit|/range {worst:.4}, mean |Δ|/mean range {mean_rel:.4}");
    assert!(
        agree >= 9_900,
        "int8 and f32 agree on only {agree} of 10000 images"
    );
    assert!(
        worst <= 0.1,
        "a dequantized int8 logit is off by {worst} of its image's logit range"
    );
    assert!(
        mean_rel <= 0.02,
        "mean int8 logit error {mean_rel} of the logit range"
    );
}

#[test]
fn f16_agrees_with_f32() {
    let f = f32_outputs();
    let h = runtime_outputs(Quant::F16);
    let agree = f
        .iter()
        .zip(&h)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    println!("f16 vs f32: top-1 agreement {agree}/10000");
    assert!(
        agree >= 9_980,
        "f16 and f32 agree on only {agree} of 10000 images"
    );
}

#[test]
fn eval_accuracy_is_the_trainers_float_accuracy() {
    let ck = trained_lenet();
    let set = test_set();
    let correct = f32_outputs()
        .iter()
        .enumerate()
        .filter(|(i, o)| argmax(o) == set.labels[*i] as usize)
        .count();
    let runtime = correct as f64 / set.n as f64;
    let float = ck.test_accuracy.unwrap() as f64;
    println!("runtime f32 accuracy {runtime:.4}, trainer {float:.4}");
    assert!(
        (runtime - float).abs() < 1e-4,
        "runtime {runtime} vs trainer {float}"
    );
    assert!(
        runtime > 0.85,
        "three epochs of lenet should pass 85% (got {runtime})"
    );
    // `evaluate` (what `kestrel eval` prints) reports the same on a slice, and the model
    // file carries the trainer's number.
    let bytes = export(Cpu::new(), ck, Quant::F32, None).unwrap();
    let buf = AlignedBuf::new(&bytes);
    let model = Model::from_bytes(&buf).unwrap();
    let slice = set.take(1000);
    let r = eval::evaluate(&model, &slice).unwrap();
    let want = f32_outputs()[..1000]
        .iter()
        .enumerate()
        .filter(|(i, o)| argmax(o) == set.labels[*i] as usize)
        .count();
    assert_eq!((r.n, r.correct), (1000, want));
    assert_eq!(
        model.desc.provenance.float_accuracy,
        ck.test_accuracy.unwrap()
    );
}
