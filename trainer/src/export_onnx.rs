//! ONNX export of the float network, so that peers (onnxruntime, tract) run the very same
//! model that `kestrel export` quantizes.
//!
//! The graph takes the **normalized** input, exactly what the runtime's
//! `Input::Normalized` takes: `input [N, C, H, W]` f32 with `x = (p / 255 − mean) / std`
//! (`mean` and `std` are stored in the model's `metadata_props` as `kestrel.input_mean` and
//! `kestrel.input_std`), and returns `logits [N, classes]`. `N` is symbolic. Opset 13,
//! IR version 8, weights as f32 initializers; dropout is the identity at inference and is
//! left out.
//!
//! Each trainer layer becomes:
//!
//! | layer | ONNX |
//! |---|---|
//! | conv2d | `Conv` (`strides`, `pads`) |
//! | linear | `Flatten` (when the input is still `[N, C, H, W]`) + `Gemm` (`transB = 1`) |
//! | relu, tanh, abs | `Relu`, `Tanh`, `Abs` |
//! | maxpool2d, avgpool2d | `MaxPool`, `AveragePool` (no padding, floor) |
//! | flatten | `Flatten` (`axis = 1`) |
//! | lcn | the subgraph below |
//!
//! Local contrast normalization (see `backend::cpu::lcn` for the trainer's definition), with
//! the normalized window `w` as a `[1, 1, S, S]` convolution with zero padding `S / 2`:
//! ```text
//! a = ReduceMean(x, axes=[1])            m = Conv(a, w)         v = x − m
//! q = ReduceMean(v·v, axes=[1])          s = Sqrt(Relu(Conv(q, w)))
//! c = ReduceMean(s, axes=[2, 3])         y = v / Max(c, s, eps)
//! ```
//! The trainer sums `c` in f64; ONNX engines sum in f32, a difference far below 1e-5.

use prost::Message;

use crate::backend::Backend;
use crate::checkpoint::Checkpoint;
use crate::config::LayerSpec;
use crate::error::{Error, Result};
use crate::nn::{spec_name, Network};

#[allow(missing_docs, clippy::all, clippy::pedantic)]
#[rustfmt::skip]
pub mod onnx;

use onnx::attribute_proto::AttributeType;
use onnx::tensor_proto::DataType;
use onnx::tensor_shape_proto::{dimension, Dimension};
use onnx::type_proto;

/// The ONNX operator set the graph is written against.
pub const OPSET: i64 = 13;
/// The ONNX IR version written (the newest the checked-in messages describe).
pub const IR_VERSION: i64 = 8;
/// Name of the graph input (`[N, C, H, W]`, normalized f32).
pub const INPUT: &str = "input";
/// Name of the graph output (`[N, classes]`).
pub const OUTPUT: &str = "logits";

/// An attribute value.
enum Attr {
    Int(i64),
    Ints(Vec<i64>),
}

/// Nodes and initializers, with fresh names per layer.
struct Graph {
    nodes: Vec<onnx::NodeProto>,
    inits: Vec<onnx::TensorProto>,
}

impl Graph {
    /// Adds `op(inputs)` named `name` with one output, also named `name`; returns it.
    fn node(
        &mut self,
        op: &str,
        name: String,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) -> String {
        let attribute = attrs
            .into_iter()
            .map(|(n, a)| {
                let mut p = onnx::AttributeProto {
                    name: n.into(),
                    ..Default::default()
                };
                match a {
                    Attr::Int(i) => {
                        p.i = i;
                        p.set_type(AttributeType::Int);
                    }
                    Attr::Ints(v) => {
                        p.ints = v;
                        p.set_type(AttributeType::Ints);
                    }
                }
                p
            })
            .collect();
        self.nodes.push(onnx::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.clone()],
            name: name.clone(),
            op_type: op.into(),
            attribute,
            ..Default::default()
        });
        name
    }

    /// Adds an f32 initializer of shape `dims`; returns its name.
    fn constant(&mut self, name: String, dims: &[usize], values: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        let mut t = onnx::TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            name: name.clone(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        };
        t.set_data_type(DataType::Float);
        self.inits.push(t);
        name
    }
}

/// `float[dims]` with `None` as the symbolic batch `N`.
fn value_info(name: &str, dims: &[Option<usize>]) -> onnx::ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => dimension::Value::DimValue(*n as i64),
                None => dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    onnx::ValueInfoProto {
        name: name.into(),
        r#type: Some(onnx::TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(onnx::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn ints(v: &[usize]) -> Attr {
    Attr::Ints(v.iter().map(|&x| x as i64).collect())
}

/// Builds the ONNX model of a checkpoint's float network (see the module docs).
pub fn model_proto<B: Backend>(backend: B, ckpt: &Checkpoint) -> Result<onnx::ModelProto> {
    let mut net = Network::new(backend, &ckpt.arch, ckpt.train.seed)?;
    net.set_params(&ckpt.params)?;
    let params = net.params()?;
    let shapes = net.output_shapes().to_vec();
    let mut g = Graph {
        nodes: Vec::new(),
        inits: Vec::new(),
    };
    let mut x = INPUT.to_string();
    // Whether `x` is still `[N, C, H, W]` (rather than `[N, features]`).
    let mut spatial = true;
    let mut in_shape = ckpt.arch.input;
    for (i, spec) in ckpt.arch.layers.iter().enumerate() {
        let fail = |message: String| Error::Shape {
            layer: i,
            op: spec_name(spec),
            message,
        };
        let p = || {
            params
                .iter()
                .find(|p| p.layer == i)
                .ok_or_else(|| fail("checkpoint has no parameters for this layer".into()))
        };
        let needs_spatial = |spatial: bool| {
            if spatial {
                Ok(())
            } else {
                Err(fail(
                    "ONNX export: a spatial layer after flatten or linear is not supported".into(),
                ))
            }
        };
        let [c, _, _] = in_shape;
        x = match *spec {
            LayerSpec::Dropout { .. } => x, // the identity at inference
            LayerSpec::Conv2d {
                out,
                kernel,
                stride,
                pad,
            } => {
                needs_spatial(spatial)?;
                let p = p()?;
                let w = g.constant(
                    format!("l{i}_conv.weight"),
                    &[out, c, kernel, kernel],
                    p.weight_bias().0,
                );
                let b = g.constant(format!("l{i}_conv.bias"), &[out], p.weight_bias().1);
                let attrs = vec![
                    ("kernel_shape", ints(&[kernel, kernel])),
                    ("strides", ints(&[stride, stride])),
                    ("pads", ints(&[pad; 4])),
                ];
                g.node("Conv", format!("l{i}_conv"), &[&x, &w, &b], attrs)
            }
            LayerSpec::Linear { out } => {
                if spatial {
                    x = g.node(
                        "Flatten",
                        format!("l{i}_flatten"),
                        &[&x],
                        vec![("axis", Attr::Int(1))],
                    );
                    spatial = false;
                }
                let p = p()?;
                let (weight, bias) = p.weight_bias();
                let inputs = weight.len() / out.max(1);
                let w = g.constant(format!("l{i}_gemm.weight"), &[out, inputs], weight);
                let b = g.constant(format!("l{i}_gemm.bias"), &[out], bias);
                let attrs = vec![("transB", Attr::Int(1))];
                g.node("Gemm", format!("l{i}_gemm"), &[&x, &w, &b], attrs)
            }
            LayerSpec::Relu => g.node("Relu", format!("l{i}_relu"), &[&x], vec![]),
            LayerSpec::Tanh => g.node("Tanh", format!("l{i}_tanh"), &[&x], vec![]),
            LayerSpec::Abs => g.node("Abs", format!("l{i}_abs"), &[&x], vec![]),
            LayerSpec::MaxPool2d { kernel, stride } | LayerSpec::AvgPool2d { kernel, stride } => {
                needs_spatial(spatial)?;
                let (op, name) = match spec {
                    LayerSpec::MaxPool2d { .. } => ("MaxPool", format!("l{i}_maxpool")),
                    _ => ("AveragePool", format!("l{i}_avgpool")),
                };
                let s = stride.unwrap_or(kernel);
                let attrs = vec![
                    ("kernel_shape", ints(&[kernel, kernel])),
                    ("strides", ints(&[s, s])),
                ];
                g.node(op, name, &[&x], attrs)
            }
            LayerSpec::Flatten => {
                if spatial {
                    spatial = false;
                    g.node(
                        "Flatten",
                        format!("l{i}_flatten"),
                        &[&x],
                        vec![("axis", Attr::Int(1))],
                    )
                } else {
                    x
                }
            }
            LayerSpec::Lcn { size, eps, .. } => {
                needs_spatial(spatial)?;
                let w = net
                    .lcn_window(i)?
                    .ok_or_else(|| fail("the network has no window for this layer".into()))?;
                lcn(&mut g, i, &x, size, eps, &w)
            }
        };
        in_shape = shapes[i];
    }
    if spatial {
        x = g.node(
            "Flatten",
            "flatten_logits".into(),
            &[&x],
            vec![("axis", Attr::Int(1))],
        );
    }
    match g.nodes.last_mut() {
        // Rename the last output rather than add an Identity node.
        Some(last) if last.output[0] == x => last.output[0] = OUTPUT.into(),
        _ => {
            g.node("Identity", OUTPUT.into(), &[&x], vec![]);
        }
    }
    let [c, h, w] = ckpt.arch.input;
    let classes = net.num_classes();
    let meta = |k: &str, v: String| onnx::StringStringEntryProto {
        key: k.into(),
        value: v,
    };
    let graph = onnx::GraphProto {
        node: g.nodes,
        name: ckpt.arch.name.clone(),
        initializer: g.inits,
        doc_string: format!(
            "{}: input is normalized, x = (pixel / 255 - {}) / {}",
            ckpt.arch.name, ckpt.normalize.mean, ckpt.normalize.std
        ),
        input: vec![value_info(INPUT, &[None, Some(c), Some(h), Some(w)])],
        output: vec![value_info(OUTPUT, &[None, Some(classes)])],
        ..Default::default()
    };
    Ok(onnx::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![onnx::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "kestrel".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "{} trained {} epochs on {}",
            ckpt.arch.name,
            ckpt.epochs_done,
            ckpt.data_dir.display()
        ),
        graph: Some(graph),
        metadata_props: vec![
            meta("kestrel.input_mean", ckpt.normalize.mean.to_string()),
            meta("kestrel.input_std", ckpt.normalize.std.to_string()),
            meta("kestrel.classes", ckpt.classes.join(",")),
        ],
        ..Default::default()
    })
}

/// The LCN subgraph of layer `i` on `x` (see the module docs); returns its output.
fn lcn(g: &mut Graph, i: usize, x: &str, size: usize, eps: f32, window: &[f32]) -> String {
    let n = |s: &str| format!("l{i}_lcn.{s}");
    let w = g.constant(n("window"), &[1, 1, size, size], window);
    let eps = g.constant(n("eps"), &[], &[eps]);
    let conv_attrs = || {
        vec![
            ("kernel_shape", ints(&[size, size])),
            ("pads", ints(&[size / 2; 4])),
        ]
    };
    let channel_mean = || vec![("axes", ints(&[1])), ("keepdims", Attr::Int(1))];
    let a = g.node("ReduceMean", n("channel_mean"), &[x], channel_mean());
    let m = g.node("Conv", n("local_mean"), &[&a, &w], conv_attrs());
    let v = g.node("Sub", n("centered"), &[x, &m], vec![]);
    let v2 = g.node("Mul", n("squared"), &[&v, &v], vec![]);
    let q = g.node("ReduceMean", n("channel_var"), &[&v2], channel_mean());
    let s2 = g.node("Conv", n("local_var"), &[&q, &w], conv_attrs());
    let s2 = g.node("Relu", n("local_var_pos"), &[&s2], vec![]);
    let s = g.node("Sqrt", n("local_std"), &[&s2], vec![]);
    let attrs = vec![("axes", ints(&[2, 3])), ("keepdims", Attr::Int(1))];
    let c = g.node("ReduceMean", n("mean_std"), &[&s], attrs);
    let d = g.node("Max", n("divisor"), &[&c, &s, &eps], vec![]);
    g.node("Div", n("out"), &[&v, &d], vec![])
}

/// The ONNX model file (protobuf bytes) of a checkpoint's float network.
pub fn export_onnx<B: Backend>(backend: B, ckpt: &Checkpoint) -> Result<Vec<u8>> {
    Ok(model_proto(backend, ckpt)?.encode_to_vec())
}

#[cfg(test)]
mod tests;
