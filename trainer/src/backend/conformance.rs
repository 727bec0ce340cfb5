//! The conformance suite: every [`Backend`] op, the sparse-coding solvers and a whole
//! training step, run on a backend under test and on the CPU reference
//! ([`Cpu`]) from the same inputs, compared within stated per-op tolerances (llm.c's
//! discipline: every GPU kernel has its CPU twin).
//!
//! An element passes when `|got − ref| ≤ abs + rel·|ref|` (NaN only where the reference has
//! NaN). The tolerances, per op family:
//!
//! | ops | `abs` | `rel` | why |
//! |---|---|---|---|
//! | memory, dropout, pooling, `add_sign`, `fill`/`copy` | 0 | 0 | no arithmetic that can round differently: bit for bit |
//! | elementwise (`act`, `shrink`, `scale`, `axpby`, `sgd`) | 1e-6 | 1e-6 | one or two roundings; `tanh` from another libm |
//! | `adam`, the loss | 1e-6 | 1e-5 | `exp`, `ln`, `sqrt` from another math library |
//! | GEMM family (`gemm`, `linear`, `conv`), reductions (`db`, `dθ`, norms) | 1e-5 | 1e-4 | another summation order over up to a few hundred terms of unit size |
//! | LCN | 1e-5 | 1e-4 | window sums and a mean over the plane |
//! | FISTA codes, a LeNet training step | 1e-4 | 1e-3 | tens of iterations / layers of the above |
//!
//! Inputs are uniform in `[−1, 1]` from a seeded ChaCha stream (some made exactly 0 or tied,
//! so that `sign(0)`, `relu'(0)` and the first-maximum rule are exercised), and every
//! output starts filled with noise so that an op that accumulates instead of overwriting
//! fails. Shapes include odd sizes, strides and padding so that no kernel only works on
//! round numbers.
//!
//! ```
//! use kestrel_trainer::backend::{conformance, cpu::Cpu};
//! let checks = conformance::run(Cpu::new(), 1)?;
//! assert!(checks.iter().all(|c| c.passed));
//! println!("{}", conformance::table(&checks));
//! # Ok::<(), kestrel_trainer::Error>(())
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::cpu::Cpu;
use super::{Activation, Backend, ConvShape, LcnShape, LinearShape, PoolShape, Thresh};
use crate::config::{Arch, LossKind};
use crate::error::Result;
use crate::nn::Network;
use crate::sparse::{self, Problem, SolveOptions};

/// A tolerance: an element passes when `|got − ref| ≤ abs + rel·|ref|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tol {
    /// Absolute part.
    pub abs: f32,
    /// Relative part.
    pub rel: f32,
}

/// Bit for bit.
pub const EXACT: Tol = Tol { abs: 0.0, rel: 0.0 };
/// Elementwise ops: one or two roundings.
pub const ELEMENTWISE: Tol = Tol {
    abs: 1e-6,
    rel: 1e-6,
};
/// Transcendental functions from another math library (`exp`, `ln`, `sqrt`).
pub const TRANSCENDENTAL: Tol = Tol {
    abs: 1e-6,
    rel: 1e-5,
};
/// Sums in another order: GEMMs, convolutions, reductions, LCN.
pub const REDUCTION: Tol = Tol {
    abs: 1e-5,
    rel: 1e-4,
};
/// Compositions of many ops: solver codes, a network's training step.
pub const COMPOSITE: Tol = Tol {
    abs: 1e-4,
    rel: 1e-3,
};

/// One compared output of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The op (`conv2d_bwd`).
    pub op: &'static str,
    /// The case (shape and options).
    pub case: String,
    /// Which output (`dw`, `loss`).
    pub output: String,
    /// Elements compared.
    pub elements: usize,
    /// Largest `|got − ref|`.
    pub max_abs_err: f32,
    /// Largest `|got − ref| / (abs + rel·|ref|)` (≤ 1 passes; 0 for a bit-exact match).
    pub worst: f32,
    /// The tolerance applied.
    pub tol: Tol,
    /// Every element within tolerance (and the lengths equal).
    pub passed: bool,
}

/// Compares `got` with `reference` under `tol`.
pub fn compare(reference: &[f32], got: &[f32], tol: Tol) -> (f32, f32, bool) {
    if reference.len() != got.len() {
        return (f32::INFINITY, f32::INFINITY, false);
    }
    let (mut max_abs, mut worst, mut passed) = (0.0f32, 0.0f32, true);
    for (&r, &g) in reference.iter().zip(got) {
        if r.is_nan() || g.is_nan() {
            if !(r.is_nan() && g.is_nan()) {
                return (f32::NAN, f32::INFINITY, false);
            }
            continue;
        }
        let err = (g - r).abs();
        let allowed = tol.abs + tol.rel * r.abs();
        max_abs = max_abs.max(err);
        if err > allowed || !err.is_finite() && r != g {
            passed = false;
        }
        let ratio = if err == 0.0 { 0.0 } else { err / allowed };
        worst = worst.max(ratio);
    }
    (max_abs, worst, passed)
}

/// The suite's state: the backend under test, the reference, the inputs' random stream
/// and the checks so far.
struct Suite<B: Backend> {
    be: B,
    cpu: Cpu,
    rng: ChaCha8Rng,
    checks: Vec<Check>,
}

impl<B: Backend> Suite<B> {
    /// `len` values uniform in `[−1, 1]`.
    fn uniform(&mut self, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| self.rng.random_range(-1.0..=1.0))
            .collect()
    }
    /// Uniform values with every `every`-th set to exactly 0.
    fn with_zeros(&mut self, len: usize, every: usize) -> Vec<f32> {
        let mut v = self.uniform(len);
        v.iter_mut().step_by(every).for_each(|x| *x = 0.0);
        v
    }
    /// Values on a coarse grid (multiples of 1/4), so that pooling windows hold ties.
    fn tied(&mut self, len: usize) -> Vec<f32> {
        (0..len)
            .map(|_| self.rng.random_range(-4i32..=4) as f32 / 4.0)
            .collect()
    }

    fn record(
        &mut self,
        op: &'static str,
        case: &str,
        tol: Tol,
        outs: &[(&str, Vec<f32>, Vec<f32>)],
    ) {
        record(&mut self.checks, op, case, tol, outs);
    }
}

/// Appends one [`Check`] per output (reference, got) that has elements.
fn record(
    checks: &mut Vec<Check>,
    op: &'static str,
    case: &str,
    tol: Tol,
    outs: &[(&str, Vec<f32>, Vec<f32>)],
) {
    for (name, reference, got) in outs {
        if reference.is_empty() && got.is_empty() {
            continue;
        }
        let (max_abs_err, worst, passed) = compare(reference, got, tol);
        checks.push(Check {
            op,
            case: case.to_string(),
            output: name.to_string(),
            elements: reference.len(),
            max_abs_err,
            worst,
            tol,
            passed,
        });
    }
}

/// Runs `$body` on the reference and on the backend under test: the named host vectors
/// `ins` are uploaded as inputs, `outs` (host vectors holding their initial contents) as
/// outputs, and after the body every output is downloaded and compared; the body's own
/// value (a `Vec<f32>` of scalars, e.g. a loss) is compared too, as output `scalars`.
macro_rules! check {
    ($s:ident, $op:expr, $case:expr, $tol:expr,
     in [$($i:ident),*], out [$($o:ident),*], |$b:ident| $body:block) => {{
        let reference = {
            let $b = &$s.cpu;
            $(let $i = $b.upload(&$i)?;)*
            $(#[allow(unused_mut)] let mut $o = $b.upload(&$o)?;)*
            let scalars: Vec<f32> = $body;
            vec![$($b.download(&$o)?,)* scalars]
        };
        let got = {
            let $b = &$s.be;
            $(let $i = $b.upload(&$i)?;)*
            $(#[allow(unused_mut)] let mut $o = $b.upload(&$o)?;)*
            let scalars: Vec<f32> = $body;
            vec![$($b.download(&$o)?,)* scalars]
        };
        let names = [$(stringify!($o),)* "scalars"];
        let outs: Vec<_> = names
            .iter()
            .zip(reference)
            .zip(got)
            .map(|((n, r), g)| (*n, r, g))
            .collect();
        $s.record($op, &$case, $tol, &outs);
    }};
}

fn conv_shape(
    in_c: usize,
    in_h: usize,
    in_w: usize,
    out_c: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> ConvShape {
    ConvShape {
        in_c,
        in_h,
        in_w,
        out_c,
        kernel: k,
        stride,
        pad,
        out_h: (in_h + 2 * pad - k) / stride + 1,
        out_w: (in_w + 2 * pad - k) / stride + 1,
    }
}

fn pool_shape(c: usize, in_h: usize, in_w: usize, k: usize, stride: usize) -> PoolShape {
    PoolShape {
        c,
        in_h,
        in_w,
        kernel: k,
        stride,
        out_h: (in_h - k) / stride + 1,
        out_w: (in_w - k) / stride + 1,
    }
}

/// Runs the whole suite on `be` (inputs from `seed`) and returns every check; fails only
/// when an op itself fails (a device error), not when a result is out of tolerance. The
/// backend is consumed by the last case, a network built on it.
pub fn run<B: Backend>(be: B, seed: u64) -> Result<Vec<Check>> {
    let mut s = Suite {
        be,
        cpu: Cpu::new(),
        rng: ChaCha8Rng::seed_from_u64(seed),
        checks: Vec::new(),
    };
    memory(&mut s)?;
    convolution(&mut s)?;
    linear(&mut s)?;
    elementwise(&mut s)?;
    pooling(&mut s)?;
    lcn(&mut s)?;
    loss_and_optimizers(&mut s)?;
    linear_algebra(&mut s)?;
    solvers(&mut s)?;
    network_step(s)
}

fn memory<B: Backend>(s: &mut Suite<B>) -> Result<()> {
    let (x, y) = (s.uniform(1001), s.uniform(1001));
    check!(s, "upload/download", "1001", EXACT, in [x], out [y], |b| {
        let mut z = b.zeros(1001)?;
        b.copy(&x, &mut z)?;
        let mut back = b.download(&z)?;
        b.fill(&mut y, 0.5)?;
        back.push(b.len(&z) as f32);
        back
    });
    let (x, y) = (s.uniform(777), s.uniform(777));
    check!(s, "upload_into", "777", EXACT, in [x], out [y], |b| {
        let host = b.download(&x)?;
        b.upload_into(&mut y, &host)?;
        vec![]
    });
    Ok(())
}

fn convolution<B: Backend>(s: &mut Suite<B>) -> Result<()> {
    for (shape, n) in [
        (conv_shape(1, 28, 28, 12, 5, 1, 2), 3),
        (conv_shape(3, 9, 7, 5, 3, 2, 1), 2),
        (conv_shape(12, 14, 14, 24, 5, 1, 0), 2),
        (conv_shape(2, 6, 11, 3, 1, 1, 0), 3),
    ] {
        let case = format!(
            "n{n} {}x{}x{} -> {} k{} s{} p{}",
            shape.in_c, shape.in_h, shape.in_w, shape.out_c, shape.kernel, shape.stride, shape.pad
        );
        let (x, w, bias) = (
            s.uniform(n * shape.in_len()),
            s.uniform(shape.weight_len()),
            s.uniform(shape.out_c),
        );
        let y = s.uniform(n * shape.out_len());
        check!(s, "conv2d_fwd", case, REDUCTION, in [x, w, bias], out [y], |b| {
            b.conv2d_fwd(&shape, n, &x, &w, &bias, &mut y)?;
            vec![]
        });
        let dy = s.uniform(n * shape.out_len());
        let (dx, dw, db) = (
            s.uniform(n * shape.in_len()),
            s.uniform(shape.weight_len()),
            s.uniform(shape.out_c),
        );
        check!(s, "conv2d_bwd", case, REDUCTION, in [x, w, dy], out [dx, dw, db], |b| {
            b.conv2d_bwd(&shape, n, &x, &w, &dy, Some(&mut dx), &mut dw, &mut db)?;
            vec![]
        });
        let (dw, db) = (s.uniform(shape.weight_len()), s.uniform(shape.out_c));
        check!(s, "conv2d_bwd (no dx)", case, REDUCTION, in [x, w, dy], out [dw, db], |b| {
            b.conv2d_bwd(&shape, n, &x, &w, &dy, None, &mut dw, &mut db)?;
            vec![]
        });
        let dx = s.uniform(n * shape.in_len());
        check!(s, "conv2d_bwd_data", case, REDUCTION, in [w, dy], out [dx], |b| {
            b.conv2d_bwd_data(&shape, n, &w, &dy, &mut dx)?;
            vec![]
        });
    }
    Ok(())
}

fn linear<B: Backend>(s: &mut Suite<B>) -> Result<()> {
    for (shape, n) in [
        (
            LinearShape {
                inputs: 37,
                outputs: 11,
            },
            5,
        ),
        (
            LinearShape {
                inputs: 600,
                outputs: 10,
            },
            4,
        ),
        (
            LinearShape {
                inputs: 1,
                outputs: 3,
            },
            1,
        ),
    ] {
        let case = format!("n{n} {} -> {}", shape.inputs, shape.outputs);
        let (x, w, bias) = (
            s.uniform(n * shape.inputs),
            s.uniform(shape.inputs * shape.outputs),
            s.uniform(shape.outputs),
        );
        let y = s.uniform(n * shape.outputs);
        check!(s, "linear_fwd", case, REDUCTION, in [x, w, bias], out [y], |b| {
            b.linear_fwd(&shape, n, &x, &w, &bias, &mut y)?;
            vec![]
        });
        let dy = s.uniform(n * shape.outputs);
        let (dx, dw, db) = (
            s.uniform(n * shape.inputs),
            s.uniform(shape.inputs * shape.outputs),
            s.uniform(shape.outputs),
        );
        check!(s, "linear_bwd", case, REDUCTION, in [x, w, dy], out [dx, dw, db], |b| {
            b.linear_bwd(&shape, n, &x, &w, &dy, Some(&mut dx), &mut dw, &mut db)?;
            vec![]
        });
    }
    Ok(())
}

fn elementwise<B: Backend>(s: &mut Suite<B>) -> Result<()> {
    const LEN: usize = 1031;
    for f in [Activation::Relu, Activation::Tanh, Activation::Abs] {
        let case = format!("{f:?} {LEN}");
        let x = s.with_zeros(LEN, 7);
        let (y, dy, dx) = (s.uniform(LEN), s.uniform(LEN), s.uniform(LEN));
        check!(s, "act_fwd/act_bwd", case, ELEMENTWISE, in [x, dy], out [y, dx], |b| {
            b.act_fwd(f, &x, &mut y)?;
            b.act_bwd(f, &x, &y, &dy, &mut dx)?;
            vec![]
        });
    }
    for (p, seed) in [(0.5f32, 12_345u64), (0.1, u64::MAX - 3), (0.0, 7)] {
        let case = format!("p {p} seed {seed} {LEN}");
        let (x, dy, y, dx) = (
            s.uniform(LEN),
            s.uniform(LEN),
            s.uniform(LEN),
            s.uniform(LEN),
        );
        check!(s, "dropout_fwd/dropout_bwd", case, EXACT, in [x, dy], out [y, dx], |b| {
            b.dropout_fwd(p, seed, &x, &mut y)?;
            b.dropout_bwd(p, seed, &dy, &mut dx)?;
            vec![]
        });
    }
    let (x, y) = (s.uniform(LEN), s.uniform(LEN));
    check!(s, "axpby", "alpha 0.7 beta -1.3", ELEMENTWISE, in [x], out [y], |b| {
        b.axpby(0.7, &x, -1.3, &mut y)?;
        vec![]
    });
    let mut y = s.uniform(LEN);
    y[3] = f32::NAN; // β = 0: `y` is not read, so its NaN must not survive
    check!(s, "axpby", "alpha 2 beta 0 (y not read)", ELEMENTWISE, in [x], out [y], |b| {
        b.axpby(2.0, &x, 0.0, &mut y)?;
        vec![]
    });
    let (x, y) = (s.with_zeros(LEN, 5), s.uniform(LEN));
    check!(s, "add_sign", "alpha 0.25", EXACT, in [x], out [y], |b| {
        b.add_sign(0.25, &x, &mut y)?;
        vec![]
    });
    // Soft threshold: a scalar θ, and per channel over atoms (inner 1) and over maps.
    let (channels, inner, n) = (5usize, 13usize, 3usize);
    let len = n * channels * inner;
    let theta: Vec<f32> = s.uniform(channels).iter().map(|v| v.abs() * 0.5).collect();
    let (x, dy, y, dx, dtheta) = (
        s.with_zeros(len, 11),
        s.uniform(len),
        s.uniform(len),
        s.uniform(len),
        s.uniform(channels),
    );
    check!(s, "shrink_fwd/shrink_bwd", "scalar 0.3", ELEMENTWISE, in [x, dy], out [y, dx], |b| {
        b.shrink_fwd(Thresh::Scalar(0.3), &x, &mut y)?;
        b.shrink_bwd(Thresh::Scalar(0.3), &x, &dy, &mut dx, None)?;
        vec![]
    });
    for inner in [1, inner] {
        let case = format!(
            "per channel {channels}, inner {inner}, n {}",
            len / (channels * inner)
        );
        check!(s, "shrink_fwd/shrink_bwd", case, REDUCTION, in [x, dy, theta], out [y, dx, dtheta], |b| {
            let t = Thresh::PerChannel { theta: &theta, inner };
            b.shrink_fwd(t, &x, &mut y)?;
            b.shrink_bwd(t, &x, &dy, &mut dx, Some(&mut dtheta))?;
            vec![]
        });
        let g = s.uniform(channels);
        let (y, dx, dg) = (s.uniform(len), s.uniform(len), s.uniform(channels));
        check!(s, "scale_fwd/scale_bwd", case, REDUCTION, in [x, dy, g], out [y, dx, dg], |b| {
            b.scale_fwd(inner, &g, &x, &mut y)?;
            b.scale_bwd(inner, &g, &x, &dy, &mut dx, Some(&mut dg))?;
            vec![]
        });
        let dx = s.uniform(len);
        check!(s, "scale_bwd (no dg)", case, ELEMENTWISE, in [x, dy, g], out [dx], |b| {
            b.scale_bwd(inner, &g, &x, &dy, &mut dx, None)?;
            vec![]
        });
    }
    Ok(())
}

fn pooling<B: Backend>(s: &mut Suite<B>) -> Result<()> {
    for (shape, n) in [
        (pool_shape(3, 8, 8, 2, 2), 2),
        (pool_shape(2, 7, 9, 3, 2), 3),
        (pool_shape(4, 5, 5, 2, 1), 1),
    ] {
        let case = format!(
            "n{n} {}x{}x{} k{} s{}",
            shape.c, shape.in_h, shape.in_w, shape.kernel, shape.stride
        );
        let x = s.tied(n * shape.in_len());
        let dy = s.uniform(n * shape.out_len());
        let (y, dx) = (
            s.uniform(n * shape.out_len()),
            s.uniform(n * shape.in_len()),
        );
        check!(s, "maxpool_fwd/maxpool_bwd", case, EXACT, in [x, dy], out [y, dx], |b| {
            b.maxpool_fwd(&shape, n, &x, &mut y)?;
            b.maxpool_bwd(&shape, n, &x, &dy, &mut dx)?;
            vec![]
        });
        let (y, dx) = (
            s.uniform(n * shape.out_len()),
            s.uniform(n * shape.in_len()),
        );
        check!(s, "avgpool_fwd/avgpool_bwd", case, REDUCTION, in [x, dy], out [y, dx], |b| {
            b.avgpool_fwd(&shape, n, &x, &mut y)?;
            b.avgpool_bwd(&shape, n, &dy, &mut dx)?;
            vec![]
        });
    }
    Ok(())
}

fn lcn<B: Backend>(s: &mut Suite<B>) -> Result<()> {
    for (shape, n, sigma) in [
        (
            LcnShape {
                c: 4,
                h: 11,
                w: 13,
                size: 5,
                eps: 1e-4,
            },
            2,
            1.0f32,
        ),
        (
            LcnShape {
                c: 1,
                h: 28,
                w: 28,
                size: 9,
                eps: 1e-4,
            },
            1,
            2.0,
        ),
        (
            LcnShape {
                c: 3,
                h: 4,
                w: 3,
                size: 7,
                eps: 0.5,
            },
            2,
            1.5,
        ),
    ] {
        let case = format!(
            "n{n} {}x{}x{} window {} eps {}",
            shape.c, shape.h, shape.w, shape.size, shape.eps
        );
        let window = crate::nn::lcn_window(shape.size, sigma);
        let x = s.uniform(n * shape.len());
        let dy = s.uniform(n * shape.len());
        let (y, dx) = (s.uniform(n * shape.len()), s.uniform(n * shape.len()));
        check!(s, "lcn_fwd/lcn_bwd", case, REDUCTION, in [window, x, dy], out [y, dx], |b| {
            b.lcn_fwd(&shape, n, &window, &x, &mut y)?;
            b.lcn_bwd(&shape, n, &window, &x, &dy, &mut dx)?;
            vec![]
        });
    }
    Ok(())
}

fn loss_and_optimizers<B: Backend>(s: &mut Suite<B>) -> Result<()> {
    for (kind, classes, n) in [
        (LossKind::Nll, 10, 7),
        (LossKind::Hinge, 10, 7),
        (LossKind::Nll, 3, 1),
    ] {
        let case = format!("{kind:?} {classes} classes, n {n}");
        let logits: Vec<f32> = s.uniform(n * classes).iter().map(|v| 4.0 * v).collect();
        let labels: Vec<u8> = (0..n)
            .map(|_| s.rng.random_range(0..classes as u8))
            .collect();
        let dlogits = s.uniform(n * classes);
        check!(s, "loss", case, TRANSCENDENTAL, in [logits], out [dlogits], |b| {
            let out = b.loss(kind, classes, &logits, &labels, &mut dlogits)?;
            vec![out.loss, out.correct as f32]
        });
    }
    const LEN: usize = 1003;
    let (g, w, v) = (s.uniform(LEN), s.uniform(LEN), s.uniform(LEN));
    check!(s, "sgd_update", "lr 0.05 momentum 0.9 decay 5e-4", ELEMENTWISE, in [g], out [w, v], |b| {
        b.sgd_update(&mut w, &mut v, &g, 0.05, 0.9, 5e-4)?;
        vec![]
    });
    let m = s.uniform(LEN);
    let v: Vec<f32> = s.uniform(LEN).iter().map(|x| x.abs()).collect();
    for t in [1, 10] {
        check!(s, "adam_update", format!("step {t}"), TRANSCENDENTAL, in [g], out [w, m, v], |b| {
            b.adam_update(&mut w, &mut m, &mut v, &g, 1e-3, (0.9, 0.999), 1e-8, t)?;
            vec![]
        });
    }
    Ok(())
}

fn linear_algebra<B: Backend>(s: &mut Suite<B>) -> Result<()> {
    for (m, n, k) in [(5, 7, 9), (64, 81, 100), (1, 1, 1), (33, 2, 257)] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for (alpha, beta) in [(1.0f32, 0.0f32), (-0.5, 0.75)] {
                let case = format!("{m}x{n}x{k} ta {ta} tb {tb} alpha {alpha} beta {beta}");
                let (a, bm) = (s.uniform(m * k), s.uniform(k * n));
                let mut c = s.uniform(m * n);
                if beta == 0.0 {
                    c[0] = f32::NAN; // not read when β = 0
                }
                check!(s, "gemm", case, REDUCTION, in [a, bm], out [c], |b| {
                    b.gemm(ta, tb, m, n, k, alpha, &a, &bm, beta, &mut c)?;
                    vec![]
                });
            }
        }
    }
    for (rows, cols) in [(7, 81), (64, 1), (1, 300)] {
        let case = format!("{rows}x{cols}");
        let mut x = s.uniform(rows * cols);
        // A zero column: normalize_columns leaves it as it is.
        (0..rows).for_each(|r| x[r * cols] = 0.0);
        let (sq, abs) = (s.uniform(rows), s.uniform(rows));
        let d = x.clone();
        check!(s, "row_sq_norms/row_abs_sums/normalize_columns", case, REDUCTION, in [x], out [sq, abs, d], |b| {
            b.row_sq_norms(rows, cols, &x, &mut sq)?;
            b.row_abs_sums(rows, cols, &x, &mut abs)?;
            b.normalize_columns(rows, cols, &mut d)?;
            vec![]
        });
    }
    Ok(())
}

/// FISTA and ISTA on a random unit-norm dictionary: the codes after a fixed number of
/// iterations (the solvers are written once, on the ops above).
fn solvers<B: Backend>(s: &mut Suite<B>) -> Result<()> {
    let (k, atoms, batch) = (81, 64, 5);
    let mut d = s.uniform(k * atoms);
    for j in 0..atoms {
        let norm = (0..k).map(|r| d[r * atoms + j].powi(2)).sum::<f32>().sqrt();
        (0..k).for_each(|r| d[r * atoms + j] /= norm);
    }
    let x = s.uniform(batch * k);
    let o = SolveOptions {
        max_iter: 50,
        tol: 0.0,
    };
    for (name, fista) in [("fista", true), ("ista", false)] {
        let h = vec![0.0; batch * atoms];
        let case = format!("{k}x{atoms} dictionary, lambda 0.1, batch {batch}, 50 iterations");
        check!(s, name, case, COMPOSITE, in [x], out [h], |b| {
            let p = Problem::new(b, &d, k, atoms, 0.1)?;
            let stats = if fista {
                sparse::fista(b, &p, &x, &mut h, batch, &o)?
            } else {
                sparse::ista(b, &p, &x, &mut h, batch, &o)?
            };
            vec![p.lipschitz, stats.iterations as f32]
        });
    }
    Ok(())
}

/// Two LeNet training steps with dropout (forward, loss, backward, SGD with momentum and
/// decay) from the same initial weights: the losses, the gradients and the parameters.
fn network_step<B: Backend>(s: Suite<B>) -> Result<Vec<Check>> {
    let Suite {
        be,
        cpu,
        mut rng,
        mut checks,
    } = s;
    let mut arch = Arch::load("lenet")?;
    arch.layers
        .insert(8, crate::config::LayerSpec::Dropout { p: 0.3 });
    let n = 16;
    let batches: Vec<(Vec<f32>, Vec<u8>)> = (0..2)
        .map(|_| {
            let x = (0..n * crate::nn::numel(arch.input))
                .map(|_| rng.random_range(-1.0f32..=1.0))
                .collect();
            let labels = (0..n).map(|_| rng.random_range(0..10u8)).collect();
            (x, labels)
        })
        .collect();
    fn steps<X: Backend>(
        net: &mut Network<X>,
        batches: &[(Vec<f32>, Vec<u8>)],
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let mut losses = Vec::new();
        for (step, (x, labels)) in batches.iter().enumerate() {
            let st = net.train_step(x, labels, 99 + step as u64)?;
            losses.extend([st.loss, st.correct as f32]);
            net.sgd_update(0.05, 0.9, 5e-4)?;
        }
        let flat = |ps: Vec<crate::nn::LayerParams>| -> Vec<f32> {
            ps.into_iter()
                .flat_map(|p| p.tensors.into_iter().flat_map(|t| t.data))
                .collect()
        };
        Ok((losses, flat(net.gradients()?), flat(net.params()?)))
    }
    let reference = steps(&mut Network::new(cpu, &arch, 3)?, &batches)?;
    let got = steps(&mut Network::new(be, &arch, 3)?, &batches)?;
    record(
        &mut checks,
        "network step",
        "lenet + dropout 0.3, batch 16, 2 SGD steps",
        COMPOSITE,
        &[
            ("loss, correct", reference.0, got.0),
            ("gradients", reference.1, got.1),
            ("parameters", reference.2, got.2),
        ],
    );
    Ok(checks)
}

/// The checks as a plain-text table, one line per check, failures marked `FAIL`.
pub fn table(checks: &[Check]) -> String {
    let mut out = format!(
        "{:<44} {:<46} {:<10} {:>8} {:>10} {:>7} {:>15}\n",
        "op", "case", "output", "elements", "max |err|", "worst", "tolerance"
    );
    for c in checks {
        out += &format!(
            "{:<44} {:<46} {:<10} {:>8} {:>10.2e} {:>7.3} {:>15} {}\n",
            c.op,
            c.case,
            c.output,
            c.elements,
            c.max_abs_err,
            c.worst,
            format!("{:.0e}+{:.0e}|r|", c.tol.abs, c.tol.rel),
            if c.passed { "ok" } else { "FAIL" }
        );
    }
    let failed = checks.iter().filter(|c| !c.passed).count();
    out += &format!("{} checks, {failed} failed\n", checks.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_pass_and_fail_where_they_should() {
        assert_eq!(compare(&[1.0, -2.0], &[1.0, -2.0], EXACT), (0.0, 0.0, true));
        assert!(!compare(&[1.0], &[1.0 + f32::EPSILON], EXACT).2);
        assert!(compare(&[100.0], &[100.0 + 0.005], REDUCTION).2); // 1e-5 + 1e-4·100
        assert!(!compare(&[100.0], &[100.0 + 0.02], REDUCTION).2);
        assert!(!compare(&[1.0], &[f32::NAN], COMPOSITE).2);
        assert!(compare(&[f32::NAN], &[f32::NAN], EXACT).2);
        assert!(!compare(&[1.0, 2.0], &[1.0], COMPOSITE).2, "lengths");
        assert!(!compare(&[f32::INFINITY], &[f32::NEG_INFINITY], COMPOSITE).2);
    }

    /// The CPU backend against itself: every case runs, and matches bit for bit (same code,
    /// same inputs), so a non-zero error here is a bug in the suite (inputs drawn
    /// differently for the two sides, an output not downloaded).
    #[test]
    fn the_cpu_backend_conforms_bit_for_bit() {
        let checks = run(Cpu::new(), 5).unwrap();
        println!("{}", table(&checks));
        assert!(checks.len() > 100, "{} checks", checks.len());
        for c in &checks {
            assert!(c.passed && c.max_abs_err == 0.0, "{c:?}");
        }
        for op in [
            "conv2d_bwd",
            "lcn_fwd/lcn_bwd",
            "gemm",
            "fista",
            "network step",
            "loss",
        ] {
            assert!(checks.iter().any(|c| c.op == op), "{op} not checked");
        }
    }
}
