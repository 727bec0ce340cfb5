//! Shape inference: each [`LayerSpec`] at its input shape becomes an [`Op`] with concrete
//! geometry, or a typed [`Error::Shape`] naming the layer and what did not fit.

use crate::backend::{Activation, ConvShape, LcnShape, LinearShape, PoolShape};
use crate::config::{Arch, LayerSpec};
use crate::error::{Error, Result};
use crate::nn::layer::{Init, ParamSpec};

/// A layer with its geometry resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// Convolution.
    Conv2d(ConvShape),
    /// Fully connected (flattens its input).
    Linear(LinearShape),
    /// Elementwise nonlinearity.
    Act(Activation),
    /// Max pooling.
    MaxPool2d(PoolShape),
    /// Average pooling.
    AvgPool2d(PoolShape),
    /// Local contrast normalization with a Gaussian window of std `sigma`.
    Lcn {
        /// Geometry.
        shape: LcnShape,
        /// Gaussian standard deviation.
        sigma: f32,
    },
    /// Inverted dropout with drop probability `p`.
    Dropout {
        /// Drop probability in `[0, 1)`.
        p: f32,
    },
    /// `[c, h, w] → [c·h·w, 1, 1]`.
    Flatten,
}

impl Op {
    /// The TOML `type` name (`conv2d`, `maxpool2d`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv2d(_) => "conv2d",
            Op::Linear(_) => "linear",
            Op::Act(Activation::Relu) => "relu",
            Op::Act(Activation::Tanh) => "tanh",
            Op::Act(Activation::Abs) => "abs",
            Op::MaxPool2d(_) => "maxpool2d",
            Op::AvgPool2d(_) => "avgpool2d",
            Op::Lcn { .. } => "lcn",
            Op::Dropout { .. } => "dropout",
            Op::Flatten => "flatten",
        }
    }

    /// The layer's parameter tensors, in the order the layer stores them: a convolution's or
    /// linear layer's `weight` (`N(0, std²)`, decayed) and `bias` (zeros); none otherwise.
    pub fn param_specs(&self, std: f32) -> Vec<ParamSpec> {
        let (w, b) = match self {
            Op::Conv2d(s) => (s.weight_len(), s.out_c),
            Op::Linear(s) => (s.inputs * s.outputs, s.outputs),
            Op::Act(_)
            | Op::MaxPool2d(_)
            | Op::AvgPool2d(_)
            | Op::Lcn { .. }
            | Op::Dropout { .. }
            | Op::Flatten => return Vec::new(),
        };
        vec![
            ParamSpec {
                name: "weight",
                len: w,
                init: Init::Normal(std),
                decay: true,
                constraint: None,
            },
            ParamSpec {
                name: "bias",
                len: b,
                init: Init::Const(0.0),
                decay: false,
                constraint: None,
            },
        ]
    }

    /// The weight's fan-in (inputs per output unit) of layers with weights.
    pub fn fan_in(&self) -> Option<usize> {
        match self {
            Op::Conv2d(s) => Some(s.patch_len()),
            Op::Linear(s) => Some(s.inputs),
            Op::Act(_)
            | Op::MaxPool2d(_)
            | Op::AvgPool2d(_)
            | Op::Lcn { .. }
            | Op::Dropout { .. }
            | Op::Flatten => None,
        }
    }

    /// Trainable parameters of the layer.
    pub fn num_params(&self) -> usize {
        self.param_specs(0.0).iter().map(|p| p.len).sum()
    }
}

/// The TOML `type` name of a spec.
pub fn spec_name(spec: &LayerSpec) -> &'static str {
    match spec {
        LayerSpec::Conv2d { .. } => "conv2d",
        LayerSpec::Linear { .. } => "linear",
        LayerSpec::Relu => "relu",
        LayerSpec::Tanh => "tanh",
        LayerSpec::Abs => "abs",
        LayerSpec::MaxPool2d { .. } => "maxpool2d",
        LayerSpec::AvgPool2d { .. } => "avgpool2d",
        LayerSpec::Lcn { .. } => "lcn",
        LayerSpec::Dropout { .. } => "dropout",
        LayerSpec::Flatten => "flatten",
    }
}

/// Floats in a `[c, h, w]` shape.
pub fn numel(s: [usize; 3]) -> usize {
    s[0] * s[1] * s[2]
}

fn pool_shape(
    input: [usize; 3],
    kernel: usize,
    stride: Option<usize>,
    fail: &dyn Fn(String) -> Error,
) -> Result<PoolShape> {
    let [c, h, w] = input;
    let stride = stride.unwrap_or(kernel);
    if kernel == 0 || stride == 0 {
        return Err(fail(format!(
            "kernel and stride must be positive (got kernel {kernel}, stride {stride})"
        )));
    }
    if kernel > h || kernel > w {
        return Err(fail(format!(
            "window {kernel}×{kernel} is larger than the input {h}×{w}"
        )));
    }
    Ok(PoolShape {
        c,
        in_h: h,
        in_w: w,
        kernel,
        stride,
        out_h: (h - kernel) / stride + 1,
        out_w: (w - kernel) / stride + 1,
    })
}

/// Resolves layer `index` (`spec`) at per-sample `input [c, h, w]`: its op and output shape.
pub fn infer_layer(index: usize, spec: &LayerSpec, input: [usize; 3]) -> Result<(Op, [usize; 3])> {
    let fail = |message: String| Error::Shape {
        layer: index,
        op: spec_name(spec),
        message,
    };
    let [c, h, w] = input;
    Ok(match *spec {
        LayerSpec::Conv2d {
            out,
            kernel,
            stride,
            pad,
        } => {
            if out == 0 || kernel == 0 || stride == 0 {
                return Err(fail(format!(
                    "out, kernel and stride must be positive (got out {out}, kernel {kernel}, stride {stride})"
                )));
            }
            let (ph, pw) = (h + 2 * pad, w + 2 * pad);
            if kernel > ph || kernel > pw {
                return Err(fail(format!(
                    "kernel {kernel}×{kernel} is larger than the padded input {ph}×{pw} (input {c}×{h}×{w}, pad {pad})"
                )));
            }
            let s = ConvShape {
                in_c: c,
                in_h: h,
                in_w: w,
                out_c: out,
                kernel,
                stride,
                pad,
                out_h: (ph - kernel) / stride + 1,
                out_w: (pw - kernel) / stride + 1,
            };
            (Op::Conv2d(s), [out, s.out_h, s.out_w])
        }
        LayerSpec::Linear { out } => {
            if out == 0 {
                return Err(fail("out must be positive (got 0)".into()));
            }
            (
                Op::Linear(LinearShape {
                    inputs: numel(input),
                    outputs: out,
                }),
                [out, 1, 1],
            )
        }
        LayerSpec::Relu => (Op::Act(Activation::Relu), input),
        LayerSpec::Tanh => (Op::Act(Activation::Tanh), input),
        LayerSpec::Abs => (Op::Act(Activation::Abs), input),
        LayerSpec::MaxPool2d { kernel, stride } => {
            let s = pool_shape(input, kernel, stride, &fail)?;
            (Op::MaxPool2d(s), [c, s.out_h, s.out_w])
        }
        LayerSpec::AvgPool2d { kernel, stride } => {
            let s = pool_shape(input, kernel, stride, &fail)?;
            (Op::AvgPool2d(s), [c, s.out_h, s.out_w])
        }
        LayerSpec::Lcn { size, sigma, eps } => {
            if size % 2 == 0 {
                return Err(fail(format!("window size must be odd (got {size})")));
            }
            if size > h || size > w {
                return Err(fail(format!(
                    "window {size}×{size} is larger than the input {h}×{w}"
                )));
            }
            let positive = |v: f32| v > 0.0 && v.is_finite();
            if !positive(sigma) || !positive(eps) {
                return Err(fail(format!(
                    "sigma and eps must be positive and finite (got sigma {sigma}, eps {eps})"
                )));
            }
            (
                Op::Lcn {
                    shape: LcnShape { c, h, w, size, eps },
                    sigma,
                },
                input,
            )
        }
        LayerSpec::Dropout { p } => {
            if !(0.0..1.0).contains(&p) {
                return Err(fail(format!(
                    "drop probability must be in [0, 1) (got {p})"
                )));
            }
            (Op::Dropout { p }, input)
        }
        LayerSpec::Flatten => (Op::Flatten, [numel(input), 1, 1]),
    })
}

/// A layer of an architecture with its per-sample shapes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerPlan {
    /// What it computes.
    pub op: Op,
    /// Input `[c, h, w]`.
    pub input: [usize; 3],
    /// Output `[c, h, w]` (`[n, 1, 1]` for vectors).
    pub output: [usize; 3],
}

/// Every layer of `arch` with its geometry and shapes.
pub fn infer(arch: &Arch) -> Result<Vec<LayerPlan>> {
    if arch.layers.is_empty() {
        return Err(Error::Shape {
            layer: 0,
            op: "network",
            message: "an architecture needs at least one layer".into(),
        });
    }
    if arch.input.contains(&0) {
        let op = spec_name(&arch.layers[0]);
        return Err(Error::Shape {
            layer: 0,
            op,
            message: format!("input shape {:?} has a zero dimension", arch.input),
        });
    }
    let mut shape = arch.input;
    let mut out = Vec::with_capacity(arch.layers.len());
    for (i, spec) in arch.layers.iter().enumerate() {
        let (op, next) = infer_layer(i, spec, shape)?;
        out.push(LayerPlan {
            op,
            input: shape,
            output: next,
        });
        shape = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Arch;

    fn arch(input: [usize; 3], layers: Vec<LayerSpec>) -> Arch {
        let mut a = Arch::load("lenet").unwrap();
        a.input = input;
        a.layers = layers;
        a
    }

    #[test]
    fn lenet_and_jarrett_shapes() {
        let lenet = infer(&Arch::load("lenet").unwrap()).unwrap();
        let outs: Vec<[usize; 3]> = lenet.iter().map(|l| l.output).collect();
        assert_eq!(outs[0], [12, 28, 28]);
        assert_eq!(outs[2], [12, 14, 14]);
        assert_eq!(outs[3], [24, 10, 10]);
        assert_eq!(outs[6], [600, 1, 1]);
        assert_eq!(*outs.last().unwrap(), [10, 1, 1]);
        let jarrett = infer(&Arch::load("jarrett").unwrap()).unwrap();
        assert_eq!(jarrett[9].output, [16, 5, 5]);
        assert!(matches!(
            jarrett[3].op,
            Op::Lcn {
                shape: LcnShape {
                    c: 8,
                    h: 28,
                    w: 28,
                    size: 5,
                    ..
                },
                ..
            }
        ));
    }

    #[test]
    fn typed_errors_name_the_layer_and_the_mismatch() {
        let conv = |out, kernel, stride, pad| LayerSpec::Conv2d {
            out,
            kernel,
            stride,
            pad,
        };
        let cases: Vec<(Arch, usize, &str, &str)> = vec![
            (
                arch([1, 4, 4], vec![conv(2, 5, 1, 0)]),
                0,
                "conv2d",
                "kernel 5×5 is larger than the padded input 4×4",
            ),
            (
                arch(
                    [1, 8, 8],
                    vec![
                        conv(2, 3, 1, 0),
                        LayerSpec::MaxPool2d {
                            kernel: 7,
                            stride: None,
                        },
                    ],
                ),
                1,
                "maxpool2d",
                "7×7",
            ),
            (
                arch(
                    [1, 8, 8],
                    vec![LayerSpec::Linear { out: 4 }, conv(2, 3, 1, 0)],
                ),
                1,
                "conv2d",
                "input 4×1×1",
            ),
            (
                arch(
                    [1, 8, 8],
                    vec![LayerSpec::Lcn {
                        size: 4,
                        sigma: 1.0,
                        eps: 1e-4,
                    }],
                ),
                0,
                "lcn",
                "odd (got 4)",
            ),
            (
                arch(
                    [1, 4, 4],
                    vec![LayerSpec::Lcn {
                        size: 5,
                        sigma: 1.0,
                        eps: 1e-4,
                    }],
                ),
                0,
                "lcn",
                "larger than the input 4×4",
            ),
            (
                arch([1, 4, 4], vec![LayerSpec::Dropout { p: 1.0 }]),
                0,
                "dropout",
                "[0, 1)",
            ),
            (
                arch([1, 4, 4], vec![conv(0, 3, 1, 0)]),
                0,
                "conv2d",
                "out 0",
            ),
            (
                arch(
                    [1, 4, 4],
                    vec![LayerSpec::AvgPool2d {
                        kernel: 2,
                        stride: Some(0),
                    }],
                ),
                0,
                "avgpool2d",
                "stride 0",
            ),
            (arch([1, 4, 4], vec![]), 0, "network", "at least one layer"),
            (
                arch([0, 4, 4], vec![LayerSpec::Relu]),
                0,
                "relu",
                "zero dimension",
            ),
        ];
        for (a, layer, op, needle) in cases {
            match infer(&a) {
                Err(Error::Shape {
                    layer: l,
                    op: o,
                    message,
                }) => {
                    assert_eq!((l, o), (layer, op), "{message}");
                    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
                }
                other => panic!("expected a shape error for {:?}, got {other:?}", a.layers),
            }
        }
    }
}
