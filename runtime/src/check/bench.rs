//! Kernel timings on fixed layer shapes: the reference and this build's variant run on the
//! same random data, one after the other, timed by a caller-supplied clock, and their
//! outputs compared. The shapes are those ARM publishes CMSIS-NN figures for (LeNet-5's
//! layers and a 3×3 convolution), so firmware can print instructions per MAC beside them.
//!
//! ```
//! use kestrel_runtime::check::{bench, WORK_BYTES};
//! let mut work = vec![0u8; WORK_BYTES];
//! let mut calls = 0u32;
//! // A stand-in clock: one tick per call (firmware reads SysTick around `f`).
//! let t = bench::run(bench::Shape::Fc400x120, &mut work, &mut |f| {
//!     f();
//!     calls += 1;
//!     1
//! });
//! assert!(t.equal && t.macs == 48_000 && calls == 2);
//! ```

use crate::kernels::table::Kernels;
use kestrel_format::{ConvGeom, Dense, Layer, LayerKind, QParams};

use super::{shape, Carve, Rng};
use crate::kernels::{avgpool, conv2d, fc, maxpool, DenseF, DenseS8, Dims, Elem};

/// A timed layer shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Convolution 3×3, 16 → 32 channels, 16×16, pad 1.
    Conv3x3x16x32,
    /// LeNet-5's first convolution: 5×5, 1 → 6 channels, 28×28, pad 2.
    Conv5x5x1x6,
    /// LeNet-5's second convolution: 5×5, 6 → 16 channels, 14×14, no padding.
    Conv5x5x6x16,
    /// Fully connected 400 → 120 (LeNet-5's first).
    Fc400x120,
    /// Fully connected 120 → 84 (LeNet-5's second).
    Fc120x84,
    /// LeNet-5's second convolution in f32: 5×5, 6 → 16 channels, 14×14, no padding.
    ConvF32x5x5x6x16,
    /// Fully connected 400 → 120 in f32 (the float layers of encoders).
    FcF32x400x120,
    /// Max pooling 2×2, stride 2, on 6×28×28 (figures are per output).
    MaxPool2x2,
    /// Average pooling 2×2, stride 2, on 6×28×28 (figures are per output).
    AvgPool2x2,
    /// A strided f32 convolution: 5×5, stride 2, pad 2, 8 → 16 channels, 28×28.
    ConvF32Stride2,
    /// Max pooling 3×3, stride 2 (overlapping windows), on 8×27×27 (per output).
    MaxPool3x3Stride2,
    /// Average pooling 3×3, stride 2, on 8×27×27 (per output).
    AvgPool3x3Stride2,
}

impl Shape {
    /// Every timed shape.
    pub const ALL: [Shape; 12] = [
        Shape::Conv3x3x16x32,
        Shape::Conv5x5x1x6,
        Shape::Conv5x5x6x16,
        Shape::Fc400x120,
        Shape::Fc120x84,
        Shape::ConvF32x5x5x6x16,
        Shape::FcF32x400x120,
        Shape::MaxPool2x2,
        Shape::AvgPool2x2,
        Shape::ConvF32Stride2,
        Shape::MaxPool3x3Stride2,
        Shape::AvgPool3x3Stride2,
    ];

    /// A short description, e.g. `"conv 3x3 16->32 16x16 pad 1"`.
    pub const fn name(self) -> &'static str {
        match self {
            Shape::Conv3x3x16x32 => "conv 3x3 16->32 16x16 pad 1",
            Shape::Conv5x5x1x6 => "conv 5x5 1->6 28x28 pad 2",
            Shape::Conv5x5x6x16 => "conv 5x5 6->16 14x14",
            Shape::Fc400x120 => "fc 400->120",
            Shape::Fc120x84 => "fc 120->84",
            Shape::ConvF32x5x5x6x16 => "conv_f32 5x5 6->16 14x14",
            Shape::FcF32x400x120 => "fc_f32 400->120",
            Shape::MaxPool2x2 => "maxpool 2x2 on 6x28x28",
            Shape::AvgPool2x2 => "avgpool 2x2 on 6x28x28",
            Shape::ConvF32Stride2 => "conv_f32 5x5/2 8->16 28x28 pad 2",
            Shape::MaxPool3x3Stride2 => "maxpool 3x3/2 on 8x27x27",
            Shape::AvgPool3x3Stride2 => "avgpool 3x3/2 on 8x27x27",
        }
    }

    /// Pooling figures are per output element, the others per MAC.
    pub const fn per_output(self) -> bool {
        matches!(
            self,
            Shape::MaxPool2x2
                | Shape::AvgPool2x2
                | Shape::MaxPool3x3Stride2
                | Shape::AvgPool3x3Stride2
        )
    }
}

/// One shape's timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Multiply-accumulates of the layer (pooling: window elements read).
    pub macs: u64,
    /// Output elements.
    pub outputs: u64,
    /// Clock ticks the reference took.
    pub reference: u32,
    /// Clock ticks this build's variant took.
    pub variant: u32,
    /// Scratch bytes the variant used.
    pub scratch: usize,
    /// Whether both produced the same output bytes.
    pub equal: bool,
}

/// Times the reference and then the set this build runs by default on `shape`; `time(f)` runs `f` once
/// and returns the ticks it took.
///
/// # Panics
/// If `work` is shorter than [`super::WORK_BYTES`].
pub fn run(shape: Shape, work: &mut [u8], time: &mut dyn FnMut(&mut dyn FnMut()) -> u32) -> Timing {
    assert!(
        work.len() >= super::WORK_BYTES,
        "bench::run needs WORK_BYTES of work"
    );
    let mut rng = Rng::new(0x6b65_7374_7265_6c00 ^ shape as u64);
    let mut work = Carve::new(work);
    let ks = Kernels::default_table();
    match shape {
        Shape::Conv3x3x16x32 => conv(ks, &mut rng, &mut work, time, 16, 16, 32, 3, 1),
        Shape::Conv5x5x1x6 => conv(ks, &mut rng, &mut work, time, 1, 28, 6, 5, 2),
        Shape::Conv5x5x6x16 => conv(ks, &mut rng, &mut work, time, 6, 14, 16, 5, 0),
        Shape::Fc400x120 => linear(ks, &mut rng, &mut work, time, 400, 120),
        Shape::Fc120x84 => linear(ks, &mut rng, &mut work, time, 120, 84),
        Shape::ConvF32x5x5x6x16 => conv_f32(ks, &mut rng, &mut work, time, 6, 14, 16, 5, 1, 0),
        Shape::ConvF32Stride2 => conv_f32(ks, &mut rng, &mut work, time, 8, 28, 16, 5, 2, 2),
        Shape::FcF32x400x120 => linear_f32(ks, &mut rng, &mut work, time, 400, 120),
        Shape::MaxPool2x2 | Shape::AvgPool2x2 => {
            pool(ks, shape, &mut rng, &mut work, time, 2, 2, (6, 28))
        }
        Shape::MaxPool3x3Stride2 | Shape::AvgPool3x3Stride2 => {
            pool(ks, shape, &mut rng, &mut work, time, 3, 2, (8, 27))
        }
    }
}

/// Trained-layer-like int8 parameters: weights over the whole range, small biases,
/// requantization shifts in the usual `-10..=-6`, input zero point −128 (after a ReLU).
fn params<'w>(rng: &mut Rng, work: &mut Carve<'w>, oc: usize, n_w: usize) -> DenseS8<'w> {
    DenseS8 {
        weight: work.i8s(n_w, |_| (rng.next_u64() as i8).max(-127)),
        bias: work.i32s(oc, |_| rng.int(-20_000, 20_000)),
        multiplier: work.i32s(oc, |_| rng.int(1 << 30, i32::MAX)),
        shift: work.i32s(oc, |_| rng.int(-10, -6)),
        zp_in: -128,
        zp_out: rng.int(-128, 127),
    }
}

fn layer<'l>(kind: LayerKind<'l>, p: &DenseS8<'_>, xd: Dims, yd: Dims) -> Layer<'l> {
    let q = |zero_point| {
        Some(QParams {
            scale: 1.0,
            zero_point,
        })
    };
    Layer {
        kind,
        input: shape(xd),
        output: shape(yd),
        in_quant: q(p.zp_in),
        out_quant: q(p.zp_out),
    }
}

fn dense<'w>(p: &DenseS8<'w>) -> Dense<'w> {
    Dense::I8 {
        weight: p.weight,
        bias: p.bias,
        weight_scale: &[],
        multiplier: p.multiplier,
        shift: p.shift,
    }
}

#[allow(clippy::too_many_arguments)]
fn conv(
    ks: &Kernels,
    rng: &mut Rng,
    work: &mut Carve<'_>,
    time: &mut dyn FnMut(&mut dyn FnMut()) -> u32,
    c: usize,
    hw: usize,
    oc: usize,
    k: usize,
    pad: usize,
) -> Timing {
    let g = ConvGeom {
        kh: k,
        kw: k,
        stride: 1,
        pad,
    };
    let o = hw + 2 * pad - k + 1;
    let (xd, yd) = (Dims { c, h: hw, w: hw }, Dims { c: oc, h: o, w: o });
    let p = params(rng, work, oc, oc * c * k * k);
    let kind = LayerKind::Conv2d {
        geom: g,
        params: dense(&p),
    };
    let scratch_len = conv2d::scratch_len_for(ks.set, &layer(kind, &p, xd, yd), Elem::I8);
    let x = work.i8s(xd.len(), |_| rng.next_u64() as i8);
    let (want, got, scratch) = work.outputs_i8(yd.len(), scratch_len);
    let reference = time(&mut || conv2d::reference::conv2d_s8(x, xd, p, g, yd, want, &mut []));
    let variant = time(&mut || (ks.conv2d_s8)(x, xd, p, g, yd, got, scratch));
    Timing {
        macs: (yd.len() * c * k * k) as u64,
        outputs: yd.len() as u64,
        reference,
        variant,
        scratch: scratch_len,
        equal: want == got,
    }
}

fn linear(
    ks: &Kernels,
    rng: &mut Rng,
    work: &mut Carve<'_>,
    time: &mut dyn FnMut(&mut dyn FnMut()) -> u32,
    k: usize,
    out: usize,
) -> Timing {
    let (xd, yd) = (Dims { c: k, h: 1, w: 1 }, Dims { c: out, h: 1, w: 1 });
    let p = params(rng, work, out, out * k);
    let kind = LayerKind::Linear { params: dense(&p) };
    let scratch_len = fc::scratch_len_for(ks.set, &layer(kind, &p, xd, yd), Elem::I8);
    let x = work.i8s(k, |_| rng.next_u64() as i8);
    let (want, got, scratch) = work.outputs_i8(out, scratch_len);
    let reference = time(&mut || fc::reference::fc_s8(x, p, want, &mut []));
    let variant = time(&mut || (ks.fc_s8)(x, p, got, scratch));
    Timing {
        macs: (k * out) as u64,
        outputs: out as u64,
        reference,
        variant,
        scratch: scratch_len,
        equal: want == got,
    }
}

#[allow(clippy::too_many_arguments)]
fn conv_f32(
    ks: &Kernels,
    rng: &mut Rng,
    work: &mut Carve<'_>,
    time: &mut dyn FnMut(&mut dyn FnMut()) -> u32,
    c: usize,
    hw: usize,
    oc: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> Timing {
    let g = ConvGeom {
        kh: k,
        kw: k,
        stride,
        pad,
    };
    let o = (hw + 2 * pad - k) / stride + 1;
    let (xd, yd) = (Dims { c, h: hw, w: hw }, Dims { c: oc, h: o, w: o });
    let weight = work.f32s(oc * c * k * k, |_| rng.f32());
    let bias = work.f32s(oc, |_| rng.f32());
    let kind = LayerKind::Conv2d {
        geom: g,
        params: Dense::F32 { weight, bias },
    };
    let layer = super::float_layer(kind, xd, yd);
    let scratch_len = conv2d::scratch_len_for(ks.set, &layer, Elem::F32);
    let x = work.f32s(xd.len(), |_| rng.f32());
    let (want, got, scratch) = work.outputs_f32(yd.len(), scratch_len);
    let p = DenseF { weight, bias };
    let reference = time(&mut || conv2d::reference::conv2d_f32(x, xd, p, g, yd, want, &mut []));
    let variant = time(&mut || (ks.conv2d_f32)(x, xd, p, g, yd, got, scratch));
    Timing {
        macs: (yd.len() * c * k * k) as u64,
        outputs: yd.len() as u64,
        reference,
        variant,
        scratch: scratch_len,
        equal: want
            .iter()
            .zip(got.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()),
    }
}

fn linear_f32(
    ks: &Kernels,
    rng: &mut Rng,
    work: &mut Carve<'_>,
    time: &mut dyn FnMut(&mut dyn FnMut()) -> u32,
    k: usize,
    out: usize,
) -> Timing {
    let (xd, yd) = (Dims { c: k, h: 1, w: 1 }, Dims { c: out, h: 1, w: 1 });
    let weight = work.f32s(out * k, |_| rng.f32());
    let bias = work.f32s(out, |_| rng.f32());
    let kind = LayerKind::Linear {
        params: Dense::F32 { weight, bias },
    };
    let layer = super::float_layer(kind, xd, yd);
    let scratch_len = fc::scratch_len_for(ks.set, &layer, Elem::F32);
    let x = work.f32s(k, |_| rng.f32());
    let (want, got, scratch) = work.outputs_f32(out, scratch_len);
    let p = DenseF { weight, bias };
    let reference = time(&mut || fc::reference::fc_f32(x, p, want, &mut []));
    let variant = time(&mut || (ks.fc_f32)(x, p, got, scratch));
    Timing {
        macs: (k * out) as u64,
        outputs: out as u64,
        reference,
        variant,
        scratch: scratch_len,
        equal: want
            .iter()
            .zip(got.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()),
    }
}

#[allow(clippy::too_many_arguments)]
fn pool(
    ks: &Kernels,
    shape_: Shape,
    rng: &mut Rng,
    work: &mut Carve<'_>,
    time: &mut dyn FnMut(&mut dyn FnMut()) -> u32,
    k: usize,
    stride: usize,
    (c, hw): (usize, usize),
) -> Timing {
    let o = (hw - k) / stride + 1;
    let (xd, yd) = (Dims { c, h: hw, w: hw }, Dims { c, h: o, w: o });
    let q = Some(QParams {
        scale: 1.0,
        zero_point: 0,
    });
    let max = matches!(shape_, Shape::MaxPool2x2 | Shape::MaxPool3x3Stride2);
    let kind = if max {
        LayerKind::MaxPool2d { k, stride }
    } else {
        LayerKind::AvgPool2d { k, stride }
    };
    let layer = Layer {
        kind,
        input: shape(xd),
        output: shape(yd),
        in_quant: q,
        out_quant: q,
    };
    let scratch_len = if max {
        maxpool::scratch_len(&layer, Elem::I8)
    } else {
        avgpool::scratch_len(&layer, Elem::I8)
    };
    let x = work.i8s(xd.len(), |_| rng.next_u64() as i8);
    let (want, got, scratch) = work.outputs_i8(yd.len(), scratch_len);
    let (reference, variant) = if max {
        (
            time(&mut || maxpool::reference::maxpool_s8(x, xd, k, stride, yd, want, &mut [])),
            time(&mut || (ks.maxpool_s8)(x, xd, k, stride, yd, got, scratch)),
        )
    } else {
        (
            time(&mut || avgpool::reference::avgpool_s8(x, xd, k, stride, yd, want, &mut [])),
            time(&mut || (ks.avgpool_s8)(x, xd, k, stride, yd, got, scratch)),
        )
    };
    Timing {
        macs: (yd.len() * k * k) as u64,
        outputs: yd.len() as u64,
        reference,
        variant,
        scratch: scratch_len,
        equal: want == got,
    }
}
