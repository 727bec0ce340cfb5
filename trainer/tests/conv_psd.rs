//! Convolutional PSD: the conv operator and its adjoint, convolutional FISTA against a dense
//! solver on the unrolled problem, training lowering the energy, and `--init-from` setting a
//! convnet's first convolution (with its typed errors).

mod common;
use common::kestrel;

use std::path::Path;

use kestrel_trainer::backend::cpu::Cpu;
use kestrel_trainer::backend::Backend;
use kestrel_trainer::checkpoint::{write_atomic, Envelope};
use kestrel_trainer::config::Arch;
use kestrel_trainer::nn::Network;
use kestrel_trainer::patches::FloatImage;
use kestrel_trainer::psd::conv::{
    conv_fista, encode_images, encoder_loss_grad, train_conv_psd, ConvDict, ConvEncoderParams,
    ConvFistaOptions, ConvNonlin, ConvPsdOptions,
};
use kestrel_trainer::psd::{EncoderKind, PsdMeta, PsdModel};
use kestrel_trainer::train::{init_first_conv, InitFrom, InitScale};
use kestrel_trainer::Error;

/// A deterministic pseudo-random sequence in [-1, 1) (an LCG: no test-only dependencies).
fn noise(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// `A` as an explicit `[pixels, code]` matrix (column `i` = `A e_i`), `Aᵀ` applied densely.
fn unrolled(be: &Cpu, p: &ConvDict<Cpu>) -> Vec<Vec<f32>> {
    (0..p.code_len())
        .map(|i| {
            let mut e = vec![0.0; p.code_len()];
            e[i] = 1.0;
            let mut col = be.zeros(p.image_len()).unwrap();
            p.reconstruct(be, 1, &be.upload(&e).unwrap(), &mut col)
                .unwrap();
            col
        })
        .collect()
}

/// ISTA in f64 on the explicit matrix: the optimum of `½‖x − A z‖² + λ‖z‖₁`.
fn dense_ista(cols: &[Vec<f32>], x: &[f32], lambda: f64, iters: usize) -> (Vec<f64>, f64) {
    let (m, n) = (x.len(), cols.len());
    let a = |i: usize, j: usize| cols[j][i] as f64;
    // L = ‖A‖² by power iteration, then 1% over it.
    let mut v = vec![1.0f64; n];
    let mut l = 0.0;
    for _ in 0..500 {
        let av: Vec<f64> = (0..m)
            .map(|i| (0..n).map(|j| a(i, j) * v[j]).sum())
            .collect();
        let w: Vec<f64> = (0..n)
            .map(|j| (0..m).map(|i| a(i, j) * av[i]).sum())
            .collect();
        l = w.iter().map(|t| t * t).sum::<f64>().sqrt();
        v = w.iter().map(|t| t / l).collect();
    }
    let l = l * 1.01;
    let mut z = vec![0.0f64; n];
    let energy = |z: &[f64]| {
        let r: f64 = (0..m)
            .map(|i| (x[i] as f64 - (0..n).map(|j| a(i, j) * z[j]).sum::<f64>()).powi(2))
            .sum();
        0.5 * r + lambda * z.iter().map(|t| t.abs()).sum::<f64>()
    };
    for _ in 0..iters {
        let r: Vec<f64> = (0..m)
            .map(|i| (0..n).map(|j| a(i, j) * z[j]).sum::<f64>() - x[i] as f64)
            .collect();
        for (j, zj) in z.iter_mut().enumerate() {
            let g: f64 = (0..m).map(|i| a(i, j) * r[i]).sum();
            let u = *zj - g / l;
            *zj = u.signum() * (u.abs() - lambda / l).max(0.0);
        }
    }
    let e = energy(&z);
    (z, e)
}

#[test]
fn conv_operator_adjoint_and_lipschitz() {
    let be = Cpu::new();
    let (c, n, k, h, w) = (2, 3, 3, 6, 5);
    let d = noise(1, n * c * k * k);
    let p = ConvDict::new(&be, &d, c, n, k, h, w, 7).unwrap();
    let z = noise(2, p.code_len());
    let r = noise(3, p.image_len());
    let mut az = be.zeros(p.image_len()).unwrap();
    p.reconstruct(&be, 1, &be.upload(&z).unwrap(), &mut az)
        .unwrap();
    let mut atr = be.zeros(p.code_len()).unwrap();
    p.correlate(&be, 1, &be.upload(&r).unwrap(), &mut atr)
        .unwrap();
    let (lhs, rhs) = (dot(&az, &r), dot(&z, &atr));
    assert!(
        (lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0),
        "<Az, r> {lhs} vs <z, Aᵀr> {rhs}"
    );

    // The power-iteration L bounds ‖Az‖² / ‖z‖² from above, and is tight within the safety.
    let cols = unrolled(&be, &p);
    let (mut v, mut l) = (vec![1.0f64; cols.len()], 0.0);
    for _ in 0..1000 {
        let av: Vec<f64> = (0..p.image_len())
            .map(|i| {
                cols.iter()
                    .zip(&v)
                    .map(|(col, vj)| col[i] as f64 * vj)
                    .sum()
            })
            .collect();
        let wv: Vec<f64> = cols
            .iter()
            .map(|col| col.iter().zip(&av).map(|(a, b)| *a as f64 * b).sum())
            .collect();
        l = wv.iter().map(|t| t * t).sum::<f64>().sqrt();
        v = wv.iter().map(|t| t / l).collect();
    }
    let est = p.lipschitz as f64;
    assert!(est >= l && est <= l * 1.06, "L {est} vs exact {l}");
}

#[test]
fn conv_fista_converges_to_the_dense_optimum() {
    let be = Cpu::new();
    let (n, k, h, w, lambda) = (2, 3, 7, 6, 0.1f32);
    let mut d = noise(11, n * k * k);
    kestrel_trainer::psd::conv::normalize_filters(&mut d, k * k);
    let p = ConvDict::new(&be, &d, 1, n, k, h, w, 3).unwrap();
    let x = noise(12, h * w);
    let (_, e_star) = dense_ista(&unrolled(&be, &p), &x, lambda as f64, 20_000);

    let xt = be.upload(&x).unwrap();
    let mut last = f32::INFINITY;
    let mut energies = Vec::new();
    for iters in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] {
        let mut z = be.zeros(p.code_len()).unwrap();
        let o = ConvFistaOptions {
            max_iter: iters,
            tol: 0.0,
        };
        let s = conv_fista(&be, &p, 1, lambda, &xt, &mut z, None, &o).unwrap();
        assert_eq!(s.iterations, iters);
        let e = p.energy(&be, 1, lambda, &xt, &z).unwrap()[0];
        energies.push(e);
        assert!(e <= last * (1.0 + 1e-6), "energy rose: {energies:?}");
        last = e;
    }
    let rel = (last as f64 - e_star) / e_star;
    assert!(
        rel.abs() < 1e-4,
        "conv FISTA {last} vs dense optimum {e_star} ({rel:e})"
    );

    // With a tolerance it stops early and says so.
    let mut z = be.zeros(p.code_len()).unwrap();
    let o = ConvFistaOptions {
        max_iter: 5000,
        tol: 1e-6,
    };
    let s = conv_fista(&be, &p, 1, lambda, &xt, &mut z, None, &o).unwrap();
    assert!(s.converged && s.iterations < 5000, "{s:?}");
}

/// 12×12 images of a few random oriented 3-pixel strokes: sparse in a 3×3 dictionary.
pub fn stroke_images(count: usize, seed: u64) -> Vec<FloatImage> {
    (0..count)
        .map(|i| {
            let r = noise(seed * 1000 + i as u64, 12);
            let mut data = vec![0.0f32; 144];
            for s in 0..4 {
                let (y, x) = (
                    1 + ((r[3 * s] + 1.0) * 4.99) as usize,
                    1 + ((r[3 * s + 1] + 1.0) * 4.99) as usize,
                );
                let (dy, dx): (isize, isize) = if r[3 * s + 2] > 0.0 { (0, 1) } else { (1, 0) };
                for t in -1isize..=1 {
                    let (yy, xx) = (
                        (y as isize + t * dy) as usize,
                        (x as isize + t * dx) as usize,
                    );
                    data[yy * 12 + xx] += 1.0;
                }
            }
            FloatImage {
                rows: 12,
                cols: 12,
                data,
            }
        })
        .collect()
}

#[test]
fn conv_psd_training_lowers_the_energy() {
    let be = Cpu::new();
    let images = stroke_images(48, 5);
    for nonlin in [ConvNonlin::Tanh, ConvNonlin::Shrink] {
        let o = ConvPsdOptions {
            kernel: 3,
            atoms: 4,
            lambda: 0.2,
            nonlin,
            epochs: 5,
            batch: 8,
            seed: 3,
            ..ConvPsdOptions::default()
        };
        let m = train_conv_psd(&be, &images, 1, &o, |_| Ok(())).unwrap();
        let (first, last) = (m.history[0], *m.history.last().unwrap());
        assert!(
            last.energy < 0.9 * first.energy,
            "{nonlin:?}: {:?}",
            m.history
        );
        assert!(
            last.encoder_energy < first.encoder_energy,
            "{nonlin:?}: {:?}",
            m.history
        );
        for f in m.dictionary.chunks(9) {
            let norm: f32 = f.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "filter norm {norm}");
        }
        assert_eq!(m.gain.is_some(), nonlin == ConvNonlin::Tanh);
        assert!(m.theta.iter().flatten().all(|t| *t >= 0.0));
        // Seeded: the same run gives the same model.
        if nonlin == ConvNonlin::Shrink {
            // (wall times aside)
            let untimed = |mut m: kestrel_trainer::psd::conv::ConvPsd| {
                m.history.iter_mut().for_each(|l| l.seconds = 0.0);
                m
            };
            let again = train_conv_psd(&be, &images, 1, &o, |_| Ok(())).unwrap();
            assert_eq!(untimed(again), untimed(m.clone()));
        }
    }
    // Bad settings are typed errors naming the flag.
    let even = ConvPsdOptions {
        kernel: 4,
        ..ConvPsdOptions::default()
    };
    let e = train_conv_psd(&be, &images, 1, &even, |_| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--patch 4") && e.contains("odd"), "{e}");
    let big = ConvPsdOptions {
        kernel: 13,
        ..ConvPsdOptions::default()
    };
    assert!(matches!(
        train_conv_psd(&be, &images, 1, &big, |_| Ok(())),
        Err(Error::PatchTooLarge { patch: 13, .. })
    ));
    let lam = ConvPsdOptions {
        lambda: -1.0,
        ..ConvPsdOptions::default()
    };
    let e = train_conv_psd(&be, &images, 1, &lam, |_| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--lambda"), "{e}");
}

/// Writes a PSD checkpoint (tanh, or shrink with `theta`) with encoder filters
/// `[atoms, 1, k, k]`; returns its weight and bias.
fn fake_psd(path: &Path, conv: bool, atoms: usize, k: usize, theta: bool) -> (Vec<f32>, Vec<f32>) {
    let weight: Vec<f32> = (0..atoms * k * k)
        .map(|i| (i as f32 - 20.0) * 0.01)
        .collect();
    let bias: Vec<f32> = (0..atoms).map(|i| i as f32 * 0.1).collect();
    let m = PsdModel {
        meta: PsdMeta {
            encoder: if theta {
                EncoderKind::Shrink
            } else {
                EncoderKind::Tanh
            },
            conv,
            patch: k,
            channels: 1,
            atoms,
            lambda: 0.5,
            alpha: 1.0,
            contrast: None,
            data_dir: "synthetic".into(),
            seed: 1,
            epochs_done: 1,
            train_patches: 1,
            history: vec![],
        },
        dictionary: weight.clone(),
        weight: weight.clone(),
        bias: bias.clone(),
        gain: (!theta).then(|| vec![1.0; atoms]),
        theta: theta.then(|| vec![0.05; atoms]),
        lateral: None,
    };
    m.save(path).unwrap();
    (weight, bias)
}

#[test]
fn init_from_sets_the_first_convolution() {
    let dir = tempfile::tempdir().unwrap();
    let arch = Arch::load("lenet").unwrap();
    let good = dir.path().join("conv.ckpt");
    let (w, b) = fake_psd(&good, true, 12, 5, false);
    let mut net = Network::new(Cpu::new(), &arch, 1).unwrap();
    let before = net.params().unwrap();
    let init = InitFrom {
        path: good.clone(),
        scale: InitScale::Factor(2.0),
    };
    let r = init_first_conv(&mut net, &init).unwrap();
    assert_eq!((r.layer, r.factor), (0, 2.0));
    let after = net.params().unwrap();
    let scaled = |v: &[f32]| v.iter().map(|x| x * 2.0).collect::<Vec<_>>();
    assert_eq!(after[0].get("weight").unwrap(), &scaled(&w)[..]);
    assert_eq!(after[0].get("bias").unwrap(), &scaled(&b)[..]);
    assert_eq!(
        after[1..],
        before[1..],
        "only the first convolution changes"
    );

    // `std`: the filters' RMS becomes the He std of a 5×5 conv followed by a ReLU.
    let init = InitFrom {
        path: good.clone(),
        scale: InitScale::Std,
    };
    init_first_conv(&mut net, &init).unwrap();
    let wt = net.params().unwrap()[0].get("weight").unwrap().to_vec();
    let rms = (wt.iter().map(|v| v * v).sum::<f32>() / wt.len() as f32).sqrt();
    assert!((rms - (2.0f32 / 25.0).sqrt()).abs() < 1e-5, "rms {rms}");

    // A shrinkage encoder's threshold moves into the bias: relu(Wx + b − θ).
    let shrink = dir.path().join("shrink.ckpt");
    fake_psd(&shrink, true, 12, 5, true);
    let init = InitFrom {
        path: shrink,
        scale: InitScale::Factor(1.0),
    };
    init_first_conv(&mut net, &init).unwrap();
    let bias = net.params().unwrap()[0].get("bias").unwrap().to_vec();
    let want: Vec<f32> = b.iter().map(|v| v - 0.05).collect();
    assert_eq!(bias, want);
    // --init-scale 1 (the default): the first convolution's weights are exactly the encoder's.
    assert_eq!(net.params().unwrap()[0].get("weight").unwrap(), &w[..]);

    // Typed errors: wrong filter count, a dense PSD, a convnet checkpoint, a bad scale.
    let wrong = dir.path().join("wrong.ckpt");
    fake_psd(&wrong, true, 8, 5, false);
    let init = InitFrom {
        path: wrong,
        scale: InitScale::Factor(1.0),
    };
    match init_first_conv(&mut net, &init) {
        Err(e @ Error::InitFromShape { .. }) => {
            let s = e.to_string();
            assert!(
                s.contains("[12, 1, 5, 5]") && s.contains("[8, 1, 5, 5]") && s.contains("lenet"),
                "{s}"
            );
        }
        other => panic!("{other:?}"),
    }
    let dense = dir.path().join("dense.ckpt");
    fake_psd(&dense, false, 12, 5, false);
    let init = InitFrom {
        path: dense,
        scale: InitScale::Factor(1.0),
    };
    let e = init_first_conv(&mut net, &init).unwrap_err();
    assert!(
        matches!(e, Error::InitFromKind { .. }) && e.to_string().contains("dense"),
        "{e}"
    );
    let convnet = dir.path().join("convnet.ckpt");
    let env = Envelope {
        kind: "convnet".into(),
        meta: "{}".into(),
        params: vec![],
        velocities: vec![],
    };
    write_atomic(&convnet, &env.to_bytes().unwrap()).unwrap();
    let init = InitFrom {
        path: convnet,
        scale: InitScale::Factor(1.0),
    };
    let e = init_first_conv(&mut net, &init).unwrap_err();
    assert!(
        matches!(e, Error::InitFromKind { .. }) && e.to_string().contains("convnet"),
        "{e}"
    );
    assert!("0".parse::<InitScale>().is_err() && "x".parse::<InitScale>().is_err());
    assert_eq!("std".parse::<InitScale>().unwrap(), InitScale::Std);
    assert_eq!("0.5".parse::<InitScale>().unwrap(), InitScale::Factor(0.5));
}

/// The encoder's backward pass against central differences of its loss, for every tensor
/// (tanh: weight, bias, gain; shrink: weight, bias, θ).
#[test]
fn conv_encoder_gradient_matches_finite_differences() {
    let be = Cpu::new();
    let (c, n, k, rows, cols, batch) = (2, 3, 3, 6, 5, 2);
    let x = noise(21, batch * c * rows * cols);
    let target = noise(22, batch * n * rows * cols);
    for nonlin in [ConvNonlin::Tanh, ConvNonlin::Shrink] {
        let scale = match nonlin {
            ConvNonlin::Tanh => noise(23, n).iter().map(|v| 1.0 + 0.5 * v).collect(),
            ConvNonlin::Shrink => vec![0.2, 0.05, 0.3],
        };
        let p = ConvEncoderParams {
            nonlin,
            channels: c,
            kernel: k,
            atoms: n,
            weight: noise(24, n * c * k * k).iter().map(|v| 0.5 * v).collect(),
            bias: noise(25, n).iter().map(|v| 0.2 * v).collect(),
            scale,
        };
        let g = encoder_loss_grad(&be, &p, rows, cols, batch, &x, &target, 0.7).unwrap();
        let loss = |q: &ConvEncoderParams| {
            encoder_loss_grad(&be, q, rows, cols, batch, &x, &target, 0.7)
                .unwrap()
                .loss
        };
        let eps = 1e-3f32;
        let mut checked = 0;
        for (which, analytic) in [(0, &g.weight), (1, &g.bias), (2, &g.scale)] {
            for i in 0..analytic.len() {
                let at = |delta: f32| {
                    let mut q = p.clone();
                    let t = match which {
                        0 => &mut q.weight,
                        1 => &mut q.bias,
                        _ => &mut q.scale,
                    };
                    t[i] += delta;
                    loss(&q)
                };
                let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
                // Shrink has kinks at |u| = θ: skip where the one-sided slopes disagree.
                let (right, left) = (
                    (at(eps) - loss(&p)) / eps as f64,
                    (loss(&p) - at(-eps)) / eps as f64,
                );
                if (right - left).abs() > 1e-2 * (1.0 + fd.abs()) {
                    continue;
                }
                let a = analytic[i] as f64;
                assert!(
                    (a - fd).abs() <= 2e-3 + 1e-2 * fd.abs(),
                    "{nonlin:?} tensor {which} [{i}]: analytic {a} vs finite difference {fd}"
                );
                checked += 1;
            }
        }
        let total = g.weight.len() + g.bias.len() + g.scale.len();
        assert!(
            checked * 10 >= total * 9,
            "{nonlin:?}: only {checked} of {total} checked"
        );
    }
    // Bad lengths are typed errors.
    let p = ConvEncoderParams {
        nonlin: ConvNonlin::Tanh,
        channels: 1,
        kernel: 3,
        atoms: 2,
        weight: vec![0.0; 17],
        bias: vec![0.0; 2],
        scale: vec![1.0; 2],
    };
    let e = encode_images(&be, &p, 5, 5, 1, &[0.0; 25])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("weight") && e.contains("17") && e.contains("18"),
        "{e}"
    );
}

/// The CLI end to end: `psd train --conv` on a folder of pictures, `visualize`, then
/// `train --arch lenet --init-from` (good checkpoint, a convnet's, mismatched filters).
#[test]
fn cli_conv_psd_then_init_from() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    let pics = tmp.path().join("pics");
    std::fs::create_dir(&pics).unwrap();
    for (i, im) in stroke_images(6, 9).iter().enumerate() {
        image::GrayImage::from_fn(12, 12, |x, y| {
            image::Luma([(im.data[(y * 12 + x) as usize] * 120.0).min(255.0) as u8])
        })
        .save(pics.join(format!("s{i}.png")))
        .unwrap();
    }
    let psd = |atoms: &str, out: &str| {
        kestrel(&[
            "psd",
            "train",
            "--data",
            &p("pics"),
            "--conv",
            "--patch",
            "5",
            "--atoms",
            atoms,
            "--encoder",
            "shrink",
            "--epochs",
            "2",
            "--out",
            &p(out),
        ])
    };
    let (ok, stdout, stderr) = psd("12", "conv.ckpt");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("epoch   2/2"), "{stdout}");
    let m = PsdModel::load(&tmp.path().join("conv.ckpt")).unwrap();
    assert!(m.meta.conv && m.meta.atoms == 12 && m.meta.patch == 5 && m.meta.epochs_done == 2);
    assert_eq!(m.weight.len(), 12 * 25);
    assert!(tmp.path().join("conv.ckpt.energy.png").is_file());
    let (ok, stdout, stderr) = kestrel(&[
        "visualize",
        "--checkpoint",
        &p("conv.ckpt"),
        "--out",
        &p("f.png"),
    ]);
    assert!(
        ok && stdout.contains("convolutional dictionary"),
        "{stdout} {stderr}"
    );

    let data = std::env::var("KESTREL_DATA")
        .unwrap_or_else(|_| kestrel_trainer::data::DEFAULT_DATA_DIR.into());
    let train = |init: &str, out: &str| {
        kestrel(&[
            "train",
            "--arch",
            "lenet",
            "--data",
            &data,
            "--epochs",
            "1",
            "--limit",
            "200",
            "--validation",
            "50",
            "--out",
            &p(out),
            "--init-from",
            &p(init),
        ])
    };
    let (ok, stdout, stderr) = train("conv.ckpt", "lenet.ckpt");
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("layer 0 (conv2d) initialized from") && stdout.contains("conv.ckpt"),
        "{stdout}"
    );
    // A convnet checkpoint and mismatched filters are typed errors naming the file.
    let (ok, _, stderr) = train("lenet.ckpt", "x.ckpt");
    assert!(
        !ok && stderr.contains("lenet.ckpt") && stderr.contains("a convnet checkpoint"),
        "{stderr}"
    );
    let (ok, _, stderr) = psd("8", "eight.ckpt");
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = train("eight.ckpt", "x.ckpt");
    assert!(
        !ok && stderr.contains("eight.ckpt")
            && stderr.contains("[12, 1, 5, 5]")
            && stderr.contains("[8, 1, 5, 5]"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked") && !tmp.path().join("x.ckpt").exists());
}
