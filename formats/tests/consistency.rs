//! Files that decode and stay in bounds but do not add up: sizes that wrap on a 32-bit
//! target, requantizations that disagree with their scales, non-finite weights, class lists
//! of the wrong length, a non-positive input std, LCN windows that are not a mean, tensors
//! sharing bytes. Each is a typed error naming the layer and field.
//!
//! Run on a 32-bit target too (scripts/test.sh does, on `i686-unknown-linux-musl`): the
//! first test is about `usize` being 32 bits wide there.

use kestrel_format::quant::quantize_multiplier;
use kestrel_format::*;

fn provenance() -> Provenance<'static> {
    Provenance {
        arch: "t",
        dataset: "none",
        train_samples: 0,
        epochs: 0,
        float_accuracy: f32::NAN,
        trainer: "test",
    }
}

fn desc<'a>(precision: Precision, input: Shape, quant: Option<QParams>) -> ModelDesc<'a> {
    ModelDesc {
        name: "t",
        precision,
        input: InputSpec {
            shape: input,
            mean: 0.5,
            std: 0.25,
            quant,
        },
        layers: Default::default(),
        classes: Default::default(),
        provenance: provenance(),
    }
}

fn layer(op: Op, input: Shape, output: Shape, out_quant: Option<QParams>) -> LayerDesc {
    LayerDesc {
        op,
        input,
        output,
        out_quant,
    }
}

fn load(bytes: &[u8]) -> Result<(), Error> {
    Model::from_bytes(&AlignedBuf::new(bytes)).map(|_| ())
}

/// f32: LCN 3×3 → flatten → linear 16 → 3, with `edit` applied to the metadata and data.
fn f32_model(precision: Precision, edit: impl FnOnce(&mut ModelDesc<'_>, &mut Data)) -> Vec<u8> {
    let mut data = Data {
        weight: (0..48).map(|i| i as f32 / 48.0 - 0.5).collect(),
        bias: vec![0.1, -0.2, 0.3],
        window: vec![1.0 / 9.0; 9],
    };
    let s = Shape::new(1, 4, 4);
    let mut d = desc(precision, s, None);
    let mut b = DataBuilder::new();
    edit(&mut d, &mut data);
    let window = b.f32(&data.window);
    let weight = match precision {
        Precision::F16 => b.f16(&data.weight),
        _ => b.f32(&data.weight),
    };
    let bias = b.f32(&data.bias);
    let flat = Shape::new(16, 1, 1);
    let out = Shape::new(3, 1, 1);
    for l in [
        layer(
            Op::Lcn {
                size: 3,
                eps: 1e-4,
                window,
            },
            s,
            s,
            None,
        ),
        layer(Op::Flatten, s, flat, None),
        layer(
            Op::Linear {
                weight,
                bias,
                requant: None,
            },
            flat,
            out,
            None,
        ),
    ] {
        d.layers.push(l).unwrap();
    }
    encode(&d, b.bytes()).unwrap()
}

/// The float values [`f32_model`] stores.
struct Data {
    weight: Vec<f32>,
    bias: Vec<f32>,
    window: Vec<f32>,
}

#[test]
fn the_float_fixture_is_valid() {
    load(&f32_model(Precision::F32, |_, _| {})).unwrap();
    load(&f32_model(Precision::F16, |_, _| {})).unwrap();
}

/// The conv of the report: input `[66052, 1, 1]`, 255×255 kernel, pad 127, output
/// `[1, 1, 1]`: `c·kh·kw` = 4,295,031,300 taps, which wraps to 64,004 in a 32-bit `usize`.
/// A file with 64,004 weights was accepted there, and the reference convolution then read
/// past them (a panic on a device). Now: `SizeOverflow` on 32-bit targets, a weight count
/// mismatch on 64-bit ones, never acceptance.
#[test]
fn conv_taps_that_wrap_in_32_bits_are_rejected() {
    const WRAPPED: usize = 64_004;
    assert_eq!(
        (66_052u64 * 255 * 255) % (1 << 32),
        WRAPPED as u64,
        "the wrapped count"
    );
    let input = Shape::new(66_052, 1, 1);
    let out = Shape::new(1, 1, 1);
    let mut b = DataBuilder::new();
    let weight = b.f32(&vec![0.5; WRAPPED]);
    let bias = b.f32(&[0.0]);
    let mut d = desc(Precision::F32, input, None);
    d.layers
        .push(layer(
            Op::Conv2d {
                kh: 255,
                kw: 255,
                stride: 1,
                pad: 127,
                weight,
                bias,
                requant: None,
            },
            input,
            out,
            None,
        ))
        .unwrap();
    let err = load(&encode(&d, b.bytes()).unwrap()).unwrap_err();
    if usize::BITS == 32 {
        assert_eq!(
            err,
            Error::SizeOverflow {
                layer: 0,
                field: Field::Weight
            }
        );
    } else {
        assert!(
            matches!(
                err,
                Error::ShapeMismatch {
                    layer: 0,
                    field: Field::Weight,
                    got: WRAPPED,
                    ..
                }
            ),
            "{err:?}"
        );
    }
    println!("{}-bit usize: {err}", usize::BITS);
}

#[test]
fn non_finite_float_weights_and_biases_are_rejected() {
    for precision in [Precision::F32, Precision::F16] {
        for (v, at) in [(f32::NAN, 7), (f32::INFINITY, 0), (f32::NEG_INFINITY, 47)] {
            let b = f32_model(precision, |_, d| d.weight[at] = v);
            assert_eq!(
                load(&b).unwrap_err(),
                Error::BadValue {
                    layer: 2,
                    field: Field::Weight,
                    index: at
                },
                "{precision:?} weight {v}"
            );
        }
        // 70,000 is finite in f32 but beyond f16's range: it is stored as infinity.
        if precision == Precision::F16 {
            let b = f32_model(precision, |_, d| d.weight[3] = 70_000.0);
            assert!(matches!(
                load(&b),
                Err(Error::BadValue {
                    field: Field::Weight,
                    index: 3,
                    ..
                })
            ));
        }
        let b = f32_model(precision, |_, d| d.bias[2] = f32::NAN);
        assert_eq!(
            load(&b).unwrap_err(),
            Error::BadValue {
                layer: 2,
                field: Field::Bias,
                index: 2
            }
        );
    }
}

#[test]
fn class_names_must_match_the_outputs() {
    let b = f32_model(Precision::F32, |d, _| {
        d.classes = heapless::Vec::from_slice(&["a", "b"]).unwrap()
    });
    assert_eq!(
        load(&b).unwrap_err(),
        Error::ClassCount {
            classes: 2,
            outputs: 3
        }
    );
    let three = f32_model(Precision::F32, |d, _| {
        d.classes = heapless::Vec::from_slice(&["a", "b", "c"]).unwrap()
    });
    load(&three).unwrap();
}

#[test]
fn input_std_must_be_positive() {
    for std in [0.0, -0.25, f32::NAN, -0.0] {
        let b = f32_model(Precision::F32, |d, _| d.input.std = std);
        assert_eq!(
            load(&b).unwrap_err(),
            Error::BadQuantParam {
                layer: INPUT,
                field: Field::Normalization,
                index: 0
            },
            "std {std}"
        );
    }
}

#[test]
fn lcn_windows_must_sum_to_one() {
    let b = f32_model(Precision::F32, |_, d| d.window = vec![0.5; 9]);
    let err = load(&b).unwrap_err();
    assert_eq!(
        err,
        Error::WindowSum {
            layer: 0,
            sum_ppm: 4_500_000
        }
    );
    assert_eq!(
        err.to_string(),
        "layer 0: LCN window sums to 4.500000, not 1"
    );
    // A normalized Gaussian with rounding error is fine.
    let g: Vec<f32> = [1.0f32, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]
        .iter()
        .map(|v| v / 16.0)
        .collect();
    load(&f32_model(Precision::F32, |_, d| d.window = g)).unwrap();
}

#[test]
fn tensors_may_not_share_bytes() {
    // The linear layer's bias moved onto the last 16 bytes of its weights.
    let b = f32_model(Precision::F32, |d, _| d.name = "t");
    let buf = AlignedBuf::new(&b);
    let model = Model::from_bytes(&buf).unwrap();
    let data_offset = header::Header::parse(&buf).unwrap().data_offset;
    let mut d = model.desc.clone();
    let Op::Linear { weight, bias, .. } = &mut d.layers[2].op else {
        panic!()
    };
    bias.offset = weight.offset + 176;
    let err = load(&encode(&d, &buf[data_offset..]).unwrap()).unwrap_err();
    assert_eq!(
        err,
        Error::TensorsOverlap {
            layer: 2,
            field: Field::Bias,
            other_layer: 2,
            other_field: Field::Weight
        }
    );
    // Across layers: the linear weights start inside the LCN window.
    let mut d = model.desc.clone();
    let Op::Lcn { window, .. } = d.layers[0].op else {
        panic!()
    };
    let Op::Linear { weight, .. } = &mut d.layers[2].op else {
        panic!()
    };
    weight.offset = window.offset + 16;
    assert_eq!(
        load(&encode(&d, &buf[data_offset..]).unwrap()).unwrap_err(),
        Error::TensorsOverlap {
            layer: 2,
            field: Field::Weight,
            other_layer: 0,
            other_field: Field::Window
        }
    );
}

/// int8 linear 4 → 2 with input scale 0.02, weight scale `ws`, output scale 0.05, and the
/// multiplier of `real` in channel 1 (channel 0 always right).
fn int8_linear(ws: f32, real: f64) -> Vec<u8> {
    let s = Shape::new(4, 1, 1);
    let out = Shape::new(2, 1, 1);
    let q = |scale| {
        Some(QParams {
            scale,
            zero_point: 0,
        })
    };
    let mut d = desc(Precision::Int8, s, q(0.02));
    let mut b = DataBuilder::new();
    let right =
        quantize_multiplier(f64::from(0.02f32) * f64::from(ws) / f64::from(0.05f32)).unwrap();
    let other = quantize_multiplier(real).unwrap();
    let requant = Requant {
        weight_scale: b.f32(&[ws, ws]),
        multiplier: b.i32(&[right.0, other.0]),
        shift: b.i32(&[right.1, other.1]),
    };
    let op = Op::Linear {
        weight: b.i8(&[1; 8]),
        bias: b.i32(&[0, 0]),
        requant: Some(requant),
    };
    d.layers.push(layer(op, s, out, q(0.05))).unwrap();
    encode(&d, b.bytes()).unwrap()
}

#[test]
fn requantization_must_match_its_scales() {
    // 0.02 · 0.5 / 0.05 = 0.2.
    load(&int8_linear(0.5, 0.2)).unwrap();
    let err = load(&int8_linear(0.5, 0.4)).unwrap_err();
    // From the stored f32 scales, in f32 as the validator computes it (weight · in / out).
    let expected = quantize_multiplier(f64::from(0.5f32 * 0.02f32 / (1.0 * 0.05f32))).unwrap();
    assert_eq!(
        err,
        Error::RequantMismatch {
            layer: 0,
            field: Field::Multiplier,
            channel: 1,
            stored: quantize_multiplier(0.4).unwrap(),
            expected,
        }
    );
    assert!(err
        .to_string()
        .starts_with("layer 0: requantization multiplier of channel 1"));
    // One part in ten thousand off is an edit, not rounding.
    assert!(load(&int8_linear(0.5, 0.2 * (1.0 + 1e-4))).is_err());
}
