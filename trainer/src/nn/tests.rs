//! Network-level tests: determinism across thread counts, parameter round trips and errors,
//! a tiny overfit, and (ignored by default) the LeNet step timing.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::backend::cpu::Cpu;
use crate::config::{LayerSpec, LossKind};

fn random_batch(arch: &Arch, n: usize, classes: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = (0..n * numel(arch.input))
        .map(|_| normal(&mut rng))
        .collect();
    let labels = (0..n).map(|_| rng.random_range(0..classes as u8)).collect();
    (x, labels)
}

/// LeNet with dropout, to cover every parallel op in one network.
fn lenet_dropout() -> Arch {
    let mut arch = Arch::load("lenet").unwrap();
    arch.layers.insert(8, LayerSpec::Dropout { p: 0.3 });
    arch
}

fn train_params(arch: &Arch, threads: usize, steps: usize, batch: usize) -> Vec<LayerParams> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut net = Network::new(Cpu::new(), arch, 7).unwrap();
        for step in 0..steps {
            let (x, labels) = random_batch(arch, batch, net.num_classes(), step as u64);
            net.train_step(&x, &labels, 1000 + step as u64).unwrap();
            net.sgd_update(0.05, 0.9, 5e-4).unwrap();
        }
        let mut all = net.params().unwrap();
        all.extend(net.velocities().unwrap());
        all
    })
}

#[test]
fn training_is_bit_identical_for_any_thread_count() {
    // Batch 37 leaves a partial gradient chunk and partial GEMM row blocks.
    for arch in [lenet_dropout(), Arch::load("jarrett").unwrap()] {
        let one = train_params(&arch, 1, 3, 37);
        let two = train_params(&arch, 2, 3, 37);
        let three = train_params(&arch, 3, 3, 37);
        assert!(
            one == two && two == three,
            "{}: parameters differ between thread counts",
            arch.name
        );
        let again = train_params(&arch, 2, 3, 37);
        assert!(two == again, "{}: not reproducible", arch.name);
    }
}

#[test]
fn lenet5_has_the_paper_parameter_count_and_lenet_widens_it() {
    let wide = Network::new(Cpu::new(), &Arch::load("lenet").unwrap(), 1).unwrap();
    assert_eq!(wide.num_params(), 90_670);
    assert!(wide.num_params() <= 100_000);
    let net = Network::new(Cpu::new(), &Arch::load("lenet5").unwrap(), 1).unwrap();
    assert_eq!(net.num_params(), 61_706);
    assert_eq!(net.num_classes(), 10);
    assert_eq!(net.input_shape(), [1, 28, 28]);
    assert_eq!(net.output_shapes().len(), 12);
    let p = net.params().unwrap();
    assert_eq!(
        p.iter().map(|l| l.layer).collect::<Vec<_>>(),
        vec![0, 3, 7, 9, 11]
    );
    // He initialization for conv → relu: std √(2/25).
    let w = p[0].get("weight").unwrap();
    let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
    assert!((std - (2.0f32 / 25.0).sqrt()).abs() < 0.06, "{std}");
    assert!(p
        .iter()
        .all(|l| l.weight_bias().1.iter().all(|&b| b == 0.0)));
}

#[test]
fn init_uses_lecun_before_tanh() {
    let net = Network::new(Cpu::new(), &Arch::load("jarrett").unwrap(), 1).unwrap();
    let ops: Vec<Op> = net.layers().iter().map(|l| l.op).collect();
    assert_eq!(weight_std(&ops, 0), (1.0f32 / 25.0).sqrt());
    assert_eq!(weight_std(&ops, 11), (1.0f32 / 400.0).sqrt());
    let lenet = Network::new(Cpu::new(), &Arch::load("lenet").unwrap(), 1).unwrap();
    let ops: Vec<Op> = lenet.layers().iter().map(|l| l.op).collect();
    assert_eq!(weight_std(&ops, 7), (2.0f32 / 600.0).sqrt());
    assert_eq!(weight_std(&ops, 11), (1.0f32 / 84.0).sqrt());
}

#[test]
fn params_round_trip_and_mismatches_are_typed() {
    let arch = Arch::load("lenet").unwrap();
    let mut a = Network::new(Cpu::new(), &arch, 1).unwrap();
    let mut b = Network::new(Cpu::new(), &arch, 2).unwrap();
    assert_ne!(a.params().unwrap(), b.params().unwrap());
    b.set_params(&a.params().unwrap()).unwrap();
    let (x, _) = random_batch(&arch, 3, 10, 9);
    assert_eq!(a.predict(&x, 3).unwrap(), b.predict(&x, 3).unwrap());

    let mut short = a.params().unwrap();
    short[2].tensors[0].data.pop();
    match b.set_params(&short) {
        Err(Error::Shape {
            layer: 7,
            op: "linear",
            message,
        }) => assert!(
            message.contains("weight (72000)") && message.contains("weight (71999)"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    let missing = &a.params().unwrap()[..4];
    assert!(matches!(
        b.set_velocities(missing),
        Err(Error::Shape { layer: 11, .. })
    ));
    let mut shifted = a.params().unwrap();
    shifted[1].layer = 4;
    assert!(matches!(
        a.set_params(&shifted),
        Err(Error::Shape {
            layer: 3,
            op: "conv2d",
            ..
        })
    ));
    let v = a.velocities().unwrap();
    assert!(v
        .iter()
        .all(|l| l.weight_bias().0.iter().all(|&x| x == 0.0)));
    b.set_velocities(&v).unwrap();
}

#[test]
fn bad_batches_are_typed_errors() {
    let arch = Arch::load("lenet").unwrap();
    let mut net = Network::new(Cpu::new(), &arch, 1).unwrap();
    let x = vec![0.0; 2 * 784];
    assert!(matches!(
        net.train_step(&x, &[1, 10], 0),
        Err(Error::Shape {
            layer: 12,
            op: "nll",
            ..
        })
    ));
    assert!(matches!(
        net.train_step(&x[1..], &[1, 2], 0),
        Err(Error::Shape {
            layer: 0,
            op: "conv2d",
            ..
        })
    ));
    assert!(net.train_step(&[], &[], 0).is_err());
}

#[test]
fn batch_sizes_from_1_to_256_and_trace_agree_with_predict() {
    let arch = lenet_dropout();
    let mut net = Network::new(Cpu::new(), &arch, 3).unwrap();
    let (x, labels) = random_batch(&arch, 256, 10, 4);
    let all = net.predict(&x, 256).unwrap();
    for n in [1, 2, 7, 64, 256] {
        let stats = net.train_step(&x[..n * 784], &labels[..n], 5).unwrap();
        assert!(stats.loss.is_finite() && stats.correct <= n);
        let logits = net.predict(&x[..n * 784], n).unwrap();
        // Eval mode is per-sample: a sample's logits do not depend on the batch around it.
        assert_eq!(&logits[..], &all[..n * 10], "batch {n}");
    }
    let trace = net.forward_trace(&x[..3 * 784], 3).unwrap();
    assert_eq!(trace.len(), arch.layers.len());
    for (t, s) in trace.iter().zip(net.output_shapes()) {
        assert_eq!(t.len(), 3 * numel(*s));
    }
    assert_eq!(trace.last().unwrap(), &all[..30]);
    // Dropout is the identity in eval mode.
    assert_eq!(trace[8], trace[7]);
}

#[test]
fn lcn_window_is_exposed_per_layer() {
    let net = Network::new(Cpu::new(), &Arch::load("jarrett").unwrap(), 1).unwrap();
    assert_eq!(net.lcn_window(3).unwrap(), Some(lcn_window(5, 1.0)));
    assert_eq!(net.lcn_window(0).unwrap(), None);
    assert_eq!(net.lcn_window(99).unwrap(), None);
}

fn argmax(z: &[f32]) -> usize {
    (0..z.len()).fold(0, |best, j| if z[j] > z[best] { j } else { best })
}

/// A few dozen random images with random labels become fully learned.
#[test]
fn tiny_overfit() {
    for (name, loss) in [
        ("lenet", LossKind::Nll),
        ("lenet", LossKind::Hinge),
        ("jarrett", LossKind::Nll),
    ] {
        let mut arch = Arch::load(name).unwrap();
        arch.loss = loss;
        let mut net = Network::new(Cpu::new(), &arch, 11).unwrap();
        let (x, labels) = random_batch(&arch, 32, 10, 12);
        let mut first = None;
        let mut last = StepStats {
            loss: f32::NAN,
            correct: 0,
        };
        for step in 0..120 {
            last = net.train_step(&x, &labels, step).unwrap();
            first.get_or_insert(last.loss);
            net.sgd_update(0.02, 0.9, 0.0).unwrap();
        }
        let logits = net.predict(&x, 32).unwrap();
        let right = logits
            .chunks(10)
            .zip(&labels)
            .filter(|(z, &l)| argmax(z) == l as usize)
            .count();
        assert_eq!(
            right, 32,
            "{name}/{loss:?}: loss {:?} → {}",
            first, last.loss
        );
    }
}

/// `cargo test --release -p kestrel-trainer --lib -- --ignored --nocapture lenet_step_timing`
/// (`KESTREL_TIMING_ARCHS=lenet` to time one architecture).
#[test]
#[ignore = "timing; run explicitly"]
fn lenet_step_timing() {
    let names = std::env::var("KESTREL_TIMING_ARCHS").unwrap_or_else(|_| "lenet,jarrett".into());
    for name in names.split(',') {
        let arch = Arch::load(name).unwrap();
        let mut net = Network::new(Cpu::new(), &arch, 1).unwrap();
        let batches: Vec<_> = (0..8).map(|s| random_batch(&arch, 64, 10, s)).collect();
        let mut times = Vec::new();
        for step in 0..200 {
            let (x, labels) = &batches[step % batches.len()];
            let t = std::time::Instant::now();
            net.train_step(x, labels, step as u64).unwrap();
            net.sgd_update(0.01, 0.9, 5e-4).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.drain(..20);
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{name}: batch 64, {} threads: median {median:.2} ms/step (p10 {:.2}, p90 {:.2}) → {:.1} s per 60,000-image epoch",
            rayon::current_num_threads(),
            times[times.len() / 10],
            times[times.len() * 9 / 10],
            median * 60_000.0 / 64.0 / 1e3
        );
    }
}
