//! Cost counting and [`Limits`]: every op's work is counted, and a small file declaring an
//! enormous computation is refused by the planner, before anything runs.

use std::string::ToString;

use kestrel_format::{Model, Precision, Shape};

use crate::testutil::{build, Spec, EVERY_OP};
use crate::{layer_ops, Error, Limit, Limits, Plan};

/// The report's crafted model: a 1024×1024 input under a 255×255 max pooling at stride 1,
/// in a file of about a hundred bytes. Before limits it took seconds per inference.
fn enormous() -> kestrel_format::AlignedBuf {
    build(
        Precision::F32,
        Shape::new(1, 1024, 1024),
        &[Spec::MaxPool { k: 255, stride: 1 }],
        1,
    )
}

#[test]
fn a_tiny_file_declaring_huge_work_is_refused() {
    let buf = enormous();
    assert!(buf.len() < 200, "{} bytes", buf.len());
    let model = Model::from_bytes(&buf).unwrap();
    let out = 770u64 * 770;
    let ops = out * 255 * 255 + 1024 * 1024;
    let err = Plan::new(&model).unwrap_err();
    assert_eq!(
        err,
        Error::LimitExceeded {
            limit: Limit::Ops,
            allowed: Limits::DEFAULT.max_ops,
            model: ops
        }
    );
    assert_eq!(
        err.to_string(),
        "model exceeds the operations per inference limit: it needs 38554371076, the limit is \
         10000000000"
    );
    // A caller that means it can still plan it.
    let plan = Plan::with_limits(&model, &Limits::NONE).unwrap();
    assert_eq!(plan.ops(), ops);
    assert_eq!(plan.layer_stats(0).unwrap().ops, out * 255 * 255);
}

#[test]
fn each_limit_is_checked_with_the_models_figure() {
    let buf = build(Precision::Int8, Shape::new(3, 9, 7), EVERY_OP, 3);
    let model = Model::from_bytes(&buf).unwrap();
    let plan = Plan::with_limits(&model, &Limits::NONE).unwrap();
    let (ops, arena, layers) = (plan.ops(), plan.arena_bytes(), model.layers().len());
    let exact = Limits {
        max_ops: ops,
        max_arena_bytes: arena,
        max_layers: layers,
    };
    Plan::with_limits(&model, &exact).unwrap();
    let cases = [
        (
            Limits {
                max_ops: ops - 1,
                ..exact
            },
            Limit::Ops,
            ops - 1,
            ops,
        ),
        (
            Limits {
                max_arena_bytes: arena - 1,
                ..exact
            },
            Limit::ArenaBytes,
            arena as u64 - 1,
            arena as u64,
        ),
        (
            Limits {
                max_layers: layers - 1,
                ..exact
            },
            Limit::Layers,
            layers as u64 - 1,
            layers as u64,
        ),
    ];
    for (limits, limit, allowed, figure) in cases {
        assert_eq!(
            Plan::with_limits(&model, &limits).unwrap_err(),
            Error::LimitExceeded {
                limit,
                allowed,
                model: figure
            }
        );
    }
}

/// Pooling, LCN and element-wise ops cost something: `ops` counts them (`macs` stays the
/// multiply-accumulates of convolutions and linear layers).
#[test]
fn every_op_has_a_cost() {
    let buf = build(Precision::F32, Shape::new(3, 9, 7), EVERY_OP, 3);
    let model = Model::from_bytes(&buf).unwrap();
    let plan = Plan::new(&model).unwrap();
    let mut total = 3 * 9 * 7;
    for (i, layer) in model.layers().iter().enumerate() {
        let s = plan.layer_stats(i).unwrap();
        assert_eq!(s.ops, layer_ops(layer));
        let name = layer.kind.name();
        match name {
            "flatten" => assert_eq!(s.ops, 0),
            "conv2d" | "linear" => assert_eq!(s.ops, s.macs, "{name}"),
            _ => {
                assert_eq!(s.macs, 0, "{name}");
                assert!(
                    s.ops >= layer.input.len() as u64,
                    "layer {i} {name}: {}",
                    s.ops
                );
            }
        }
        total += s.ops;
    }
    assert_eq!(plan.ops(), total);
    // LCN 3×3 on [5, 9, 7]: two window sums over all channels per element, plus one pass.
    let lcn = model
        .layers()
        .iter()
        .position(|l| l.kind.name() == "lcn")
        .unwrap();
    assert_eq!(plan.layer_stats(lcn).unwrap().ops, 2 * 315 * 9 + 315);
    // Max pooling 2×2 stride 1 on [5, 9, 7] → [5, 8, 6]: four taps per output.
    let pool = model
        .layers()
        .iter()
        .position(|l| l.kind.name() == "maxpool2d")
        .unwrap();
    assert_eq!(plan.layer_stats(pool).unwrap().ops, 4 * 5 * 8 * 6);
}

/// The scratch rules saturate instead of wrapping: a layer no model could fit (here
/// `2^20` channels of 255×255 taps: 2^36 taps) must not come out as a small size on a
/// 32-bit target (nor overflow-panic in a debug build). Checked for every kernel set's
/// rules, on every target the tests run on (scripts/test.sh runs them on i686 too).
#[test]
fn scratch_rules_saturate_on_every_target() {
    use kestrel_format::{ConvGeom, Dense, Layer, LayerKind};

    use crate::kernels::Elem;
    use crate::KernelSet;

    let geom = ConvGeom {
        kh: 255,
        kw: 255,
        stride: 1,
        pad: 0,
    };
    let layer = Layer {
        kind: LayerKind::Conv2d {
            geom,
            params: Dense::F32 {
                weight: &[],
                bias: &[],
            },
        },
        input: Shape::new(1 << 20, 255, 255),
        output: Shape::new(1 << 12, 1, 1),
        in_quant: None,
        out_quant: None,
    };
    let taps = (1u64 << 20) * 255 * 255;
    for set in [KernelSet::Dsp, KernelSet::Mve] {
        for elem in [Elem::I8, Elem::F32] {
            let s = crate::kernels::conv2d::scratch_len_for(set, &layer, elem);
            // Either none, or at least one column of taps: never a wrapped small number.
            assert!(
                s == 0 || s as u64 >= taps.min(usize::MAX as u64),
                "{set:?} {elem:?}: {s}"
            );
        }
    }
}
