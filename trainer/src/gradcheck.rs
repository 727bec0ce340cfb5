//! Finite-difference checks of every layer's gradients and of the losses.
//!
//! Each layer is checked in isolation at its real shapes with a batch of [`BATCH`]: the
//! scalar objective is `f = Σ r ⊙ layer(x)` for a fixed random `r`, so the analytic gradient
//! is the layer's backward pass with `dy = r`. Up to [`SAMPLES`] coordinates of each of
//! `x`, the weight and the bias are perturbed by `±h`, `h = 10⁻²·max(1, |v|)` (the backend is
//! `f32`), and `f(v + h) − f(v − h)` is accumulated in f64 over the outputs' differences.
//!
//! Kinks (a ReLU or |x| input, a max-pool tie, an LCN max or a hinge margin within `h` of
//! switching) are found without knowing the op: the one-sided differences `d₊` and `d₋`
//! disagree there. For a piecewise-linear function the central difference is off by exactly
//! `|d₊ − d₋| / 2`, so a coordinate is compared when that bound is within half the tolerance
//! (the other half is left to f32 rounding), or else when halving `h` behaves as a smooth
//! function must (`d₊ − d₋` halves, the central difference stays put); the rest are counted
//! as `skipped`. Relative error is `|a − n| / max(|a|, |n|, 10⁻³, 0.1·rms(a))` (the last term
//! keeps f32 rounding noise on tiny derivatives from failing the check); a tensor passes when
//! its worst error is at most [`TOLERANCE`] and at least half of its sampled coordinates
//! were compared.

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::backend::cpu::Cpu;
use crate::backend::Backend;
use crate::config::{Arch, LayerSpec, LossKind};
use crate::error::Result;
use crate::nn::{infer, normal, numel, weight_std, Init, Layer, LayerPlan, Mode, Op};
use crate::psd::encoder::{param_specs, Encoder, Trace};
use crate::psd::EncoderKind;

/// Samples per check.
pub const BATCH: usize = 2;
/// Coordinates sampled per tensor.
pub const SAMPLES: usize = 40;
/// Largest relative error that passes.
pub const TOLERANCE: f64 = 1e-2;
/// Relative step (times `max(1, |v|)`).
const STEP: f32 = 1e-2;
/// Absolute floor of the relative error's denominator.
const FLOOR: f64 = 1e-3;
/// Floor relative to the tensor's RMS gradient: f32 rounding of the outputs puts noise of
/// about 10⁻⁴ (relative to the typical gradient) on every difference quotient, which would
/// swamp coordinates whose true derivative is tiny.
const FLOOR_REL: f64 = 0.1;

/// One checked tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct GradReport {
    /// Arch layer index (the number of layers for the loss).
    pub layer: usize,
    /// Layer type (`conv2d`, …) or loss (`nll`, `hinge`).
    pub op: String,
    /// Which gradient: `input`, a parameter's name (`weight`, `bias`, …) or `logits`.
    pub wrt: &'static str,
    /// Worst relative error over the compared coordinates.
    pub worst_rel_err: f64,
    /// Coordinates compared.
    pub checked: usize,
    /// Coordinates skipped as too close to a kink.
    pub skipped: usize,
    /// `worst_rel_err ≤ TOLERANCE` and at least half the sampled coordinates compared.
    pub pass: bool,
}

/// Changes analytic gradients before comparison (tests use it to prove a check can fail).
pub type Tamper<'a> = Option<&'a dyn Fn(&mut [f32])>;

/// `Σ r ⊙ (a − b)` in f64.
fn directional(r: &[f32], a: &[f32], b: &[f32]) -> f64 {
    r.iter()
        .zip(a.iter().zip(b))
        .map(|(&r, (&a, &b))| r as f64 * (a as f64 - b as f64))
        .sum()
}

/// Compares `analytic` with central differences of `v ↦ Σ r ⊙ eval(v)` at sampled coordinates
/// of `v`; `y0 = eval(v)`. Returns `(worst, checked, skipped)`.
pub fn compare(
    v: &mut [f32],
    analytic: &[f32],
    r: &[f32],
    y0: &[f32],
    rng: &mut ChaCha8Rng,
    eval: &mut dyn FnMut(&[f32]) -> Result<Vec<f32>>,
) -> Result<(f64, usize, usize)> {
    let (mut worst, mut checked, mut skipped) = (0.0f64, 0, 0);
    let rms = (analytic.iter().map(|&g| g as f64 * g as f64).sum::<f64>()
        / analytic.len().max(1) as f64)
        .sqrt();
    let floor = FLOOR.max(FLOOR_REL * rms);
    let half_tol = TOLERANCE / 2.0;
    for i in sample(rng, v.len(), v.len().min(SAMPLES)) {
        let orig = v[i];
        let a = analytic[i] as f64;
        let scale = |n: f64| n.abs().max(a.abs()).max(floor);
        // (central difference, d₊ − d₋) with step `step·max(1, |v|)`.
        let mut probe = |step: f32| -> Result<(f64, f64)> {
            let h = step * orig.abs().max(1.0);
            v[i] = orig + h;
            let hp = (v[i] - orig) as f64; // the step actually taken, after rounding
            let yp = eval(v)?;
            v[i] = orig - h;
            let hm = (orig - v[i]) as f64;
            let ym = eval(v)?;
            v[i] = orig;
            let (dp, dm) = (directional(r, &yp, y0) / hp, directional(r, y0, &ym) / hm);
            Ok((directional(r, &yp, &ym) / (hp + hm), dp - dm))
        };
        let (c1, d1) = probe(STEP)?;
        let verdict = if d1.abs() / 2.0 <= half_tol * scale(c1) {
            Some(c1) // a kink, if any, costs at most half the tolerance
        } else {
            // Smooth but curved: halving the step halves d₊ − d₋ and barely moves the central
            // difference. A kink does neither (except in combinations whose error is bounded
            // by these same two tests).
            let (c2, d2) = probe(STEP / 2.0)?;
            let t = half_tol * scale(c2);
            ((c1 - c2).abs() <= t && (d2 - d1 / 2.0).abs() <= t).then_some(c2)
        }
        .map(|n| (a - n).abs() / scale(n));
        match verdict {
            Some(err) => {
                worst = worst.max(err);
                checked += 1;
            }
            None => skipped += 1,
        }
    }
    eval(v)?; // leave the backend's copy unperturbed for the next tensor
    Ok((worst, checked, skipped))
}

/// The verdict on one tensor from [`compare`]'s `(worst, checked, skipped)`.
pub fn report(
    layer: usize,
    op: &str,
    wrt: &'static str,
    (worst, checked, skipped): (f64, usize, usize),
) -> GradReport {
    let pass = worst <= TOLERANCE && checked * 2 >= checked + skipped && checked > 0;
    GradReport {
        layer,
        op: op.to_string(),
        wrt,
        worst_rel_err: worst,
        checked,
        skipped,
        pass,
    }
}

/// Checks layer `index` (`plan`) in isolation: d(input) and d(each parameter tensor).
/// Parameters that start constant (biases, gains) are first set to random values, so that
/// their gradient is checked away from a special point.
pub fn check_layer<B: Backend>(
    be: &B,
    index: usize,
    plan: &LayerPlan,
    std: f32,
    seed: u64,
    tamper: Tamper<'_>,
) -> Result<Vec<GradReport>> {
    let LayerPlan { op, input, output } = *plan;
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut layer = Layer::new(be, op, input, output, std, &mut rng)?;
    let n = BATCH;
    let mut gauss = |len: usize, scale: f32| -> Vec<f32> {
        (0..len).map(|_| scale * normal(&mut rng)).collect()
    };
    let mut x = gauss(n * numel(input), 1.0);
    let r = gauss(n * numel(output), 1.0);
    let mut hosts = Vec::new();
    for p in &mut layer.params {
        let host = match p.spec.init {
            Init::Normal(_) => be.download(&p.value)?,
            Init::Const(c) => gauss(p.spec.len, 0.1).iter().map(|v| c + v).collect(),
        };
        be.upload_into(&mut p.value, &host)?;
        hosts.push(host);
    }
    let mode = Mode::Train { seed: 0x5EED };
    let mut xt = be.upload(&x)?;
    let mut y = be.zeros(n * numel(output))?;
    layer.forward(be, n, &xt, &mut y, mode)?;
    let y0 = be.download(&y)?;
    let mut dx = be.zeros(n * numel(input))?;
    layer.backward(be, n, &xt, &y, &be.upload(&r)?, Some(&mut dx), mode)?;
    let mut grads = vec![be.download(&dx)?];
    for p in &layer.params {
        grads.push(be.download(&p.grad)?);
    }
    if let Some(t) = tamper {
        grads.iter_mut().for_each(|g| t(g));
    }
    let name = op.name();
    let mut out = Vec::new();
    let mut crng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(index as u64));
    let res = compare(&mut x, &grads[0], &r, &y0, &mut crng, &mut |v| {
        be.upload_into(&mut xt, v)?;
        layer.forward(be, n, &xt, &mut y, mode)?;
        be.download(&y)
    })?;
    out.push(report(index, name, "input", res));
    be.upload_into(&mut xt, &x)?;
    for (k, host) in hosts.iter_mut().enumerate() {
        let wrt = layer.params[k].name();
        let res = compare(host, &grads[k + 1], &r, &y0, &mut crng, &mut |v| {
            be.upload_into(&mut layer.params[k].value, v)?;
            layer.forward(be, n, &xt, &mut y, mode)?;
            be.download(&y)
        })?;
        out.push(report(index, name, wrt, res));
    }
    Ok(out)
}

/// Checks `kind`'s gradient w.r.t. the logits (`classes` per sample); `layer` labels the row.
pub fn check_loss<B: Backend>(
    be: &B,
    layer: usize,
    kind: LossKind,
    classes: usize,
    seed: u64,
    tamper: Tamper<'_>,
) -> Result<GradReport> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1055);
    // Unit-variance logits keep every class's gradient well above the f32 noise of the loss.
    let mut z: Vec<f32> = (0..BATCH * classes).map(|_| normal(&mut rng)).collect();
    let labels: Vec<u8> = (0..BATCH)
        .map(|_| rng.random_range(0..classes.min(256)) as u8)
        .collect();
    let mut g = be.zeros(z.len())?;
    let mut eval = |v: &[f32]| {
        Ok(vec![
            be.loss(kind, classes, &be.upload(v)?, &labels, &mut g)?
                .loss,
        ])
    };
    let y0 = eval(&z)?;
    let mut analytic = be.zeros(z.len())?;
    be.loss(kind, classes, &be.upload(&z)?, &labels, &mut analytic)?;
    let mut analytic = be.download(&analytic)?;
    if let Some(t) = tamper {
        t(&mut analytic);
    }
    let name = match kind {
        LossKind::Nll => "nll",
        LossKind::Hinge => "hinge",
    };
    Ok(report(
        layer,
        name,
        "logits",
        compare(&mut z, &analytic, &[1.0], &y0, &mut rng, &mut eval)?,
    ))
}

/// Checks every layer of `arch` at its real shapes, and its loss, on backend `be`.
pub fn gradcheck_arch_on<B: Backend>(be: &B, arch: &Arch, seed: u64) -> Result<Vec<GradReport>> {
    let plan = infer(arch)?;
    let ops: Vec<Op> = plan.iter().map(|p| p.op).collect();
    let mut out = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        let std = if p.op.fan_in().is_some() {
            weight_std(&ops, i)
        } else {
            0.0
        };
        out.extend(check_layer(be, i, p, std, seed, None)?);
    }
    let classes = numel(plan.last().map_or([1, 1, 1], |p| p.output));
    out.push(check_loss(be, plan.len(), arch.loss, classes, seed, None)?);
    Ok(out)
}

/// [`gradcheck_arch_on`] the CPU backend.
pub fn gradcheck_arch(arch: &Arch, seed: u64) -> Result<Vec<GradReport>> {
    gradcheck_arch_on(&Cpu::new(), arch, seed)
}

/// A small architecture with every layer type: a strided, padded convolution, overlapping
/// max and average pools, LCN with the floor both losing and winning, dropout and flatten.
pub fn all_layers_arch() -> Arch {
    let mut arch = Arch::load("lenet").expect("built-in architecture");
    arch.name = "all-layers".into();
    arch.input = [3, 11, 11];
    arch.layers = vec![
        LayerSpec::Conv2d {
            out: 4,
            kernel: 3,
            stride: 2,
            pad: 1,
        }, // [4, 6, 6]
        LayerSpec::Relu,
        LayerSpec::Lcn {
            size: 3,
            sigma: 1.0,
            eps: 1e-4,
        },
        LayerSpec::Lcn {
            size: 5,
            sigma: 2.0,
            eps: 1.0,
        },
        LayerSpec::MaxPool2d {
            kernel: 3,
            stride: Some(1),
        }, // [4, 4, 4]
        LayerSpec::Tanh,
        LayerSpec::Conv2d {
            out: 5,
            kernel: 2,
            stride: 1,
            pad: 0,
        }, // [5, 3, 3]
        LayerSpec::Abs,
        LayerSpec::AvgPool2d {
            kernel: 2,
            stride: Some(1),
        }, // [5, 2, 2]
        LayerSpec::Dropout { p: 0.5 },
        LayerSpec::Flatten, // [20, 1, 1]
        LayerSpec::Linear { out: 6 },
    ];
    arch
}

/// Every layer type ([`all_layers_arch`]) and both losses, on small shapes, on the CPU.
pub fn gradcheck_layers_all() -> Result<Vec<GradReport>> {
    let be = Cpu::new();
    let arch = all_layers_arch();
    let mut out = gradcheck_arch_on(&be, &arch, 17)?;
    out.push(check_loss(
        &be,
        arch.layers.len(),
        LossKind::Hinge,
        6,
        18,
        None,
    )?);
    Ok(out)
}

/// Input length of the encoder check: an odd count, so no shape is square by accident.
pub const ENCODER_INPUTS: usize = 7;
/// Atoms of the encoder check.
pub const ENCODER_ATOMS: usize = 5;

/// Checks every parameter gradient of a PSD encoder (`weight`, `bias`, `gain` or `theta`,
/// `S`) at small shapes ([`ENCODER_INPUTS`] → [`ENCODER_ATOMS`], batch [`BATCH`]): the
/// objective is `Σ r ⊙ g(x)`, so the analytic gradient is the encoder's backward pass with
/// `dcode = r`. Random parameters: weights and `S` `N(0, 0.5²)`, gains `1 + N(0, 0.1²)`,
/// thresholds `0.2 + |N(0, 0.1²)|` (so some codes are exactly zero and some are not), and
/// inputs `N(0, 1)`; shrinkage kinks are handled by [`compare`].
pub fn check_encoder<B: Backend>(
    be: &B,
    kind: EncoderKind,
    seed: u64,
    tamper: Tamper<'_>,
) -> Result<Vec<GradReport>> {
    let (k, n, batch) = (ENCODER_INPUTS, ENCODER_ATOMS, BATCH);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xE4C0);
    let mut hosts: Vec<Vec<f32>> = param_specs(kind, k, n)
        .iter()
        .map(|spec| {
            (0..spec.len)
                .map(|_| {
                    let g = normal(&mut rng);
                    match spec.name {
                        "gain" => 1.0 + 0.1 * g,
                        "theta" => 0.2 + 0.1 * g.abs(),
                        "bias" => 0.1 * g,
                        _ => 0.5 * g,
                    }
                })
                .collect()
        })
        .collect();
    let x: Vec<f32> = (0..batch * k).map(|_| normal(&mut rng)).collect();
    let r: Vec<f32> = (0..batch * n).map(|_| normal(&mut rng)).collect();
    let mut enc = Encoder::new(be, kind, k, n, &hosts)?;
    let xt = be.upload(&x)?;
    let mut trace = Trace::new(be, &enc, batch)?;
    enc.forward(be, &xt, &mut trace)?;
    let y0 = be.download(trace.code())?;
    enc.backward(be, &xt, &trace, &be.upload(&r)?)?;
    let mut grads: Vec<Vec<f32>> = enc
        .params
        .iter()
        .map(|p| be.download(&p.grad))
        .collect::<Result<_>>()?;
    if let Some(t) = tamper {
        grads.iter_mut().for_each(|g| t(g));
    }
    let name = kind.to_string();
    let mut crng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(0xE4C0));
    let mut out = Vec::new();
    for (i, host) in hosts.iter_mut().enumerate() {
        let wrt = enc.params[i].name();
        let res = compare(host, &grads[i], &r, &y0, &mut crng, &mut |v| {
            // Straight upload, no projection: θ is checked where it is, not where it is clipped.
            be.upload_into(&mut enc.params[i].value, v)?;
            enc.forward(be, &xt, &mut trace)?;
            be.download(trace.code())
        })?;
        out.push(report(1, &name, wrt, res));
    }
    Ok(out)
}

/// [`check_encoder`] on the CPU backend.
pub fn gradcheck_encoder(kind: EncoderKind, seed: u64) -> Result<Vec<GradReport>> {
    check_encoder(&Cpu::new(), kind, seed, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_all_pass(reports: &[GradReport]) {
        for r in reports {
            println!(
                "layer {:>2} {:<9} d({:<6}) worst {:.2e}  checked {:>2}  skipped {}",
                r.layer, r.op, r.wrt, r.worst_rel_err, r.checked, r.skipped
            );
        }
        let failed: Vec<_> = reports.iter().filter(|r| !r.pass).collect();
        assert!(failed.is_empty(), "failed: {failed:#?}");
    }

    #[test]
    fn every_layer_type_and_both_losses() {
        let reports = gradcheck_layers_all().unwrap();
        let ops: std::collections::BTreeSet<&str> = reports.iter().map(|r| r.op.as_str()).collect();
        for op in [
            "conv2d",
            "linear",
            "relu",
            "tanh",
            "abs",
            "maxpool2d",
            "avgpool2d",
            "lcn",
            "dropout",
            "flatten",
            "nll",
            "hinge",
        ] {
            assert!(ops.contains(op), "{op} not checked");
        }
        assert_all_pass(&reports);
    }

    #[test]
    fn lenet_and_jarrett_at_real_shapes() {
        for name in ["lenet", "jarrett"] {
            let t = std::time::Instant::now();
            let reports = gradcheck_arch(&Arch::load(name).unwrap(), 5).unwrap();
            println!("{name}: {:.2} s", t.elapsed().as_secs_f64());
            assert_all_pass(&reports);
        }
    }

    #[test]
    fn every_psd_encoder_parameter() {
        for kind in ["tanh", "shrink", "lista:1", "lista:3"] {
            let kind: EncoderKind = kind.parse().unwrap();
            let reports = gradcheck_encoder(kind, 3).unwrap();
            let names: Vec<&str> = reports.iter().map(|r| r.wrt).collect();
            let want: Vec<&str> = param_specs(kind, 1, 1).iter().map(|s| s.name).collect();
            assert_eq!(names, want, "{kind}");
            assert_all_pass(&reports);
            let off = |g: &mut [f32]| g.iter_mut().for_each(|v| *v *= 1.03);
            let bad = check_encoder(&Cpu::new(), kind, 3, Some(&off)).unwrap();
            assert!(bad.iter().all(|r| !r.pass), "{kind}: {bad:#?}");
        }
    }

    #[test]
    fn a_wrong_gradient_is_caught() {
        let be = Cpu::new();
        let arch = all_layers_arch();
        let plan = infer(&arch).unwrap();
        let off_by_3_percent = |g: &mut [f32]| g.iter_mut().for_each(|v| *v *= 1.03);
        for i in [0, 3, 4, 11] {
            let reports = check_layer(&be, i, &plan[i], 0.3, 1, Some(&off_by_3_percent)).unwrap();
            assert!(reports.iter().all(|r| !r.pass), "layer {i}: {reports:#?}");
        }
        let r = check_loss(&be, 0, LossKind::Nll, 10, 1, Some(&off_by_3_percent)).unwrap();
        assert!(!r.pass, "{r:?}");
        // A gradient with one coordinate wrong is caught when that coordinate is sampled.
        let one_wrong = |g: &mut [f32]| g[0] += 0.5;
        let reports = check_layer(&be, 11, &plan[11], 0.3, 1, Some(&one_wrong)).unwrap();
        assert!(
            reports.iter().any(|r| r.wrt == "bias" && !r.pass),
            "{reports:#?}"
        );
    }
}
