//! The precision features (`f32`, `int8`): a build plans and runs the models of the
//! precisions it was built with and refuses the others with [`Error::PrecisionNotBuilt`].
//! `scripts/test.sh` also runs this module (`cargo test --lib features::`) with only one of
//! the two features.

use std::format;

use kestrel_format::{Model, Precision, Shape};

use super::{input_codes, naive, random_input, run, Out, PRECISIONS};
use crate::testutil::{build, Spec};
use crate::{Error, Input, Plan};

const INPUT: Shape = Shape::new(3, 9, 7);

/// A small LeNet-like model (no LCN, whose int8 kernel is within one code of the naive one,
/// so the int8 output is bit-exact against the naive layers chained).
const SPECS: &[Spec] = &[
    Spec::Conv {
        oc: 4,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
    },
    Spec::Relu,
    Spec::MaxPool { k: 2, stride: 2 },
    Spec::Tanh,
    Spec::AvgPool { k: 2, stride: 1 },
    Spec::Flatten,
    Spec::Linear { out: 5 },
    Spec::Abs,
];

/// Whether this build has `precision`'s feature.
fn built(precision: Precision) -> bool {
    match precision {
        Precision::F32 | Precision::F16 => cfg!(feature = "f32"),
        Precision::Int8 => cfg!(feature = "int8"),
    }
}

#[test]
fn plans_only_the_precisions_built() {
    for precision in PRECISIONS {
        let buf = build(precision, INPUT, SPECS, 11);
        let model = Model::from_bytes(&buf).unwrap();
        let what = format!("{precision:?}");
        if !built(precision) {
            let err = Plan::new(&model).unwrap_err();
            assert_eq!(err, Error::PrecisionNotBuilt { precision }, "{what}");
            continue;
        }
        let x = random_input(INPUT, 11);
        match (precision, run(&model, Input::Normalized(&x))) {
            (Precision::Int8, Out::I8(y)) => {
                let mut want = input_codes(&model, &x);
                for layer in model.layers() {
                    want = naive::int8_layer(layer, &want);
                }
                naive::assert_codes(&y, &want, 0, &what);
            }
            (Precision::F32 | Precision::F16, Out::F32(y)) => {
                assert_eq!(y.len(), model.output_shape().len(), "{what}");
                assert!(y.iter().all(|v| v.is_finite()), "{what}");
            }
            (_, out) => panic!("{what}: output {out:?}"),
        }
    }
}

/// The `encoders` feature: without it an encoder model is refused naming its first
/// encoder layer (here layer 1, after a linear layer); with it the model runs.
#[test]
fn encoders_only_with_their_feature() {
    let specs = [
        Spec::Linear { out: 6 },
        Spec::Shrink,
        Spec::Dictionary { lambda: 0.1 },
    ];
    for precision in PRECISIONS.into_iter().filter(|&p| built(p)) {
        let buf = build(precision, INPUT, &specs, 2);
        let model = Model::from_bytes(&buf).unwrap();
        if cfg!(feature = "encoders") {
            let x = random_input(INPUT, 2);
            assert!(matches!(
                run(&model, Input::Normalized(&x)),
                Out::F32(_) | Out::I8(_)
            ));
        } else {
            let err = Plan::new(&model).unwrap_err();
            assert_eq!(err, Error::EncodersNotBuilt { layer: 1 }, "{precision:?}");
            let set = crate::KernelSet::COMPILED;
            assert_eq!(Plan::arena_bytes_for(&model, set), Err(err));
        }
    }
}
