//! The sparse-code encoder ops (PatchNorm, Shrink, Gain, Lista, Dictionary): valid encoder
//! models load with typed views, and every inconsistent field is a typed error naming the
//! layer and the field.

use kestrel_format::quant::quantize_multiplier;
use kestrel_format::*;

const K: u32 = 4; // a 2×2 patch
const N: u32 = 3; // atoms

fn provenance() -> Provenance<'static> {
    Provenance {
        arch: "psd",
        dataset: "test",
        train_samples: 0,
        epochs: 0,
        float_accuracy: f32::NAN,
        trainer: "test",
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

/// An f32 `lista:2` encoder: patchnorm → linear 4→3 → lista → dictionary.
fn f32_lista(edit: impl FnOnce(&mut ModelDesc<'_>, &mut DataBuilder)) -> Vec<u8> {
    let mut d = DataBuilder::new();
    let patch = Shape::new(1, 2, 2);
    let code = Shape::new(N, 1, 1);
    let linear = Op::Linear {
        weight: d.f32(&[0.5; (K * N) as usize]),
        bias: d.f32(&[0.0; N as usize]),
        requant: None,
    };
    let lista = Op::Lista {
        s: d.f32(&[0.1; (N * N) as usize]),
        theta: d.f32(&[0.2; N as usize]),
        steps: 2,
        quant: None,
    };
    let dict = Op::Dictionary {
        atoms: d.f32(&[0.5; (K * N) as usize]),
        lambda: 0.1,
        lipschitz: 3.0,
        fista_weight: d.f32(&[0.5 / 3.0; (K * N) as usize]),
        fista_s: d.f32(&[0.0; (N * N) as usize]),
    };
    let mut desc = ModelDesc {
        name: "enc",
        precision: Precision::F32,
        input: InputSpec {
            shape: patch,
            mean: 0.0,
            std: 1.0,
            quant: None,
        },
        layers: Default::default(),
        classes: Default::default(),
        provenance: provenance(),
    };
    for l in [
        layer(
            Op::PatchNorm {
                contrast: Some(0.02),
            },
            patch,
            patch,
            None,
        ),
        layer(linear, patch, code, None),
        layer(lista, code, code, None),
        layer(dict, code, code, None),
    ] {
        desc.layers.push(l).unwrap();
    }
    edit(&mut desc, &mut d);
    encode(&desc, &d).unwrap()
}

/// An int8 `tanh` encoder on a 2-channel map: linear → tanh → gain, then an int8 shrink and
/// an int8 lista on the same codes (every int8 encoder op in one model).
fn int8_model(edit: impl FnOnce(&mut ModelDesc<'_>, &mut DataBuilder)) -> Vec<u8> {
    let mut d = DataBuilder::new();
    let q = |scale, zero_point| Some(QParams { scale, zero_point });
    let patch = Shape::new(1, 2, 2);
    let code = Shape::new(N, 1, 1);
    let (m, s) = quantize_multiplier(0.01).unwrap();
    // Each rescaling stands for what the scales around it give (checked by the validator).
    let rescale = |d: &mut DataBuilder, real: f64| {
        let (m, s) = quantize_multiplier(real).unwrap();
        Rescale {
            multiplier: d.i32(&[m; N as usize]),
            shift: d.i32(&[s; N as usize]),
        }
    };
    let f = |v: f32| f64::from(v);
    // in 0.02 (patch norm) × weight 0.025 / out 0.05 = 0.01, the multiplier's value.
    let requant = Requant {
        weight_scale: d.f32(&[0.025; N as usize]),
        multiplier: d.i32(&[m; N as usize]),
        shift: d.i32(&[s; N as usize]),
    };
    let linear = Op::Linear {
        weight: d.i8(&[3; (K * N) as usize]),
        bias: d.i32(&[0; N as usize]),
        requant: Some(requant),
    };
    let tanh = Op::Tanh {
        table: Some(d.i8(&[0; 256])),
    };
    let gain = Op::Gain {
        gain: d.f32(&[2.0; N as usize]),
        // gain 2 · tanh's scale 1/127 / the gain's output scale 0.02
        rescale: Some(rescale(&mut d, f(2.0) * f(1.0 / 127.0) / f(0.02))),
    };
    let shrink = Op::Shrink {
        theta: d.i32(&[2; N as usize]),
    };
    let lista_quant = ListaQuant {
        s_scale: d.f32(&[0.01; N as usize]),
        // shrink's scale 0.02 / (s_scale 0.01 · LISTA's output scale 0.03), and s_scale.
        input: rescale(&mut d, f(0.02) / (f(0.01) * f(0.03))),
        output: rescale(&mut d, f(0.01)),
    };
    let lista = Op::Lista {
        s: d.i8(&[1; (N * N) as usize]),
        theta: d.i32(&[100; N as usize]),
        steps: 3,
        quant: Some(lista_quant),
    };
    let mut desc = ModelDesc {
        name: "enc8",
        precision: Precision::Int8,
        input: InputSpec {
            shape: patch,
            mean: 0.0,
            std: 1.0,
            quant: q(1.0 / 255.0, -128),
        },
        layers: Default::default(),
        classes: Default::default(),
        provenance: provenance(),
    };
    for l in [
        layer(Op::PatchNorm { contrast: None }, patch, patch, q(0.02, 0)),
        layer(linear, patch, code, q(0.05, 1)),
        layer(tanh, code, code, q(1.0 / 127.0, 0)),
        layer(gain, code, code, q(0.02, 0)),
        layer(shrink, code, code, q(0.02, 0)),
        layer(lista, code, code, q(0.03, 0)),
    ] {
        desc.layers.push(l).unwrap();
    }
    edit(&mut desc, &mut d);
    encode(&desc, &d).unwrap()
}

/// A named edit of a valid model and the error it must cause.
type Case = (
    &'static str,
    fn(&mut ModelDesc<'_>, &mut DataBuilder),
    Error,
);

fn load(bytes: &[u8]) -> Result<Vec<&'static str>, Error> {
    let buf = AlignedBuf::new(bytes);
    let model = Model::from_bytes(&buf)?;
    Ok(model.layers().iter().map(|l| l.kind.name()).collect())
}

#[test]
fn valid_encoders_load_with_typed_views() {
    let f = f32_lista(|_, _| {});
    assert_eq!(
        load(&f).unwrap(),
        ["patchnorm", "linear", "lista", "dictionary"]
    );
    let buf = AlignedBuf::new(&f);
    let model = Model::from_bytes(&buf).unwrap();
    let LayerKind::Lista {
        steps: 2,
        lateral: Lateral::F32 { s, theta },
    } = model.layers()[2].kind
    else {
        panic!("{:?}", model.layers()[2].kind)
    };
    assert_eq!((s.len(), theta), (9, &[0.2f32; 3][..]));
    let LayerKind::Dictionary {
        atoms,
        lambda,
        lipschitz,
        ..
    } = model.layers()[3].kind
    else {
        panic!()
    };
    assert_eq!((atoms.len(), lambda, lipschitz), (12, 0.1, 3.0));
    assert_eq!(
        load(&int8_model(|_, _| {})).unwrap(),
        ["patchnorm", "linear", "tanh", "gain", "shrink", "lista"]
    );
}

#[test]
fn lista_thresholds_are_shared_or_one_per_step() {
    // `lista:2` on 3 atoms: 3 thresholds for every step, or 3 per step (first shrink + 2).
    let per_step = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
    let f = f32_lista(|m, d| {
        if let Op::Lista { theta, .. } = &mut m.layers[2].op {
            *theta = d.f32(&per_step);
        }
    });
    let buf = AlignedBuf::new(&f);
    let model = Model::from_bytes(&buf).unwrap();
    let LayerKind::Lista {
        lateral: Lateral::F32 { theta, .. },
        ..
    } = model.layers()[2].kind
    else {
        panic!("{:?}", model.layers()[2].kind)
    };
    assert_eq!(theta, &per_step[..]);
    for bad in [2usize, 6, 12] {
        let f = f32_lista(|m, d| {
            if let Op::Lista { theta, .. } = &mut m.layers[2].op {
                *theta = d.f32(&vec![0.2; bad]);
            }
        });
        let err = Model::from_bytes(&AlignedBuf::new(&f)).unwrap_err();
        assert_eq!(
            err,
            Error::ShapeMismatch {
                layer: 2,
                field: Field::Theta,
                expected: 9,
                got: bad,
            },
            "{bad} thresholds"
        );
    }
}

#[test]
fn bad_float_encoder_fields_are_typed_errors() {
    let cases: [Case; 9] = [
        (
            "negative threshold",
            |m, d| {
                if let Op::Lista { theta, .. } = &mut m.layers[2].op {
                    *theta = d.f32(&[0.2, -0.1, 0.2]);
                }
            },
            Error::BadValue {
                layer: 2,
                field: Field::Theta,
                index: 1,
            },
        ),
        (
            "NaN in S",
            |m, d| {
                if let Op::Lista { s, .. } = &mut m.layers[2].op {
                    let mut v = [0.1; 9];
                    v[4] = f32::NAN;
                    *s = d.f32(&v);
                }
            },
            Error::BadValue {
                layer: 2,
                field: Field::Lateral,
                index: 4,
            },
        ),
        (
            "zero steps",
            |m, _| {
                if let Op::Lista { steps, .. } = &mut m.layers[2].op {
                    *steps = 0;
                }
            },
            Error::BadValue {
                layer: 2,
                field: Field::Steps,
                index: 0,
            },
        ),
        (
            "S of the wrong size",
            |m, d| {
                if let Op::Lista { s, .. } = &mut m.layers[2].op {
                    *s = d.f32(&[0.1; 8]);
                }
            },
            Error::ShapeMismatch {
                layer: 2,
                field: Field::Lateral,
                expected: 9,
                got: 8,
            },
        ),
        (
            "zero contrast floor",
            |m, _| {
                m.layers[0].op = Op::PatchNorm {
                    contrast: Some(0.0),
                }
            },
            Error::BadValue {
                layer: 0,
                field: Field::Contrast,
                index: 0,
            },
        ),
        (
            "negative lambda",
            |m, _| {
                if let Op::Dictionary { lambda, .. } = &mut m.layers[3].op {
                    *lambda = -1.0;
                }
            },
            Error::BadValue {
                layer: 3,
                field: Field::Lambda,
                index: 0,
            },
        ),
        (
            "atoms not k × n",
            |m, d| {
                if let Op::Dictionary { atoms, .. } = &mut m.layers[3].op {
                    *atoms = d.f32(&[0.5; 9]);
                }
            },
            Error::ShapeMismatch {
                layer: 3,
                field: Field::Atoms,
                expected: 12,
                got: 9,
            },
        ),
        (
            "dictionary not last",
            |m, _| {
                let dict = m.layers[3];
                m.layers.push(dict).unwrap();
            },
            Error::NotLast { layer: 3 },
        ),
        (
            "int8 thresholds in a float model",
            |m, d| {
                if let Op::Lista { theta, .. } = &mut m.layers[2].op {
                    *theta = d.i32(&[1; 3]);
                }
            },
            Error::WrongDType {
                layer: 2,
                field: Field::Theta,
            },
        ),
    ];
    for (what, edit, want) in cases {
        assert_eq!(load(&f32_lista(edit)).unwrap_err(), want, "{what}");
        // Every error prints the layer and what is wrong.
        assert!(want.to_string().starts_with("layer "), "{what}: {want}");
    }
}

#[test]
fn bad_int8_encoder_fields_are_typed_errors() {
    let cases: [Case; 7] = [
        (
            "negative int8 threshold",
            |m, d| {
                m.layers[4].op = Op::Shrink {
                    theta: d.i32(&[1, 2, -3]),
                }
            },
            Error::BadValue {
                layer: 4,
                field: Field::Theta,
                index: 2,
            },
        ),
        (
            "shrink changes the quantization",
            |m, _| {
                m.layers[4].out_quant = Some(QParams {
                    scale: 0.5,
                    zero_point: 0,
                })
            },
            Error::QuantMismatch {
                layer: 4,
                field: Field::OutputQuant,
            },
        ),
        (
            "non-positive int8 gain",
            |m, d| {
                if let Op::Gain { gain, .. } = &mut m.layers[3].op {
                    *gain = d.f32(&[2.0, 0.0, 1.0]);
                }
            },
            Error::BadValue {
                layer: 3,
                field: Field::Gain,
                index: 1,
            },
        ),
        (
            "int8 gain without its rescaling",
            |m, d| {
                m.layers[3].op = Op::Gain {
                    gain: d.f32(&[1.0; 3]),
                    rescale: None,
                }
            },
            Error::QuantMismatch {
                layer: 3,
                field: Field::Multiplier,
            },
        ),
        (
            "LISTA output multiplier out of range",
            |m, d| {
                if let Op::Lista { quant: Some(q), .. } = &mut m.layers[5].op {
                    q.output.multiplier = d.i32(&[1 << 30, 5, 1 << 30]);
                }
            },
            Error::RequantOutOfRange {
                layer: 5,
                field: Field::Multiplier,
                channel: 1,
                value: 5,
            },
        ),
        (
            "gain rescaling that is not gain · in / out",
            |m, d| {
                if let Op::Gain { gain, .. } = &mut m.layers[3].op {
                    *gain = d.f32(&[2.0, 2.0, 4.0]);
                }
            },
            Error::RequantMismatch {
                layer: 3,
                field: Field::Multiplier,
                channel: 2,
                stored: gain_rescale(),
                // In f32, as the validator computes it: gain · in / out.
                expected: quantize_multiplier(f64::from(
                    4.0f32 * (1.0f32 / 127.0) / (1.0 * 0.02f32),
                ))
                .unwrap(),
            },
        ),
        (
            "LISTA scale that its rescalings do not follow",
            |m, d| {
                if let Op::Lista { quant: Some(q), .. } = &mut m.layers[5].op {
                    q.s_scale = d.f32(&[0.01, 0.02, 0.01]);
                }
            },
            Error::RequantMismatch {
                layer: 5,
                field: Field::ListaInput,
                channel: 1,
                stored: lista_input_rescale(),
                // In f32: in / (s_scale · out).
                expected: quantize_multiplier(f64::from(1.0 * 0.02f32 / (0.02f32 * 0.03f32)))
                    .unwrap(),
            },
        ),
    ];
    for (what, edit, want) in cases {
        assert_eq!(load(&int8_model(edit)).unwrap_err(), want, "{what}");
    }
}

/// The fixture's gain rescaling (channel by channel the same).
fn gain_rescale() -> (i32, i32) {
    let f = |v: f32| f64::from(v);
    quantize_multiplier(f(2.0) * f(1.0 / 127.0) / f(0.02)).unwrap()
}

/// The fixture's LISTA input rescaling.
fn lista_input_rescale() -> (i32, i32) {
    let f = |v: f32| f64::from(v);
    quantize_multiplier(f(0.02) / (f(0.01) * f(0.03))).unwrap()
}
