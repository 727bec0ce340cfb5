//! The sparse-code encoder ops (`PatchNorm`, `Shrink`, `Gain`, `Lista`, `Dictionary`)
//! against the naive implementations in every precision: edge cases, proptest over random
//! shapes, and whole PSD encoders layer by layer.

use std::{format, vec::Vec};

use kestrel_format::{LayerKind, Model, Precision, Shape};
use proptest::prelude::*;

use super::{check_layer, input_codes, naive, random_input, run, Out, PRECISIONS};
use crate::testutil::{build, Spec};
use crate::{Error, Input, Plan};

#[test]
fn edge_cases_match_naive() {
    let s = Shape::new;
    let cases: &[(Shape, Spec)] = &[
        (s(1, 1, 1), Spec::PatchNorm { contrast: None }), // a single value becomes 0
        (
            s(1, 1, 1),
            Spec::PatchNorm {
                contrast: Some(0.5),
            },
        ),
        (
            s(3, 5, 7),
            Spec::PatchNorm {
                contrast: Some(0.01),
            },
        ),
        (
            s(1, 8, 8),
            Spec::PatchNorm {
                contrast: Some(50.0),
            },
        ), // eps dominates
        (s(2, 3, 3), Spec::PatchNorm { contrast: None }),
        (s(5, 2, 3), Spec::Shrink),
        (s(1, 1, 1), Spec::Shrink),
        (s(4, 3, 1), Spec::Gain),
        (s(1, 1, 1), Spec::Lista { steps: 1 }),
        (s(7, 1, 1), Spec::Lista { steps: 2 }),
        (s(33, 1, 1), Spec::Lista { steps: 5 }), // SIMD tails
        (s(9, 1, 1), Spec::Dictionary { lambda: 0.1 }),
    ];
    for (n, &(shape, spec)) in cases.iter().enumerate() {
        check_layer(shape, spec, 100 + n as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn elementwise_ops_match_naive(
        c in 1u32..=6, h in 1u32..=7, w in 1u32..=9, op in 0usize..4, seed in any::<u64>(),
    ) {
        let spec = [
            Spec::PatchNorm { contrast: None },
            Spec::PatchNorm { contrast: Some(0.05) },
            Spec::Shrink,
            Spec::Gain,
        ][op];
        check_layer(Shape::new(c, h, w), spec, seed);
    }

    #[test]
    fn lista_matches_naive(n in 1u32..=70, steps in 1u8..=4, seed in any::<u64>()) {
        check_layer(Shape::new(n, 1, 1), Spec::Lista { steps }, seed);
    }
}

/// The three dense PSD encoders of docs/FORMAT.md, layer by layer: the runtime's output of
/// the first `k` layers fed to the naive layer `k` gives its output of `k + 1` layers.
#[test]
fn psd_encoders_match_naive_layer_by_layer() {
    let input = Shape::new(1, 6, 6);
    let dict = Spec::Dictionary { lambda: 0.2 };
    let encoders: [&[Spec]; 3] = [
        &[
            Spec::PatchNorm {
                contrast: Some(0.1),
            },
            Spec::Linear { out: 24 },
            Spec::Tanh,
            Spec::Gain,
            dict,
        ],
        &[
            Spec::PatchNorm { contrast: None },
            Spec::Linear { out: 17 },
            Spec::Shrink,
            dict,
        ],
        &[
            Spec::PatchNorm {
                contrast: Some(0.1),
            },
            Spec::Linear { out: 40 },
            Spec::Lista { steps: 3 },
            dict,
        ],
    ];
    for specs in encoders {
        for precision in PRECISIONS {
            let x = random_input(input, 9);
            let full = build(precision, input, specs, 9);
            let full = Model::from_bytes(&full).unwrap();
            let mut prev = match precision {
                Precision::Int8 => Out::I8(input_codes(&full, &x)),
                _ => Out::F32(x.clone()),
            };
            for k in 1..=specs.len() {
                let buf = build(precision, input, &specs[..k], 9);
                let model = Model::from_bytes(&buf).unwrap();
                let layer = &model.layers()[k - 1];
                let got = run(&model, Input::Normalized(&x));
                let what = format!("{precision:?} layer {} ({:?})", k - 1, specs[k - 1]);
                match (&prev, &got) {
                    (Out::F32(p), Out::F32(y)) => {
                        let p64: Vec<f64> = p.iter().map(|&v| v as f64).collect();
                        naive::assert_close(y, &naive::real_layer(layer, &p64), 1e-4, &what);
                    }
                    (Out::I8(p), Out::I8(y)) => {
                        let lsb = matches!(layer.kind, LayerKind::PatchNorm { .. }) as i32;
                        naive::assert_codes(y, &naive::int8_layer(layer, p), lsb, &what);
                    }
                    _ => panic!("{what}: element type changed"),
                }
                prev = got;
            }
            assert_eq!(
                run(&full, Input::Normalized(&x)),
                prev,
                "{precision:?} full model"
            );
        }
    }
}

/// LISTA's arena: input, its second code buffer (int8: and `N` i32 row sums), output.
#[test]
fn lista_arena_is_exact() {
    for precision in PRECISIONS {
        let e = if precision == Precision::Int8 { 1 } else { 4 };
        let n = 13usize;
        let buf = build(
            precision,
            Shape::new(n as u32, 1, 1),
            &[Spec::Lista { steps: 2 }],
            1,
        );
        let model = Model::from_bytes(&buf).unwrap();
        let plan = Plan::new(&model).unwrap();
        let r16 = |v: usize| v.div_ceil(16) * 16;
        let scratch = if e == 1 { 5 * n } else { 4 * n };
        assert_eq!(
            plan.arena_bytes(),
            2 * r16(n * e) + r16(scratch),
            "{precision:?}"
        );
        assert_eq!(plan.layer_stats(0).unwrap().scratch_bytes, scratch);
        for set in crate::KernelSet::ALL {
            assert_eq!(
                Plan::arena_bytes_for(&model, set).unwrap(),
                plan.arena_bytes()
            );
        }
        let x = random_input(Shape::new(n as u32, 1, 1), 1);
        let mut a = crate::testutil::arena(plan.arena_bytes());
        let bytes = crate::testutil::bytes_mut(&mut a);
        let need = plan.arena_bytes();
        assert!(plan.run(&mut bytes[..need], Input::Normalized(&x)).is_ok());
        let err = plan
            .run(&mut bytes[..need - 1], Input::Normalized(&x))
            .unwrap_err();
        assert_eq!(
            err,
            Error::ArenaTooSmall {
                needed: need,
                got: need - 1
            }
        );
    }
}
