//! Two small valid models, int8 and f32, with the same layers: conv 3×3 (1→2, pad 1) →
//! relu → maxpool 2 → flatten → linear 8→3, on a 1×4×4 input.

#![allow(dead_code)] // each test file uses part of this

use kestrel_format::quant::quantize_multiplier;
use kestrel_format::*;

pub const INPUT: Shape = Shape::new(1, 4, 4);

/// The model file's bytes (not aligned; copy into an [`AlignedBuf`]).
pub fn model(precision: Precision) -> Vec<u8> {
    let int8 = precision == Precision::Int8;
    let mut d = DataBuilder::new();
    let q = int8.then_some(QParams {
        scale: 0.05,
        zero_point: -3,
    });
    // `eff`: the int8 requantization scale, large enough that the logits are not all zero;
    // the weight scale is what makes `in_scale · weight_scale / 0.05` equal it.
    let dense = |d: &mut DataBuilder, n_out: usize, n_in: usize, (eff, in_scale): (f64, f32)| {
        let ws = (eff * 0.05 / f64::from(in_scale)) as f32;
        let real = f64::from(in_scale) * f64::from(ws) / f64::from(0.05f32);
        let (m, s) = quantize_multiplier(real).unwrap();
        let w: Vec<i8> = (0..n_out * n_in).map(|i| (i * 5 % 7) as i8 - 2).collect();
        if int8 {
            let requant = Requant {
                weight_scale: d.f32(&vec![ws; n_out]),
                multiplier: d.i32(&vec![m; n_out]),
                shift: d.i32(&vec![s; n_out]),
            };
            let bias: Vec<i32> = (0..n_out as i32).map(|i| 5 * i - 3).collect();
            (d.i8(&w), d.i32(&bias), Some(requant))
        } else {
            let w: Vec<f32> = w.iter().map(|&w| f32::from(w) * 0.13).collect();
            let bias: Vec<f32> = (0..n_out).map(|i| 0.1 * i as f32 - 0.05).collect();
            (d.f32(&w), d.f32(&bias), None)
        }
    };
    let (weight, bias, requant) = dense(&mut d, 2, 9, (0.05, 0.02));
    let conv = Op::Conv2d {
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
        weight,
        bias,
        requant,
    };
    let (weight, bias, requant) = dense(&mut d, 3, 8, (0.1, 0.05));
    let lin = Op::Linear {
        weight,
        bias,
        requant,
    };
    let s2 = Shape::new(2, 4, 4);
    let s3 = Shape::new(2, 2, 2);
    let flat = Shape::new(8, 1, 1);
    let layer = |op, input, output| LayerDesc {
        op,
        input,
        output,
        out_quant: q,
    };
    let layers = [
        layer(conv, INPUT, s2),
        layer(Op::Relu, s2, s2),
        layer(Op::MaxPool2d { k: 2, stride: 2 }, s2, s3),
        layer(Op::Flatten, s3, flat),
        layer(lin, flat, Shape::new(3, 1, 1)),
    ];
    let mut desc = ModelDesc {
        name: "capi-test",
        precision,
        input: InputSpec {
            shape: INPUT,
            mean: 0.5,
            std: 0.25,
            quant: int8.then_some(QParams {
                scale: 0.02,
                zero_point: 0,
            }),
        },
        layers: Default::default(),
        classes: Default::default(),
        provenance: Provenance {
            arch: "capi-test",
            dataset: "none",
            train_samples: 0,
            epochs: 0,
            float_accuracy: f32::NAN,
            trainer: "test",
        },
    };
    for l in layers {
        desc.layers.push(l).unwrap();
    }
    for c in ["a", "b", "c"] {
        desc.classes.push(c).unwrap();
    }
    encode(&desc, &d).unwrap()
}

/// Deterministic pixels for the model input.
pub fn pixels() -> Vec<u8> {
    (0..INPUT.len()).map(|i| (i * 37 % 256) as u8).collect()
}

/// Deterministic normalized input.
pub fn normalized() -> Vec<f32> {
    (0..INPUT.len()).map(|i| (i as f32 - 7.5) * 0.21).collect()
}

/// The logits `kestrel_runtime` computes, the reference for the C interface.
pub fn reference(file: &[u8], pixels: Option<&[u8]>, x: Option<&[f32]>) -> Vec<f32> {
    use kestrel_runtime::{Input, Plan};
    let buf = AlignedBuf::new(file);
    let model = Model::from_bytes(&buf).unwrap();
    let plan = Plan::new(&model).unwrap();
    let mut arena = vec![0u8; plan.arena_bytes() + 15];
    let mut out = vec![0f32; model.output_shape().len()];
    let input = match (pixels, x) {
        (Some(p), _) => Input::Pixels(p),
        (None, Some(x)) => Input::Normalized(x),
        (None, None) => unreachable!("one input"),
    };
    plan.run_f32(&mut arena, input, &mut out).unwrap();
    assert!(
        out.iter().all(|y| y.is_finite()) && out.iter().any(|&y| y != 0.0),
        "{out:?}"
    );
    out
}

/// Bit patterns, for exact comparisons that tell NaN from NaN.
pub fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
