//! Every op against the naive implementations: table-driven edge cases, then proptest over
//! random shapes (odd channel counts and widths included), in every precision.

use std::{vec, vec::Vec};

use half::f16;
use kestrel_format::{
    encode, AlignedBuf, DataBuilder, Dense, LayerKind, Model, Op, Precision, Shape,
};
use proptest::prelude::*;

use super::{check_layer, random_input, run, Out};
use crate::testutil::{build, Spec, EVERY_OP};
use crate::Input;

fn conv(oc: u32, kh: u8, kw: u8, stride: u8, pad: u8) -> Spec {
    Spec::Conv {
        oc,
        kh,
        kw,
        stride,
        pad,
    }
}

#[test]
fn edge_cases_match_naive() {
    let s = Shape::new;
    let cases: &[(Shape, Spec)] = &[
        (s(1, 1, 1), conv(1, 1, 1, 1, 0)),     // 1×1 everything
        (s(3, 5, 7), conv(4, 1, 1, 1, 0)),     // pointwise
        (s(2, 4, 4), conv(3, 4, 4, 1, 0)),     // kernel = image
        (s(2, 3, 3), conv(3, 3, 3, 1, 2)),     // windows entirely in the padding at corners
        (s(1, 8, 9), conv(2, 2, 3, 3, 1)),     // stride > kernel height, odd width
        (s(5, 6, 2), conv(1, 3, 1, 2, 0)),     // tall kernel on a narrow image
        (s(3, 2, 2), Spec::Linear { out: 5 }), // flattened CHW input
        (s(17, 1, 1), Spec::Linear { out: 1 }),
        (s(2, 5, 5), Spec::MaxPool { k: 1, stride: 1 }),
        (s(3, 7, 5), Spec::MaxPool { k: 3, stride: 2 }),
        (s(3, 7, 5), Spec::AvgPool { k: 2, stride: 3 }),
        (s(1, 4, 4), Spec::AvgPool { k: 4, stride: 1 }),
        (s(1, 1, 1), Spec::Lcn { size: 1, eps: 0.1 }),
        (s(3, 2, 3), Spec::Lcn { size: 7, eps: 0.01 }), // window larger than the image
        (s(2, 6, 5), Spec::Lcn { size: 3, eps: 1.0 }),  // eps dominates
        (s(3, 4, 5), Spec::Relu),
        (s(3, 4, 5), Spec::Tanh),
        (s(3, 4, 5), Spec::Abs),
        (s(3, 4, 5), Spec::Flatten),
    ];
    for (n, &(shape, spec)) in cases.iter().enumerate() {
        check_layer(shape, spec, n as u64);
    }
}

#[test]
fn int8_avgpool_rounds_half_away_from_zero() {
    let buf = build(
        Precision::Int8,
        Shape::new(1, 2, 2),
        &[Spec::AvgPool { k: 2, stride: 1 }],
        7,
    );
    let model = Model::from_bytes(&buf).unwrap();
    let q = model.desc.input.quant.unwrap();
    for (codes, want) in [
        ([1i8, 1, 0, 0], 1i8), // 0.5 → 1
        ([-1, -1, 0, 0], -1),  // −0.5 → −1
        ([1, 0, 0, 0], 0),     // 0.25 → 0
        ([-3, -3, -3, 0], -2), // −2.25 → −2
        ([127, 127, 127, 126], 127),
        ([-128, -128, -128, -127], -128),
    ] {
        let x: Vec<f32> = codes
            .iter()
            .map(|&c| q.scale * (c as i32 - q.zero_point) as f32)
            .collect();
        let Out::I8(y) = run(&model, Input::Normalized(&x)) else {
            panic!("int8 model")
        };
        assert_eq!(
            super::input_codes(&model, &x),
            codes,
            "test input round trip"
        );
        assert_eq!(y, vec![want], "{codes:?}");
    }
}

/// The same model with its f16 weights widened to f32 and stored as an F32 model.
fn widened(buf: &[u8]) -> AlignedBuf {
    let model = Model::from_bytes(buf).unwrap();
    let mut desc = model.desc.clone();
    desc.precision = Precision::F32;
    let mut data = DataBuilder::new();
    for (ld, layer) in desc.layers.iter_mut().zip(model.layers()) {
        match (&mut ld.op, layer.kind) {
            (Op::Conv2d { weight, bias, .. }, LayerKind::Conv2d { params, .. })
            | (Op::Linear { weight, bias, .. }, LayerKind::Linear { params }) => {
                let Dense::F16 { weight: w, bias: b } = params else {
                    panic!("f16 model")
                };
                let w: Vec<f32> = w.iter().map(|v| f16::to_f32(*v)).collect();
                *weight = data.f32(&w);
                *bias = data.f32(b);
            }
            (Op::Lcn { window, .. }, LayerKind::Lcn { window: w, .. }) => *window = data.f32(w),
            _ => {}
        }
    }
    AlignedBuf::new(&encode(&desc, &data).unwrap())
}

/// f16 models compute exactly what the f32 model with the f16-rounded weights computes.
fn check_f16_is_widened_f32(input: Shape, specs: &[Spec], seed: u64) {
    let half = build(Precision::F16, input, specs, seed);
    let full = widened(&half);
    let x = random_input(input, seed);
    let a = run(&Model::from_bytes(&half).unwrap(), Input::Normalized(&x));
    let b = run(&Model::from_bytes(&full).unwrap(), Input::Normalized(&x));
    let (Out::F32(a), Out::F32(b)) = (a, b) else {
        panic!("float models")
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a), bits(&b), "{specs:?}");
}

#[test]
fn f16_every_op_is_widened_f32() {
    check_f16_is_widened_f32(Shape::new(3, 9, 7), EVERY_OP, 11);
}

fn shape() -> impl Strategy<Value = Shape> {
    (1u32..=5, 1u32..=9, 1u32..=9).prop_map(|(c, h, w)| Shape::new(c, h, w))
}

fn conv_spec() -> impl Strategy<Value = Spec> {
    (1u32..=5, 1u8..=4, 1u8..=4, 1u8..=3, 0u8..=3)
        .prop_map(|(oc, kh, kw, stride, pad)| conv(oc, kh, kw, stride, pad % kh.min(kw)))
}

fn pool_spec() -> impl Strategy<Value = Spec> {
    (1u8..=4, 1u8..=3, any::<bool>()).prop_map(|(k, stride, max)| {
        if max {
            Spec::MaxPool { k, stride }
        } else {
            Spec::AvgPool { k, stride }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn conv_matches_naive(input in shape(), spec in conv_spec(), seed in any::<u64>()) {
        prop_assume!(spec.output(input).is_some());
        check_layer(input, spec, seed);
    }

    #[test]
    fn linear_matches_naive(input in shape(), out in 1u32..=9, seed in any::<u64>()) {
        check_layer(input, Spec::Linear { out }, seed);
    }

    #[test]
    fn pool_matches_naive(input in shape(), spec in pool_spec(), seed in any::<u64>()) {
        prop_assume!(spec.output(input).is_some());
        check_layer(input, spec, seed);
    }

    #[test]
    fn lcn_matches_naive(
        input in shape(),
        size in prop::sample::select(vec![1u8, 3, 5, 7]),
        eps in 0.001f32..0.5,
        seed in any::<u64>(),
    ) {
        check_layer(input, Spec::Lcn { size, eps }, seed);
    }

    #[test]
    fn elementwise_matches_naive(
        input in shape(),
        spec in prop::sample::select(vec![Spec::Relu, Spec::Tanh, Spec::Abs, Spec::Flatten]),
        seed in any::<u64>(),
    ) {
        check_layer(input, spec, seed);
    }

    #[test]
    fn f16_conv_linear_is_widened_f32(
        input in shape(),
        spec in conv_spec(),
        out in 1u32..=6,
        seed in any::<u64>(),
    ) {
        prop_assume!(spec.output(input).is_some());
        check_f16_is_widened_f32(input, &[spec, Spec::Linear { out }], seed);
    }
}
