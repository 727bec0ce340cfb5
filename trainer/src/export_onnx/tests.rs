//! Structural checks of the exported graph. That onnxruntime and tract compute the trainer's
//! forward pass from it is checked by `benches/host_latency.sh` (and
//! `cargo test --manifest-path benches/host_latency/Cargo.toml`), which keeps those engines
//! out of the workspace build.

use std::collections::HashSet;

use super::*;
use crate::backend::cpu::Cpu;
use crate::config::Arch;
use crate::data::Normalize;

/// A checkpoint of `arch` at its random initialization, biases set to small distinct values
/// so that a mix-up of parameters would show.
fn checkpoint(arch: &Arch) -> Checkpoint {
    let net = Network::new(Cpu::new(), arch, 7).unwrap();
    let mut params = net.params().unwrap();
    for p in &mut params {
        let layer = p.layer;
        let bias = p.tensors.iter_mut().find(|t| t.name == "bias").unwrap();
        for (j, b) in bias.data.iter_mut().enumerate() {
            *b = 0.01 * (j as f32 + layer as f32);
        }
    }
    Checkpoint {
        arch: arch.clone(),
        train: crate::config::TrainConfig {
            seed: 7,
            ..arch.train.clone()
        },
        normalize: Normalize {
            mean: 0.25,
            std: 0.5,
        },
        classes: (0..10).map(|i| format!("c{i}")).collect(),
        data_dir: "/data".into(),
        train_samples: 0,
        epochs_done: 0,
        history: vec![],
        test_accuracy: None,
        params,
        velocities: vec![],
    }
}

/// Encodes, decodes, and checks what every valid graph satisfies: one opset, the input and
/// output declared, unique names, and every node input defined before use.
fn export_and_decode(ckpt: &Checkpoint) -> onnx::ModelProto {
    let bytes = export_onnx(Cpu::new(), ckpt).unwrap();
    let m = onnx::ModelProto::decode(bytes.as_slice()).unwrap();
    assert_eq!((m.ir_version, m.opset_import.len()), (IR_VERSION, 1));
    assert_eq!(m.opset_import[0].version, OPSET);
    let g = m.graph.as_ref().unwrap();
    assert_eq!(g.input.len(), 1);
    assert_eq!(g.input[0].name, INPUT);
    assert_eq!(g.output.len(), 1);
    assert_eq!(g.output[0].name, OUTPUT);
    let mut defined: HashSet<&str> = HashSet::from([INPUT]);
    for t in &g.initializer {
        assert!(defined.insert(&t.name), "initializer {} twice", t.name);
        let n: i64 = t.dims.iter().product();
        assert_eq!(t.raw_data.len() as i64, 4 * n, "{}", t.name);
        assert_eq!(t.data_type, DataType::Float as i32);
    }
    for node in &g.node {
        for i in &node.input {
            assert!(
                defined.contains(i.as_str()),
                "{} reads undefined {i}",
                node.name
            );
        }
        for o in &node.output {
            assert!(defined.insert(o), "{o} defined twice");
        }
    }
    assert!(defined.contains(OUTPUT));
    m
}

fn floats(t: &onnx::TensorProto) -> Vec<f32> {
    t.raw_data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn init<'g>(g: &'g onnx::GraphProto, name: &str) -> &'g onnx::TensorProto {
    g.initializer
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"))
}

fn attr(n: &onnx::NodeProto, name: &str) -> Vec<i64> {
    let a = n.attribute.iter().find(|a| a.name == name).unwrap();
    if a.r#type() == AttributeType::Int {
        vec![a.i]
    } else {
        a.ints.clone()
    }
}

#[test]
fn lenet_graph_layers_and_weights() {
    let arch = Arch::load("lenet").unwrap();
    let ckpt = checkpoint(&arch);
    let m = export_and_decode(&ckpt);
    let g = m.graph.as_ref().unwrap();
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(
        ops,
        [
            "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu",
            "Gemm", "Relu", "Gemm"
        ]
    );
    let conv = &g.node[0];
    assert_eq!(attr(conv, "kernel_shape"), [5, 5]);
    assert_eq!(attr(conv, "strides"), [1, 1]);
    assert_eq!(attr(conv, "pads"), [2, 2, 2, 2]);
    assert_eq!(attr(&g.node[2], "strides"), [2, 2]);
    assert_eq!(attr(&g.node[3], "pads"), [0, 0, 0, 0]);
    assert_eq!(attr(&g.node[7], "transB"), [1]);
    // Every parameter lands in its layer's initializer, in the trainer's layout.
    for p in &ckpt.params {
        let kind = if p.layer == 0 || p.layer == 3 {
            "conv"
        } else {
            "gemm"
        };
        let (weight, bias) = p.weight_bias();
        let w = init(g, &format!("l{}_{kind}.weight", p.layer));
        assert_eq!(floats(w), weight);
        assert_eq!(floats(init(g, &format!("l{}_{kind}.bias", p.layer))), bias);
        assert_eq!(w.dims[0] as usize, bias.len());
    }
    assert_eq!(init(g, "l0_conv.weight").dims, [12, 1, 5, 5]);
    assert_eq!(init(g, "l7_gemm.weight").dims, [120, 600]);
    let dims = |v: &onnx::ValueInfoProto| match &v.r#type.as_ref().unwrap().value {
        Some(type_proto::Value::TensorType(t)) => t.shape.as_ref().unwrap().dim.clone(),
        None => panic!("no type"),
    };
    let input = dims(&g.input[0]);
    assert_eq!(input[0].value, Some(dimension::Value::DimParam("N".into())));
    assert_eq!(
        input[1..]
            .iter()
            .map(|d| d.value.clone())
            .collect::<Vec<_>>(),
        [1, 28, 28].map(|v| Some(dimension::Value::DimValue(v)))
    );
    assert_eq!(
        dims(&g.output[0])[1].value,
        Some(dimension::Value::DimValue(10))
    );
    let props: Vec<(&str, &str)> = m
        .metadata_props
        .iter()
        .map(|p| (p.key.as_str(), p.value.as_str()))
        .collect();
    assert!(props.contains(&("kestrel.input_mean", "0.25")), "{props:?}");
    assert!(props.contains(&("kestrel.input_std", "0.5")), "{props:?}");
}

#[test]
fn jarrett_lcn_subgraph() {
    let arch = Arch::load("jarrett").unwrap();
    let ckpt = checkpoint(&arch);
    let g = export_and_decode(&ckpt).graph.unwrap();
    let lcn = [
        "ReduceMean",
        "Conv",
        "Sub",
        "Mul",
        "ReduceMean",
        "Conv",
        "Relu",
        "Sqrt",
        "ReduceMean",
        "Max",
        "Div",
    ];
    let stage: Vec<&str> = ["Conv", "Tanh", "Abs"]
        .into_iter()
        .chain(lcn)
        .chain(["AveragePool"])
        .collect();
    let want: Vec<&str> = stage
        .iter()
        .chain(&stage)
        .copied()
        .chain(["Flatten", "Gemm"])
        .collect();
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, want);
    let net = Network::new(Cpu::new(), &arch, 7).unwrap();
    for layer in [3, 8] {
        let w = init(&g, &format!("l{layer}_lcn.window"));
        assert_eq!(w.dims, [1, 1, 5, 5]);
        assert_eq!(floats(w), net.lcn_window(layer).unwrap().unwrap());
        let eps = init(&g, &format!("l{layer}_lcn.eps"));
        assert!(eps.dims.is_empty());
        assert_eq!(floats(eps), [1e-4]);
    }
    let first = |op: &str| g.node.iter().find(|n| n.op_type == op).unwrap();
    assert_eq!(attr(first("ReduceMean"), "axes"), [1]);
    let mean_std = g.node.iter().find(|n| n.name == "l3_lcn.mean_std").unwrap();
    assert_eq!(attr(mean_std, "axes"), [2, 3]);
    assert_eq!(attr(&g.node[4], "pads"), [2, 2, 2, 2]); // l3_lcn.local_mean
    assert_eq!(g.node[4].name, "l3_lcn.local_mean");
}

#[test]
fn dropout_is_left_out_and_a_spatial_layer_after_flatten_is_an_error() {
    let text = r#"
        name = "t"
        input = [2, 6, 6]
        [[layer]]
        type = "conv2d"
        out = 3
        kernel = 3
        [[layer]]
        type = "dropout"
        p = 0.5
        [[layer]]
        type = "linear"
        out = 4
    "#;
    let arch = Arch::from_toml(text, "t").unwrap();
    let g = export_and_decode(&checkpoint(&arch)).graph.unwrap();
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["Conv", "Flatten", "Gemm"]);

    let text = r#"
        name = "t"
        input = [1, 4, 4]
        [[layer]]
        type = "flatten"
        [[layer]]
        type = "conv2d"
        out = 2
        kernel = 1
    "#;
    let arch = Arch::from_toml(text, "t").unwrap();
    let e = export_onnx(Cpu::new(), &checkpoint(&arch)).unwrap_err();
    assert!(
        e.to_string().contains("layer 1 (conv2d)") && e.to_string().contains("after flatten"),
        "{e}"
    );
}
