//! Every kind of bad model file is a typed error, never a panic.

use kestrel_format::quant::quantize_multiplier;
use kestrel_format::*;

/// A small, valid int8 model: conv 3×3 (1→2, pad 1) → relu → maxpool 2 → flatten → linear 8→3.
fn model_bytes() -> Vec<u8> {
    let mut d = DataBuilder::new();
    let q = QParams {
        scale: 0.05,
        zero_point: -3,
    };
    let (m, s) = quantize_multiplier(0.01).unwrap();
    // weight scale = 0.01 · out scale / in scale, so that the multiplier stands for
    // in · weight / out as it must.
    let requant = |d: &mut DataBuilder, n: usize, ws: f32| Requant {
        weight_scale: d.f32(&vec![ws; n]),
        multiplier: d.i32(&vec![m; n]),
        shift: d.i32(&vec![s; n]),
    };
    let conv_r = requant(&mut d, 2, 0.025); // in 0.02, out 0.05
    let conv = Op::Conv2d {
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
        weight: d.i8(&[1; 18]),
        bias: d.i32(&[5, -5]),
        requant: Some(conv_r),
    };
    let lin_r = requant(&mut d, 3, 0.01); // in 0.05, out 0.05
    let lin = Op::Linear {
        weight: d.i8(&[2; 24]),
        bias: d.i32(&[0, 1, 2]),
        requant: Some(lin_r),
    };
    let s1 = Shape::new(1, 4, 4);
    let s2 = Shape::new(2, 4, 4);
    let s3 = Shape::new(2, 2, 2);
    let layers = [
        LayerDesc {
            op: conv,
            input: s1,
            output: s2,
            out_quant: Some(q),
        },
        LayerDesc {
            op: Op::Relu,
            input: s2,
            output: s2,
            out_quant: Some(q),
        },
        LayerDesc {
            op: Op::MaxPool2d { k: 2, stride: 2 },
            input: s2,
            output: s3,
            out_quant: Some(q),
        },
        LayerDesc {
            op: Op::Flatten,
            input: s3,
            output: Shape::new(8, 1, 1),
            out_quant: Some(q),
        },
        LayerDesc {
            op: lin,
            input: Shape::new(8, 1, 1),
            output: Shape::new(3, 1, 1),
            out_quant: Some(q),
        },
    ];
    let desc = ModelDesc {
        name: "tiny",
        precision: Precision::Int8,
        input: InputSpec {
            shape: s1,
            mean: 0.5,
            std: 0.25,
            quant: Some(QParams {
                scale: 0.02,
                zero_point: 0,
            }),
        },
        layers: heapless::Vec::from_slice(&layers).unwrap(),
        classes: heapless::Vec::from_slice(&["a", "b", "c"]).unwrap(),
        provenance: Provenance {
            arch: "tiny",
            dataset: "none",
            train_samples: 0,
            epochs: 0,
            float_accuracy: f32::NAN,
            trainer: "test",
        },
    };
    encode(&desc, &d).unwrap()
}

fn load(bytes: &[u8]) -> Result<(), Error> {
    let buf = AlignedBuf::new(bytes);
    Model::from_bytes(&buf).map(|_| ())
}

/// Re-encodes `bytes` after `edit` changes its metadata (keeping the data section).
fn with_desc(bytes: &[u8], edit: impl FnOnce(&mut ModelDesc<'_>)) -> Vec<u8> {
    let buf = AlignedBuf::new(bytes);
    let model = Model::from_bytes(&buf).unwrap();
    let mut desc = model.desc.clone();
    edit(&mut desc);
    let header = header::Header::parse(&buf).unwrap();
    encode(&desc, &buf[header.data_offset..]).unwrap()
}

#[test]
fn valid_model_loads_zero_copy() {
    let bytes = model_bytes();
    let buf = AlignedBuf::new(&bytes);
    let model = Model::from_bytes(&buf).unwrap();
    assert_eq!(model.layers().len(), 5);
    assert_eq!(model.output_shape(), Shape::new(3, 1, 1));
    assert_eq!(model.desc.classes.as_slice(), &["a", "b", "c"]);
    // Weights are borrowed from the buffer, not copied.
    let LayerKind::Conv2d {
        params: Dense::I8 { weight, .. },
        ..
    } = model.layers()[0].kind
    else {
        panic!()
    };
    let range = buf.as_ptr_range();
    assert!(range.contains(&(weight.as_ptr() as *const u8)));
}

#[test]
fn truncated_wrong_magic_version_crc() {
    let bytes = model_bytes();
    for len in [0, 3, 4, 31, 32, 40, bytes.len() - 1] {
        let e = load(&bytes[..len]).unwrap_err();
        assert!(
            matches!(e, Error::Truncated { got, .. } if got == len)
                || matches!(e, Error::BadMagic { .. }),
            "{len}: {e}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        load(&longer).unwrap_err(),
        Error::TrailingBytes {
            expected: bytes.len(),
            got: bytes.len() + 1
        }
    );

    let mut b = bytes.clone();
    b[..4].copy_from_slice(b"ONNX");
    assert_eq!(load(&b).unwrap_err(), Error::BadMagic { found: *b"ONNX" });
    assert!(load(&b)
        .unwrap_err()
        .to_string()
        .contains("not a Kestrel model"));

    let mut b = bytes.clone();
    b[4..6].copy_from_slice(&7u16.to_le_bytes());
    assert_eq!(
        load(&b).unwrap_err(),
        Error::UnsupportedVersion {
            found: 7,
            supported: VERSION
        }
    );

    let mut b = bytes.clone();
    let last = b.len() - 1;
    b[last] ^= 0x40;
    let e = load(&b).unwrap_err();
    assert!(matches!(e, Error::BadChecksum { .. }), "{e}");
    assert!(e.to_string().contains("CRC32"));
}

#[test]
fn misaligned_buffer_is_an_error() {
    let bytes = model_bytes();
    let mut shifted = vec![0u8; bytes.len() + 16];
    let base = shifted.as_ptr() as usize;
    let start = (16 - base % 16) % 16 + 1; // an address ≡ 1 (mod 16)
    shifted[start..start + bytes.len()].copy_from_slice(&bytes);
    let e = Model::from_bytes(&shifted[start..start + bytes.len()]).unwrap_err();
    assert_eq!(
        e,
        Error::Misaligned {
            align: 16,
            address_mod: 1
        }
    );
}

#[test]
fn shape_inconsistent_models() {
    let bytes = model_bytes();
    type Edit = Box<dyn Fn(&mut ModelDesc<'_>)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|d| d.layers[0].output.c = 3), "layer 0: weight"),
        (
            Box::new(|d| d.layers[0].output.h = 5),
            "layer 0: output shape",
        ),
        (
            Box::new(|d| d.layers[1].input.c = 5),
            "layer 1: input shape",
        ),
        (
            Box::new(|d| d.layers[3].output = Shape::new(9, 1, 1)),
            "layer 3: output shape",
        ),
        (Box::new(|d| d.input.shape.w = 5), "layer 0: input shape"),
        (
            Box::new(|d| {
                if let Op::Linear { weight, .. } = &mut d.layers[4].op {
                    weight.len = 23;
                }
            }),
            "layer 4: weight has 23 elements, expected 24",
        ),
        (
            Box::new(|d| {
                if let Op::Linear { weight, .. } = &mut d.layers[4].op {
                    weight.offset = 1 << 20;
                }
            }),
            "outside",
        ),
        (
            Box::new(|d| {
                if let Op::Conv2d { pad, .. } = &mut d.layers[0].op {
                    *pad = 3;
                }
            }),
            "kernel size, stride or padding",
        ),
        (
            Box::new(|d| d.layers[2].op = Op::MaxPool2d { k: 5, stride: 1 }),
            "kernel size",
        ),
        (
            Box::new(|d| {
                d.layers[1].out_quant = Some(QParams {
                    scale: 0.1,
                    zero_point: 0,
                })
            }),
            "output quantization",
        ),
        (
            Box::new(|d| {
                d.layers[2].out_quant = Some(QParams {
                    scale: f32::NAN,
                    zero_point: 0,
                })
            }),
            "not finite",
        ),
        (
            Box::new(|d| {
                d.layers[2].out_quant = Some(QParams {
                    scale: 1.0,
                    zero_point: 300,
                })
            }),
            "zero point",
        ),
        (Box::new(|d| d.input.quant = None), "model input"),
        (
            Box::new(|d| d.precision = Precision::F32),
            "missing or unexpected",
        ),
        (Box::new(|d| d.layers.clear()), "no layers"),
    ];
    for (i, (edit, want)) in cases.into_iter().enumerate() {
        let b = with_desc(&bytes, edit);
        let e = load(&b).unwrap_err();
        assert!(
            e.to_string().contains(want),
            "case {i}: {e:?} = {e} lacks {want:?}"
        );
    }
}

#[test]
fn requant_params_out_of_range() {
    let bytes = model_bytes();
    let buf = AlignedBuf::new(&bytes);
    let model = Model::from_bytes(&buf).unwrap();
    let h = header::Header::parse(&buf).unwrap();
    let Op::Conv2d {
        requant: Some(r), ..
    } = model.desc.layers[0].op
    else {
        panic!()
    };
    for (t, value, field) in [
        (r.multiplier, 5i32, Field::Multiplier),
        (r.shift, 40, Field::Shift),
    ] {
        let mut data = buf[h.data_offset..].to_vec();
        let at = t.offset as usize + 4; // channel 1
        data[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let b = encode(&model.desc, &data).unwrap();
        assert_eq!(
            load(&b).unwrap_err(),
            Error::RequantOutOfRange {
                layer: 0,
                field,
                channel: 1,
                value
            }
        );
    }
    let mut data = buf[h.data_offset..].to_vec();
    let at = r.weight_scale.offset as usize;
    data[at..at + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
    let b = encode(&model.desc, &data).unwrap();
    assert_eq!(
        load(&b).unwrap_err(),
        Error::BadQuantParam {
            layer: 0,
            field: Field::WeightScale,
            index: 0
        }
    );
}

#[test]
fn every_truncation_and_byte_flip_is_handled() {
    let bytes = model_bytes();
    for len in 0..bytes.len() {
        assert!(load(&bytes[..len]).is_err());
    }
    // Flip each byte of the metadata with the CRC fixed up, so the validator (not the CRC)
    // must catch it: any outcome but a panic is acceptable.
    let h = header::Header::parse(&AlignedBuf::new(&bytes)).unwrap();
    for i in HEADER_LEN..HEADER_LEN + h.meta_len {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            let crc = crc32fast::hash(&b[HEADER_LEN..]);
            b[20..24].copy_from_slice(&crc.to_le_bytes());
            let _ = load(&b);
        }
    }
}
