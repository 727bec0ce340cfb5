//! Tests of the whole runtime through its public API, against the independent
//! implementations in [`naive`], on models built by [`crate::testutil`].

use std::{format, vec::Vec};

use kestrel_format::quant::quantize_f32;
use kestrel_format::{Model, Precision, Shape};

use crate::testutil::{arena, build, bytes_mut, Rng, Spec};
use crate::{Input, Output, Plan};

#[cfg(feature = "encoders")]
mod encoders;
mod features;
mod limits;
mod naive;
mod ops;
mod plan;
#[cfg(all(feature = "encoders", feature = "f32"))]
mod sparse;
mod variants;

/// Every precision, for table-driven loops.
const PRECISIONS: [Precision; 3] = [Precision::F32, Precision::F16, Precision::Int8];

/// A run's output, owned.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    F32(Vec<f32>),
    I8(Vec<i8>),
}

/// Runs `model` on `input` in a fresh aligned arena of exactly `arena_bytes`.
fn run(model: &Model<'_>, input: Input<'_>) -> Out {
    let plan = Plan::new(model).expect("supported");
    let mut a = arena(plan.arena_bytes());
    let bytes = &mut bytes_mut(&mut a)[..plan.arena_bytes()];
    match plan.run(bytes, input).expect("runs") {
        Output::F32(y) => Out::F32(y.to_vec()),
        Output::I8(y) => Out::I8(y.to_vec()),
    }
}

/// Random normalized input for `shape`.
fn random_input(shape: Shape, seed: u64) -> Vec<f32> {
    Rng::new(seed ^ 0x1f2e_3d4c).f32s(shape.len(), -2.0, 2.0)
}

/// The int8 codes the input stage makes of `x`.
fn input_codes(model: &Model<'_>, x: &[f32]) -> Vec<i8> {
    let q = model.desc.input.quant.expect("int8 model");
    x.iter()
        .map(|&v| quantize_f32(v, q.scale, q.zero_point))
        .collect()
}

/// Checks a model of one layer against the naive implementation, in every precision:
/// floats within `1e-4·(1 + |want|)`; int8 bit-exact against the integer formula (LCN, which
/// is float math inside, within one code) and, for convolution and linear layers, within
/// one code of the dequantized f64 math.
fn check_layer(input: Shape, spec: Spec, seed: u64) {
    for precision in PRECISIONS {
        let buf = build(precision, input, &[spec], seed);
        let model = Model::from_bytes(&buf).expect("valid model");
        let layer = &model.layers()[0];
        let x = random_input(input, seed);
        let what = format!("{precision:?} {spec:?} on {:?}", input.dims());
        match run(&model, Input::Normalized(&x)) {
            Out::F32(y) => {
                let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                naive::assert_close(&y, &naive::real_layer(layer, &x64), 1e-4, &what);
            }
            Out::I8(y) => {
                let codes = input_codes(&model, &x);
                let lsb = if matches!(spec, Spec::Lcn { .. } | Spec::PatchNorm { .. }) {
                    1
                } else {
                    0
                };
                naive::assert_codes(&y, &naive::int8_layer(layer, &codes), lsb, &what);
                if matches!(spec, Spec::Conv { .. } | Spec::Linear { .. }) {
                    let (qi, qo) = (layer.in_quant.unwrap(), layer.out_quant.unwrap());
                    let real: Vec<f64> = codes.iter().map(|&q| naive::dequantize(q, qi)).collect();
                    let want: Vec<i8> = naive::real_layer(layer, &real)
                        .iter()
                        .map(|&v| naive::quantize(v, qo))
                        .collect();
                    naive::assert_codes(&y, &want, 1, &format!("{what} (dequantized)"));
                }
            }
        }
    }
}
