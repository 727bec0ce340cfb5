//! Validation of the sparse-code encoder ops: `PatchNorm`, `Shrink`, `Gain`, `Lista` and
//! `Dictionary` (see [`crate::Op`]). Every size is computed with checked
//! arithmetic (a 32-bit target must not wrap), every value the runtime relies on (finite
//! weights, non-negative thresholds, rescalings in range) is checked here once.

use half::f16;

use super::{
    expect_len, rescale_consistent, same_quant, same_shape, tensor, At, Derived, Lateral,
    LayerKind, Thresholds,
};
use crate::desc::{DType, LayerDesc, ListaQuant, Precision, Rescale, Shape, TensorRef};
use crate::quant::requant_in_range;
use crate::{Error, Field};

/// [`Op::PatchNorm`].
pub(crate) fn patch_norm<'a>(
    l: &LayerDesc,
    i: usize,
    contrast: Option<f32>,
) -> Result<LayerKind<'a>, Error> {
    same_shape(l, i)?;
    if let Some(eps) = contrast {
        positive(eps, i, Field::Contrast)?;
    }
    Ok(LayerKind::PatchNorm { contrast })
}

/// [`Op::Shrink`].
pub(crate) fn shrink<'a>(
    at: &At,
    l: &LayerDesc,
    theta: TensorRef,
    data: &'a [u8],
) -> Result<LayerKind<'a>, Error> {
    let (i, n) = (at.index, l.input.c as usize);
    same_shape(l, i)?;
    same_quant(at, l)?;
    let theta = if at.precision == Precision::Int8 {
        Thresholds::I32(thresholds_i32(theta, Lens { n, steps: None }, data, i)?)
    } else {
        Thresholds::F32(thresholds_f32(theta, Lens { n, steps: None }, data, i)?)
    };
    Ok(LayerKind::Shrink { theta })
}

/// [`Op::Gain`].
pub(crate) fn gain<'a>(
    at: &At,
    l: &LayerDesc,
    gain: TensorRef,
    rescale: Option<Rescale>,
    data: &'a [u8],
) -> Result<LayerKind<'a>, Error> {
    let (i, n) = (at.index, l.input.c as usize);
    same_shape(l, i)?;
    let g = finite_f32(data, gain, n, i, Field::Gain)?;
    let rescale = match (rescale, at.precision == Precision::Int8) {
        (None, false) => None,
        (Some(r), true) => {
            if let Some(index) = g.iter().position(|&v| v <= 0.0) {
                return Err(Error::BadValue {
                    layer: i,
                    field: Field::Gain,
                    index,
                });
            }
            let (m, s) = rescale_tensors(r, n, data, i)?;
            // code steps of the input → of the output: gain · in scale / out scale.
            if let Some((a, b)) = scales(at, l) {
                let derived = Derived {
                    num: Some(g),
                    a,
                    den: None,
                    b,
                    codes_in: true,
                };
                rescale_consistent(&derived, (m, s), (i, Field::Multiplier))?;
            }
            Some((m, s))
        }
        _ => {
            return Err(Error::QuantMismatch {
                layer: i,
                field: Field::Multiplier,
            })
        }
    };
    Ok(LayerKind::Gain { gain: g, rescale })
}

/// [`Op::Lista`]: `[n, 1, 1]` in and out, `steps ≥ 1`, `S` and `θ` by precision.
pub(crate) fn lista<'a>(
    at: &At,
    l: &LayerDesc,
    (s, theta, steps, quant): (TensorRef, TensorRef, u8, Option<ListaQuant>),
    data: &'a [u8],
) -> Result<LayerKind<'a>, Error> {
    let i = at.index;
    same_shape(l, i)?;
    let n = vector_len(l.input, i)?;
    if steps == 0 {
        return Err(Error::BadValue {
            layer: i,
            field: Field::Steps,
            index: 0,
        });
    }
    Ok(LayerKind::Lista {
        steps: steps as usize,
        lateral: lateral(
            (at.precision, scales(at, l)),
            (s, theta, quant),
            (n, steps.into()),
            data,
            i,
        )?,
    })
}

/// [`Op::Dictionary`]: the last layer, `[n, 1, 1]` in and out, `D` of `k × n` for the
/// model input's `k` elements.
pub(crate) fn dictionary<'a>(
    at: &At,
    l: &LayerDesc,
    (atoms, lambda, lipschitz, fista_weight, fista_s): (TensorRef, f32, f32, TensorRef, TensorRef),
    data: &'a [u8],
) -> Result<LayerKind<'a>, Error> {
    let i = at.index;
    if !at.last {
        return Err(Error::NotLast { layer: i });
    }
    same_shape(l, i)?;
    same_quant(at, l)?;
    positive(lambda, i, Field::Lambda)?;
    positive(lipschitz, i, Field::Lipschitz)?;
    let n = vector_len(l.input, i)?;
    let k = at.model_input.checked_len().ok_or(Error::ShapeMismatch {
        layer: i,
        field: Field::Atoms,
        expected: usize::MAX,
        got: usize::MAX,
    })?;
    let kn = product(k, n, i, Field::Atoms)?;
    let nn = product(n, n, i, Field::FistaS)?;
    Ok(LayerKind::Dictionary {
        atoms: finite_f32(data, atoms, kn, i, Field::Atoms)?,
        lambda,
        lipschitz,
        fista_weight: finite_f32(data, fista_weight, kn, i, Field::FistaWeight)?,
        fista_s: finite_f32(data, fista_s, nn, i, Field::FistaS)?,
    })
}

/// `n` of an `[n, 1, 1]` vector shape.
fn vector_len(s: Shape, i: usize) -> Result<usize, Error> {
    if s.h == 1 && s.w == 1 {
        Ok(s.c as usize)
    } else {
        Err(Error::ShapeMismatch {
            layer: i,
            field: Field::InputShape,
            expected: s.c as usize,
            got: s.len(),
        })
    }
}

/// `a·b`, or a typed error where it does not fit `usize` (32-bit targets).
fn product(a: usize, b: usize, i: usize, field: Field) -> Result<usize, Error> {
    a.checked_mul(b).ok_or(Error::ShapeMismatch {
        layer: i,
        field,
        expected: usize::MAX,
        got: usize::MAX,
    })
}

fn positive(v: f32, i: usize, field: Field) -> Result<(), Error> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(Error::BadValue {
            layer: i,
            field,
            index: 0,
        })
    }
}

fn finite(v: &[f32], i: usize, field: Field) -> Result<(), Error> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::BadValue {
            layer: i,
            field,
            index,
        }),
    }
}

/// An f32 tensor of exactly `len` finite elements.
fn finite_f32(
    data: &[u8],
    t: TensorRef,
    len: usize,
    i: usize,
    field: Field,
) -> Result<&[f32], Error> {
    let v: &[f32] = tensor(data, t, DType::F32, i, field)?;
    expect_len(v.len(), len, i, field)?;
    finite(v, i, field)?;
    Ok(v)
}

/// `n` finite f32 thresholds, each `≥ 0` (float models).
fn thresholds_f32(t: TensorRef, n: Lens, data: &[u8], i: usize) -> Result<&[f32], Error> {
    let v: &[f32] = tensor(data, t, DType::F32, i, Field::Theta)?;
    n.check(v.len(), i)?;
    match v.iter().position(|&x| !(x.is_finite() && x >= 0.0)) {
        None => Ok(v),
        Some(index) => Err(Error::BadValue {
            layer: i,
            field: Field::Theta,
            index,
        }),
    }
}

/// i32 thresholds of [`Lens`], each `≥ 0` (int8 models).
fn thresholds_i32(t: TensorRef, n: Lens, data: &[u8], i: usize) -> Result<&[i32], Error> {
    let v: &[i32] = tensor(data, t, DType::I32, i, Field::Theta)?;
    n.check(v.len(), i)?;
    match v.iter().position(|&x| x < 0) {
        None => Ok(v),
        Some(index) => Err(Error::BadValue {
            layer: i,
            field: Field::Theta,
            index,
        }),
    }
}

/// The lengths a threshold tensor may have: `n` ([`Op::Shrink`], and [`Op::Lista`] with one
/// `θ` for every step), or also `(steps + 1)·n` ([`Op::Lista`] with a `θ` per step).
#[derive(Clone, Copy)]
struct Lens {
    n: usize,
    steps: Option<usize>,
}

impl Lens {
    fn check(self, got: usize, i: usize) -> Result<(), Error> {
        match self.steps {
            Some(steps) if got != self.n => {
                let per_step = product(self.n, steps + 1, i, Field::Theta)?;
                expect_len(got, per_step, i, Field::Theta)
            }
            _ => expect_len(got, self.n, i, Field::Theta),
        }
    }
}

/// `n` multipliers and shifts, each pair in [`requantize`](crate::quant::requantize)'s range.
fn rescale_tensors(r: Rescale, n: usize, data: &[u8], i: usize) -> Result<(&[i32], &[i32]), Error> {
    let m: &[i32] = tensor(data, r.multiplier, DType::I32, i, Field::Multiplier)?;
    let s: &[i32] = tensor(data, r.shift, DType::I32, i, Field::Shift)?;
    expect_len(m.len(), n, i, Field::Multiplier)?;
    expect_len(s.len(), n, i, Field::Shift)?;
    for c in 0..n {
        if !requant_in_range(m[c], 0) {
            return Err(Error::RequantOutOfRange {
                layer: i,
                field: Field::Multiplier,
                channel: c,
                value: m[c],
            });
        }
        if !requant_in_range(1 << 30, s[c]) {
            return Err(Error::RequantOutOfRange {
                layer: i,
                field: Field::Shift,
                channel: c,
                value: s[c],
            });
        }
    }
    Ok((m, s))
}

/// [`Op::Lista`]'s `S` (`n × n`, the precision's type) and thresholds.
/// The (input, output) quantization scales of an int8 layer.
fn scales(at: &At, l: &LayerDesc) -> Option<(f32, f32)> {
    Some((at.in_quant?.scale, l.out_quant?.scale))
}

fn lateral<'a>(
    (precision, scales): (Precision, Option<(f32, f32)>),
    (s, theta, quant): (TensorRef, TensorRef, Option<ListaQuant>),
    (n, steps): (usize, usize),
    data: &'a [u8],
    i: usize,
) -> Result<Lateral<'a>, Error> {
    let nn = product(n, n, i, Field::Lateral)?;
    let lens = Lens {
        n,
        steps: Some(steps),
    };
    Ok(match (precision, quant) {
        (Precision::F32, None) => Lateral::F32 {
            s: finite_f32(data, s, nn, i, Field::Lateral)?,
            theta: thresholds_f32(theta, lens, data, i)?,
        },
        (Precision::F16, None) => {
            let v: &[f16] = tensor(data, s, DType::F16, i, Field::Lateral)?;
            expect_len(v.len(), nn, i, Field::Lateral)?;
            if let Some(index) = v.iter().position(|x| !x.is_finite()) {
                return Err(Error::BadValue {
                    layer: i,
                    field: Field::Lateral,
                    index,
                });
            }
            Lateral::F16 {
                s: v,
                theta: thresholds_f32(theta, lens, data, i)?,
            }
        }
        (Precision::Int8, Some(q)) => {
            let v: &[i8] = tensor(data, s, DType::I8, i, Field::Lateral)?;
            expect_len(v.len(), nn, i, Field::Lateral)?;
            let theta = thresholds_i32(theta, lens, data, i)?;
            let s_scale = finite_f32(data, q.s_scale, n, i, Field::LateralScale)?;
            if let Some(index) = s_scale.iter().position(|&x| x <= 0.0) {
                return Err(Error::BadQuantParam {
                    layer: i,
                    field: Field::LateralScale,
                    index,
                });
            }
            let (in_multiplier, in_shift) = rescale_tensors(q.input, n, data, i)?;
            let (out_multiplier, out_shift) = rescale_tensors(q.output, n, data, i)?;
            // Row i's accumulator is in units of s_scale[i] · out scale: the input codes
            // (in scale) go in by in / (s_scale[i] · out), the result out by s_scale[i].
            if let Some((b, h)) = scales {
                let input = Derived {
                    num: None,
                    a: b,
                    den: Some(s_scale),
                    b: h,
                    codes_in: true,
                };
                let output = Derived {
                    num: Some(s_scale),
                    a: 1.0,
                    den: None,
                    b: 1.0,
                    codes_in: false,
                };
                let r = (in_multiplier, in_shift);
                rescale_consistent(&input, r, (i, Field::ListaInput))?;
                let r = (out_multiplier, out_shift);
                rescale_consistent(&output, r, (i, Field::ListaOutput))?;
            }
            Lateral::I8 {
                s: v,
                theta,
                s_scale,
                in_multiplier,
                in_shift,
                out_multiplier,
                out_shift,
            }
        }
        _ => {
            return Err(Error::QuantMismatch {
                layer: i,
                field: Field::Multiplier,
            })
        }
    })
}
