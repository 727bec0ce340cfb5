//! The plan: arena formula and layout, alignment, errors, in-place layers, the input
//! stage, and a model covering every op in every precision.

use std::{format, string::ToString, vec, vec::Vec};

use kestrel_format::quant::{dequantize, quantize_f32};
use kestrel_format::{ConvGeom, Dense, Layer, LayerKind, Model, Precision, QParams, Shape, INPUT};
use proptest::prelude::*;

use super::{input_codes, naive, random_input, run, Out, PRECISIONS};
use crate::kernels::Elem;
use crate::plan::kernel_scratch;
use crate::testutil::{arena, build, bytes_mut, Rng, Spec, EVERY_OP};
use crate::{Error, Input, Output, Plan, IMPL};

const EVERY_OP_INPUT: Shape = Shape::new(3, 9, 7);

fn r16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// The kernel set compiled in is the one `build.rs` promises for this target: a build meant
/// to test SIMD variants must not silently fall back to the reference.
#[test]
fn impl_matches_target() {
    let expected = if cfg!(feature = "force-reference") {
        "reference"
    } else if cfg!(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "f16c"
    )) {
        "avx2"
    } else if cfg!(all(target_arch = "aarch64", target_feature = "dotprod")) {
        "neon-dotprod"
    } else if cfg!(target_arch = "aarch64") {
        "neon"
    } else {
        "reference"
    };
    assert_eq!(IMPL, expected);
}

/// Layer by layer: the runtime's output of the first `k` layers, fed to the naive layer
/// `k`, gives the runtime's output of the first `k + 1` layers.
#[test]
fn every_op_matches_naive_layer_by_layer() {
    for precision in PRECISIONS {
        let full = build(precision, EVERY_OP_INPUT, EVERY_OP, 3);
        let full = Model::from_bytes(&full).unwrap();
        let x = random_input(EVERY_OP_INPUT, 3);
        let mut prev = match precision {
            Precision::Int8 => Out::I8(input_codes(&full, &x)),
            _ => Out::F32(x.clone()),
        };
        for k in 1..=EVERY_OP.len() {
            let buf = build(precision, EVERY_OP_INPUT, &EVERY_OP[..k], 3);
            let model = Model::from_bytes(&buf).unwrap();
            let layer = &model.layers()[k - 1];
            let got = run(&model, Input::Normalized(&x));
            let what = format!("{precision:?} layer {} ({:?})", k - 1, EVERY_OP[k - 1]);
            match (&prev, &got) {
                (Out::F32(p), Out::F32(y)) => {
                    let p64: Vec<f64> = p.iter().map(|&v| v as f64).collect();
                    naive::assert_close(y, &naive::real_layer(layer, &p64), 1e-4, &what);
                }
                (Out::I8(p), Out::I8(y)) => {
                    let lsb = matches!(layer.kind, LayerKind::Lcn { .. }) as i32;
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

#[test]
fn run_f32_dequantizes_int8_output() {
    let buf = build(Precision::Int8, EVERY_OP_INPUT, EVERY_OP, 5);
    let model = Model::from_bytes(&buf).unwrap();
    let plan = Plan::new(&model).unwrap();
    let x = random_input(EVERY_OP_INPUT, 5);
    let Out::I8(codes) = run(&model, Input::Normalized(&x)) else {
        panic!("int8 model")
    };
    let q = model.layers().last().unwrap().out_quant.unwrap();
    let mut a = arena(plan.arena_bytes());
    let mut out = vec![0.0; codes.len()];
    plan.run_f32(bytes_mut(&mut a), Input::Normalized(&x), &mut out)
        .unwrap();
    let want: Vec<f32> = codes
        .iter()
        .map(|&c| dequantize(c, q.scale, q.zero_point))
        .collect();
    assert_eq!(out, want);
}

#[test]
fn pixels_are_normalized_then_quantized() {
    let shape = Shape::new(3, 5, 4);
    let pixels = Rng::new(9).bytes(shape.len());
    for precision in PRECISIONS {
        // A lone flatten returns the input stage's buffer untouched.
        let buf = build(precision, shape, &[Spec::Flatten], 9);
        let model = Model::from_bytes(&buf).unwrap();
        let (mean, std) = (model.desc.input.mean, model.desc.input.std);
        let x: Vec<f32> = pixels
            .iter()
            .map(|&p| (p as f32 / 255.0 - mean) / std)
            .collect();
        let got = run(&model, Input::Pixels(&pixels));
        assert_eq!(got, run(&model, Input::Normalized(&x)), "{precision:?}");
        match got {
            Out::F32(y) => assert_eq!(y, x),
            Out::I8(y) => {
                let q = model.desc.input.quant.unwrap();
                let want: Vec<i8> = x
                    .iter()
                    .map(|&v| quantize_f32(v, q.scale, q.zero_point))
                    .collect();
                assert_eq!(y, want);
            }
        }
    }
}

/// A random chain of up to `max` layers that fit `input`.
fn random_chain(input: Shape, seed: u64, max: usize) -> Vec<Spec> {
    let mut rng = Rng::new(seed);
    let mut shape = input;
    let mut specs = Vec::new();
    for _ in 0..max * 4 {
        if specs.len() == max {
            break;
        }
        let (a, b) = (rng.int(1, 4) as u8, rng.int(1, 3) as u8);
        let top = if cfg!(feature = "encoders") { 12 } else { 8 };
        let spec = match rng.int(0, top) {
            0 => Spec::Conv {
                oc: rng.int(1, 6) as u32,
                kh: a,
                kw: rng.int(1, 4) as u8,
                stride: b,
                pad: rng.int(0, 3) as u8 % a,
            },
            1 => Spec::Linear {
                out: rng.int(1, 40) as u32,
            },
            2 => Spec::Relu,
            3 => Spec::Tanh,
            4 => Spec::Abs,
            5 => Spec::MaxPool { k: a, stride: b },
            6 => Spec::AvgPool { k: a, stride: b },
            7 => Spec::Lcn {
                size: 2 * b - 1,
                eps: 0.1,
            },
            8 => Spec::Flatten,
            9 => Spec::PatchNorm {
                contrast: (b > 1).then_some(0.1),
            },
            10 => Spec::Shrink,
            11 => Spec::Gain,
            _ => Spec::Lista { steps: b },
        };
        if let Some(out) = spec.output(shape) {
            specs.push(spec);
            shape = out;
        }
    }
    specs
}

/// The arena formula written out from the shapes alone.
fn expected_arena(precision: Precision, input: Shape, specs: &[Spec]) -> usize {
    let e = if precision == Precision::Int8 { 1 } else { 4 };
    let mut shape = input;
    let mut need = 0;
    for spec in specs {
        let out = spec.output(shape).unwrap();
        let live = match spec {
            Spec::Relu
            | Spec::Tanh
            | Spec::Abs
            | Spec::Flatten
            | Spec::PatchNorm { .. }
            | Spec::Shrink
            | Spec::Gain
            | Spec::Dictionary { .. } => r16(shape.len() * e),
            // A second code buffer; int8 also N i32 row sums.
            Spec::Lista { .. } => {
                let scratch = shape.len() * if e == 1 { 5 } else { 4 };
                r16(shape.len() * e) + r16(scratch) + r16(out.len() * e)
            }
            Spec::Lcn { .. } => {
                let scratch = 2 * (shape.h * shape.w) as usize * 4;
                r16(shape.len() * e) + r16(scratch) + r16(out.len() * e)
            }
            _ => r16(shape.len() * e) + r16(out.len() * e),
        };
        need = need.max(live);
        shape = out;
    }
    need
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `arena_bytes` is the formula, the plan runs in exactly that, and one byte less is
    /// `ArenaTooSmall` with the exact need.
    #[test]
    fn arena_is_exact(
        c in 1u32..=4, h in 1u32..=8, w in 1u32..=8,
        p in 0usize..3, seed in any::<u64>(), len in 1usize..=6,
    ) {
        let input = Shape::new(c, h, w);
        let specs = random_chain(input, seed, len);
        prop_assume!(!specs.is_empty());
        let precision = PRECISIONS[p];
        let buf = build(precision, input, &specs, seed);
        let model = Model::from_bytes(&buf).unwrap();
        let plan = Plan::new(&model).unwrap();
        let need = plan.arena_bytes();
        prop_assert_eq!(need, expected_arena(precision, input, &specs));

        // The same number from the layer statistics.
        let from_stats = (0..specs.len())
            .map(|i| {
                let s = plan.layer_stats(i).unwrap();
                let out = if s.in_place { 0 } else { r16(s.out_bytes) };
                r16(s.in_bytes) + r16(s.scratch_bytes) + out
            })
            .max()
            .unwrap();
        prop_assert_eq!(need, from_stats);
        prop_assert!(plan.layer_stats(specs.len()).is_none());

        let x = random_input(input, seed);
        let mut a = arena(need + 16);
        let bytes = bytes_mut(&mut a);
        prop_assert!(plan.run(&mut bytes[..need], Input::Normalized(&x)).is_ok());
        let err = plan.run(&mut bytes[..need - 1], Input::Normalized(&x)).unwrap_err();
        prop_assert_eq!(err, Error::ArenaTooSmall { needed: need, got: need - 1 });
    }
}

#[test]
fn unaligned_arena_skips_to_aligned_address() {
    for precision in PRECISIONS {
        let buf = build(precision, EVERY_OP_INPUT, EVERY_OP, 4);
        let model = Model::from_bytes(&buf).unwrap();
        let plan = Plan::new(&model).unwrap();
        let x = random_input(EVERY_OP_INPUT, 4);
        let want = run(&model, Input::Normalized(&x));
        let mut a = arena(plan.arena_bytes() + 32);
        for offset in 0..16 {
            let skip = (16 - offset) % 16;
            let needed = plan.arena_bytes() + skip;
            let bytes = &mut bytes_mut(&mut a)[offset..];
            let got = match plan
                .run(&mut bytes[..needed], Input::Normalized(&x))
                .unwrap()
            {
                Output::F32(y) => Out::F32(y.to_vec()),
                Output::I8(y) => Out::I8(y.to_vec()),
            };
            assert_eq!(got, want, "{precision:?} offset {offset}");
            let short = plan.run(&mut bytes[..needed - 1], Input::Normalized(&x));
            assert_eq!(
                short.unwrap_err(),
                Error::ArenaTooSmall {
                    needed,
                    got: needed - 1
                },
                "offset {offset}"
            );
        }
        // Shorter than the skip itself.
        let err = plan.run(&mut bytes_mut(&mut a)[1..5], Input::Normalized(&x));
        let needed = plan.arena_bytes() + 15;
        assert_eq!(err.unwrap_err(), Error::ArenaTooSmall { needed, got: 4 });
    }
}

#[test]
fn previous_arena_contents_do_not_matter() {
    for precision in PRECISIONS {
        let buf = build(precision, EVERY_OP_INPUT, EVERY_OP, 6);
        let model = Model::from_bytes(&buf).unwrap();
        let plan = Plan::new(&model).unwrap();
        let x = random_input(EVERY_OP_INPUT, 6);
        let want = run(&model, Input::Normalized(&x));
        // All-ones bytes are NaN as f32 and −1 as i8.
        let mut a = arena(plan.arena_bytes());
        bytes_mut(&mut a).fill(0xff);
        let got = match plan.run(bytes_mut(&mut a), Input::Normalized(&x)).unwrap() {
            Output::F32(y) => Out::F32(y.to_vec()),
            Output::I8(y) => Out::I8(y.to_vec()),
        };
        assert_eq!(got, want, "{precision:?}");
    }
}

/// `run_observed` reports the input, then every layer once, in order, and returns what
/// `run` returns.
#[test]
fn run_observed_reports_each_layer_in_order() {
    let buf = build(Precision::Int8, EVERY_OP_INPUT, EVERY_OP, 3);
    let model = Model::from_bytes(&buf).unwrap();
    let plan = Plan::new(&model).unwrap();
    let x = random_input(EVERY_OP_INPUT, 3);
    let want = run(&model, Input::Normalized(&x));
    let mut seen = Vec::new();
    let mut a = arena(plan.arena_bytes());
    let got = match plan.run_observed(bytes_mut(&mut a), Input::Normalized(&x), |i| seen.push(i)) {
        Ok(Output::I8(y)) => Out::I8(y.to_vec()),
        other => panic!("{other:?}"),
    };
    assert_eq!(got, want);
    let layers: Vec<_> = (0..model.layers().len()).map(Some).collect();
    assert_eq!(seen[0], None);
    assert_eq!(seen[1..], layers[..]);
}

/// Where the output lands: in place layers keep the buffer, others switch ends.
#[test]
fn in_place_layers_keep_their_buffer() {
    let input = Shape::new(3, 5, 5);
    let conv = Spec::Conv {
        oc: 2,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 0,
    };
    let cases: &[(&[Spec], bool)] = &[
        (&[Spec::Relu], true),
        (&[Spec::Tanh, Spec::Abs, Spec::Flatten], true),
        (&[conv, Spec::Relu, Spec::Flatten], false),
        (&[conv, Spec::Relu, Spec::Linear { out: 4 }], true),
    ];
    for precision in PRECISIONS {
        let e = if precision == Precision::Int8 { 1 } else { 4 };
        for &(specs, at_start) in cases {
            let buf = build(precision, input, specs, 1);
            let model = Model::from_bytes(&buf).unwrap();
            let plan = Plan::new(&model).unwrap();
            let n = plan.arena_bytes();
            if specs
                .iter()
                .all(|s| matches!(s, Spec::Relu | Spec::Tanh | Spec::Abs | Spec::Flatten))
            {
                assert_eq!(n, r16(input.len() * e), "{specs:?}");
            }
            for (i, spec) in specs.iter().enumerate() {
                let in_place = !matches!(spec, Spec::Conv { .. } | Spec::Linear { .. });
                assert_eq!(plan.layer_stats(i).unwrap().in_place, in_place);
            }
            let mut a = arena(n);
            let bytes = bytes_mut(&mut a);
            let base = bytes.as_ptr() as usize;
            let x = random_input(input, 1);
            let (ptr, len) = match plan.run(bytes, Input::Normalized(&x)).unwrap() {
                Output::F32(y) => (y.as_ptr() as usize, y.len() * 4),
                Output::I8(y) => (y.as_ptr() as usize, y.len()),
            };
            let want = if at_start { base } else { base + n - r16(len) };
            assert_eq!(ptr, want, "{precision:?} {specs:?}");
        }
    }
}

#[test]
fn layer_stats_count_params_and_macs() {
    let buf = build(Precision::Int8, EVERY_OP_INPUT, EVERY_OP, 2);
    let model = Model::from_bytes(&buf).unwrap();
    let plan = Plan::new(&model).unwrap();
    // conv 3→5, 3×3, pad 1 on [3, 9, 7] → [5, 9, 7]
    let conv = plan.layer_stats(0).unwrap();
    assert_eq!(conv.params, 5 * 3 * 3 * 3 + 5);
    assert_eq!(conv.macs, 5 * 9 * 7 * 3 * 3 * 3);
    assert_eq!((conv.in_bytes, conv.out_bytes), (3 * 9 * 7, 5 * 9 * 7));
    assert_eq!((conv.scratch_bytes, conv.in_place), (0, false));
    // LCN on [5, 9, 7]: two f32 maps of 9×7
    let lcn = plan.layer_stats(2).unwrap();
    assert_eq!(
        (lcn.params, lcn.macs, lcn.scratch_bytes),
        (0, 0, 2 * 9 * 7 * 4)
    );
    // linear [n] → [7]
    let last = EVERY_OP.len() - 1;
    let n = model.layers()[last].input.len();
    let fc = plan.layer_stats(last).unwrap();
    assert_eq!((fc.params, fc.macs), (7 * n + 7, 7 * n as u64));
    assert!(plan.layer_stats(last + 1).is_none());
    assert!(core::ptr::eq(plan.model(), &model));
}

#[test]
fn wrong_lengths_are_errors() {
    for precision in PRECISIONS {
        let buf = build(precision, EVERY_OP_INPUT, EVERY_OP, 8);
        let model = Model::from_bytes(&buf).unwrap();
        let plan = Plan::new(&model).unwrap();
        let mut a = arena(plan.arena_bytes());
        let bytes = bytes_mut(&mut a);
        let n = EVERY_OP_INPUT.len();
        let pixels = vec![0u8; n + 1];
        assert_eq!(
            plan.run(bytes, Input::Pixels(&pixels)).unwrap_err(),
            Error::InputLength {
                expected: n,
                got: n + 1
            }
        );
        let x = vec![0.0; n - 1];
        assert_eq!(
            plan.run(bytes, Input::Normalized(&x)).unwrap_err(),
            Error::InputLength {
                expected: n,
                got: n - 1
            }
        );
        let mut out = vec![0.0; 6];
        assert_eq!(
            plan.run_f32(bytes, Input::Pixels(&pixels[..n]), &mut out)
                .unwrap_err(),
            Error::OutputLength {
                expected: 7,
                got: 6
            }
        );
        let mut out = vec![0.0; 7];
        assert!(plan
            .run_f32(bytes, Input::Pixels(&pixels[..n]), &mut out)
            .is_ok());
    }
}

/// The validator already rules these out, so they are built by hand.
#[test]
fn unsupported_combinations_are_refused() {
    let s = Shape::new(2, 3, 3);
    let q = Some(QParams {
        scale: 0.1,
        zero_point: 0,
    });
    let layer = |kind, in_quant, out_quant| Layer {
        kind,
        input: s,
        output: s,
        in_quant,
        out_quant,
    };
    let table = [0i8; 256];
    let geom = ConvGeom {
        kh: 1,
        kw: 1,
        stride: 1,
        pad: 0,
    };
    let w = [0.5f32; 4];
    let f32_conv = LayerKind::Conv2d {
        geom,
        params: Dense::F32 {
            weight: &w,
            bias: &w[..2],
        },
    };
    let (wq, bq, m, sh) = ([1i8; 4], [0i32; 2], [1 << 30; 2], [0i32; 2]);
    let s8_conv = LayerKind::Conv2d {
        geom,
        params: Dense::I8 {
            weight: &wq,
            bias: &bq,
            weight_scale: &w[..2],
            multiplier: &m,
            shift: &sh,
        },
    };
    let cases = [
        (
            layer(LayerKind::Tanh { table: None }, q, q),
            Elem::I8,
            false,
        ),
        (
            layer(
                LayerKind::Tanh {
                    table: Some(&table),
                },
                q,
                q,
            ),
            Elem::I8,
            true,
        ),
        (
            layer(
                LayerKind::Abs {
                    table: Some(&table),
                },
                None,
                None,
            ),
            Elem::F32,
            false,
        ),
        (
            layer(
                LayerKind::Abs {
                    table: Some(&table[..8]),
                },
                q,
                q,
            ),
            Elem::I8,
            false,
        ),
        (layer(LayerKind::Relu, None, None), Elem::I8, false),
        (layer(f32_conv, None, None), Elem::F32, true),
        (layer(f32_conv, q, q), Elem::I8, false),
        (layer(s8_conv, q, q), Elem::I8, true),
        (layer(s8_conv, q, None), Elem::I8, false),
        (layer(s8_conv, q, q), Elem::F32, false),
    ];
    for (n, (l, elem, ok)) in cases.iter().enumerate() {
        assert_eq!(
            kernel_scratch(l, *elem, crate::KernelSet::COMPILED).is_some(),
            *ok,
            "case {n}"
        );
    }
}

#[test]
fn errors_display_their_numbers() {
    let cases = [
        (
            Error::ArenaTooSmall {
                needed: 4112,
                got: 4000,
            },
            &["4112", "4000", "aligned"][..],
        ),
        (
            Error::InputLength {
                expected: 784,
                got: 783,
            },
            &["784", "783", "input"],
        ),
        (
            Error::OutputLength {
                expected: 10,
                got: 9,
            },
            &["10", "9", "output"],
        ),
        (Error::Unsupported { layer: 3 }, &["layer 3", IMPL]),
        (Error::Unsupported { layer: INPUT }, &["model input"]),
    ];
    for (err, words) in cases {
        let text = err.to_string();
        for w in words {
            assert!(text.contains(w), "{text:?} lacks {w:?}");
        }
        let _: &dyn core::error::Error = &err;
    }
}
