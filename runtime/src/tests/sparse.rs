//! `crate::sparse`: FISTA reaches the optimum of a naive f64 ISTA run to convergence,
//! respects `target_energy`, is deterministic, and reports wrong lengths as typed errors.

use std::{vec, vec::Vec};

use kestrel_format::{Model, Precision, Shape};
use proptest::prelude::*;

use crate::sparse::{FistaOptions, Problem, ENERGY_CHECK_EVERY};
use crate::testutil::{build, Rng, Spec};
use crate::Error;

/// An f32 model `[Linear k→n, Dictionary]` on a `[k, 1, 1]` input.
fn model_file(k: u32, n: u32, lambda: f32, seed: u64) -> kestrel_format::AlignedBuf {
    let specs = [Spec::Linear { out: n }, Spec::Dictionary { lambda }];
    build(Precision::F32, Shape::new(k, 1, 1), &specs, seed)
}

/// ISTA in f64 from 0 with step `1/L`, until the iterate stops moving.
fn ista_f64(d: &[f32], k: usize, n: usize, lambda: f64, l: f64, x: &[f32]) -> (Vec<f64>, f64) {
    let d: Vec<f64> = d.iter().map(|&v| v as f64).collect();
    let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut h = vec![0.0f64; n];
    for _ in 0..200_000 {
        let r: Vec<f64> = (0..k)
            .map(|i| (0..n).map(|j| d[i * n + j] * h[j]).sum::<f64>() - x[i])
            .collect();
        let next: Vec<f64> = (0..n)
            .map(|j| {
                let g: f64 = (0..k).map(|i| d[i * n + j] * r[i]).sum();
                super::naive::shrink(h[j] - g / l, lambda / l)
            })
            .collect();
        let moved: f64 = next.iter().zip(&h).map(|(a, b)| (a - b).abs()).sum();
        h = next;
        if moved < 1e-14 {
            break;
        }
    }
    let res: f64 = (0..k)
        .map(|i| (x[i] - (0..n).map(|j| d[i * n + j] * h[j]).sum::<f64>()).powi(2))
        .sum();
    let energy = 0.5 * res + lambda * h.iter().map(|v| v.abs()).sum::<f64>();
    (h, energy)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn fista_reaches_the_ista_optimum(
        k in 2u32..=12, n in 1u32..=16, lambda in 0.02f32..0.5, seed in any::<u64>(),
    ) {
        let file = model_file(k, n, lambda, seed);
        let model = Model::from_bytes(&file).unwrap();
        let p = Problem::new(&model).unwrap();
        prop_assert_eq!((p.input_len(), p.atoms()), (k as usize, n as usize));
        let Some(kestrel_format::LayerKind::Dictionary { atoms, lipschitz, .. }) =
            model.layers().last().map(|l| l.kind) else { unreachable!() };
        let x = Rng::new(seed).f32s(k as usize, -1.0, 1.0);
        let (_, want) = ista_f64(atoms, k as usize, n as usize, lambda as f64, lipschitz as f64, &x);

        let mut h = vec![0.0f32; n as usize];
        let mut scratch = vec![0.0f32; p.scratch_len()];
        let opts = FistaOptions { max_iter: 5000, tol: 1e-7, target_energy: None };
        let stats = p.fista(&x, &mut h, &opts, &mut scratch).unwrap();
        let e = p.energy(&x, &h, &mut []).unwrap();
        prop_assert_eq!(e, stats.energy);
        prop_assert!(((e as f64) - want).abs() <= 1e-4 * want.abs().max(1e-6),
            "FISTA energy {} after {} iterations, ISTA optimum {}", e, stats.iterations, want);

        // Deterministic: the same bits again; a warm start at the optimum stays at it.
        let mut h2 = vec![0.0f32; n as usize];
        let again = p.fista(&x, &mut h2, &opts, &mut scratch).unwrap();
        prop_assert_eq!(again, stats);
        prop_assert!(h.iter().zip(&h2).all(|(a, b)| a.to_bits() == b.to_bits()));
        let warm = p.fista(&x, &mut h2, &opts, &mut scratch).unwrap();
        prop_assert!(((warm.energy as f64) - want).abs() <= 1e-4 * want.abs().max(1e-6));

        // target_energy: stops at the first check at or below the target.
        let target = want as f32 * 1.05 + 1e-4;
        let mut h3 = vec![0.0f32; n as usize];
        let o = FistaOptions { max_iter: 5000, tol: 0.0, target_energy: Some(target) };
        let s = p.fista(&x, &mut h3, &o, &mut scratch).unwrap();
        prop_assert!(s.energy <= target);
        prop_assert!(s.iterations.is_multiple_of(ENERGY_CHECK_EVERY) && s.iterations < 5000);

        let r = p.residual_sq(&x, &h, &mut []).unwrap();
        let l1: f32 = h.iter().map(|v| v.abs()).sum();
        prop_assert!((0.5 * r + lambda * l1 - e).abs() <= 1e-6 * e.abs().max(1.0));
    }
}

#[test]
fn max_iter_and_tol_zero_run_every_iteration() {
    let file = model_file(6, 9, 0.1, 3);
    let model = Model::from_bytes(&file).unwrap();
    let p = Problem::new(&model).unwrap();
    let x = Rng::new(3).f32s(6, -1.0, 1.0);
    let mut h = vec![0.0f32; 9];
    let mut scratch = vec![0.0f32; p.scratch_len()];
    for max_iter in [0, 1, 7] {
        h.fill(0.0);
        let o = FistaOptions {
            max_iter,
            tol: 0.0,
            target_energy: None,
        };
        let s = p.fista(&x, &mut h, &o, &mut scratch).unwrap();
        assert_eq!(s.iterations, max_iter);
    }
}

#[test]
fn preprocess_normalizes_then_patch_norms() {
    // PatchNorm → Linear → Lista → Dictionary on a 4×4 patch, input mean 0.3 / std 0.4.
    let specs = [
        Spec::PatchNorm {
            contrast: Some(0.1),
        },
        Spec::Linear { out: 5 },
        Spec::Lista { steps: 2 },
        Spec::Dictionary { lambda: 0.1 },
    ];
    let file = build(Precision::F32, Shape::new(1, 4, 4), &specs, 4);
    let model = Model::from_bytes(&file).unwrap();
    let p = Problem::new(&model).unwrap();
    let raw: Vec<u8> = Rng::new(4).bytes(16);
    let mut x = vec![0.0f32; 16];
    p.preprocess(&raw, &mut x).unwrap();
    let norm: Vec<f64> = raw
        .iter()
        .map(|&v| ((v as f32 / 255.0 - 0.3) / 0.4) as f64)
        .collect();
    let want = super::naive::patch_norm(&norm, Some(0.1));
    super::naive::assert_close(&x, &want, 1e-5, "preprocess");
}

#[test]
fn wrong_lengths_and_models_are_typed_errors() {
    let file = model_file(6, 9, 0.1, 5);
    let model = Model::from_bytes(&file).unwrap();
    let p = Problem::new(&model).unwrap();
    let x = vec![0.5f32; 6];
    let mut h = vec![0.0f32; 9];
    let mut scratch = vec![0.0f32; p.scratch_len()];
    let o = FistaOptions {
        max_iter: 10,
        tol: 0.0,
        target_energy: None,
    };
    let input = |got| Error::InputLength { expected: 6, got };
    assert_eq!(p.fista(&x[..5], &mut h, &o, &mut scratch), Err(input(5)));
    assert_eq!(
        p.fista(&x, &mut h[..8], &o, &mut scratch),
        Err(Error::CodeLength {
            expected: 9,
            got: 8
        })
    );
    let short = p.scratch_len() - 1;
    assert_eq!(
        p.fista(&x, &mut h, &o, &mut scratch[..short]),
        Err(Error::ScratchTooSmall {
            needed: 36,
            got: short
        })
    );
    assert_eq!(p.energy(&[], &h, &mut []), Err(input(0)));
    assert_eq!(
        p.residual_sq(&x, &h[..1], &mut []),
        Err(Error::CodeLength {
            expected: 9,
            got: 1
        })
    );
    let mut out = vec![0.0f32; 6];
    assert_eq!(p.preprocess(&[0; 7], &mut out), Err(input(7)));
    assert_eq!(p.preprocess(&[0; 6], &mut out[..2]), Err(input(2)));

    // A classifier (no Dictionary) defines no problem.
    let file = build(
        Precision::F32,
        Shape::new(4, 1, 1),
        &[Spec::Linear { out: 3 }, Spec::Relu],
        1,
    );
    let model = Model::from_bytes(&file).unwrap();
    assert_eq!(
        Problem::new(&model).err(),
        Some(Error::NotDictionary { layer: 1 })
    );
}
