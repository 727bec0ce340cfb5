//! Cases for the LISTA recurrence's step kernels (`lista_step_s8`, `lista_step_f32`, also
//! FISTA's step, and `lista_step_f16`): the first shrink, then one to three steps, reference and
//! variant each feeding its own output forward, compared after every step. `Mismatch::index`
//! is `step·N + i` (step 0 is the first shrink).

use super::{compare_f32, compare_i8, Carve, Case, Kernel, Mismatch, Rng};
use crate::kernels::lista::{reference, ListaS8};
use crate::kernels::table::Kernels;
use crate::kernels::Dims;

/// Code lengths around the SIMD blocks (8, 16, 64 rows) and the 128-atom encoders.
fn atoms(rng: &mut Rng) -> usize {
    match rng.below(3) {
        0 => [128, 64, 16, 8, 17, 100][rng.below(6)],
        1 => 1 + rng.below(20),
        _ => 1 + rng.below(150),
    }
}

fn case(ks: &Kernels, kernel: Kernel, seed: u64, n: usize, zp: (i32, i32), scratch: usize) -> Case {
    let d = Dims { c: n, h: 1, w: 1 };
    Case {
        zp,
        scratch,
        ..Case::flat(ks, kernel, seed, d, d)
    }
}

/// Moves the first differing element's index to `step·N + i`.
fn at_step(r: Result<Case, Mismatch>, step: usize, n: usize) -> Result<Case, Mismatch> {
    r.map_err(|mut m| {
        m.index += step * n;
        m
    })
}

pub(super) fn lista_s8(
    ks: &Kernels,
    seed: u64,
    rng: &mut Rng,
    work: &mut Carve<'_>,
) -> Result<Case, Mismatch> {
    let n = atoms(rng);
    let steps = 1 + rng.below(3);
    // `exact`: small `S`, unit requantization, so an accumulator off by one shows.
    let exact = rng.below(4) == 0;
    let extremes = !exact && rng.below(3) == 0;
    let s = work.i8s(n * n, |_| {
        if exact {
            rng.int(-2, 2) as i8
        } else {
            rng.code(extremes)
        }
    });
    let (unit_m, unit_s) = (1 << 30, 1); // real multiplier 1
    let theta = work.i32s(n, |_| match rng.below(4) {
        0 => 0,
        1 => rng.int(0, 10),
        _ => {
            let bits = rng.int(0, 20);
            rng.int(0, 1 << bits)
        }
    });
    let mult = |rng: &mut Rng| {
        if exact {
            unit_m
        } else {
            rng.int(1 << 30, i32::MAX)
        }
    };
    let in_multiplier = work.i32s(n, |_| mult(rng));
    let out_multiplier = work.i32s(n, |_| mult(rng));
    let shift = |rng: &mut Rng, lo: i32| {
        if exact {
            unit_s
        } else if rng.below(8) == 0 {
            rng.int(-31, 30)
        } else {
            rng.int(lo, 0)
        }
    };
    let in_shift = work.i32s(n, |_| shift(rng, -4));
    let out_shift = work.i32s(n, |_| shift(rng, -16));
    let zp = |rng: &mut Rng| {
        if rng.below(4) == 0 {
            [-128, 127, 0][rng.below(3)]
        } else {
            rng.int(-128, 127)
        }
    };
    let (zp_b, zp_h) = (zp(rng), zp(rng));
    let p = ListaS8 {
        s,
        theta,
        in_multiplier,
        in_shift,
        out_multiplier,
        out_shift,
        zp_b,
        zp_h,
    };
    let b = work.i8s(n, |_| rng.code(extremes));
    let case = case(ks, Kernel::ListaS8, seed, n, (zp_b, zp_h), n * 4);
    let (want, got, scratch) = work.outputs_i8(n, n * 4);
    let (want_next, got_next, _) = work.outputs_i8(n, 0);
    let acc: &mut [i32] = bytemuck::cast_slice_mut(scratch);
    // The codes entering the first step: the first shrink of `b` (often mostly `zp_h`, so
    // that the steps skip columns), or random codes with a random share at `zp_h`.
    if rng.below(2) == 0 {
        reference::lista_first_s8(&p, b, want);
        (ks.lista_first_s8)(&p, b, got);
        compare_i8(case, want, got)?;
    } else {
        let dense = rng.below(5); // quarters off zp_h: 0 (none) to 4 (all)
        for (w, g) in want.iter_mut().zip(got.iter_mut()) {
            let q = if rng.below(4) < dense {
                rng.code(extremes)
            } else {
                zp_h as i8
            };
            (*w, *g) = (q, q);
        }
    }
    let (mut want, mut got, mut want_next, mut got_next) = (want, got, want_next, got_next);
    for step in 1..=steps {
        // The reference sums row by row and leaves `acc` alone; the variant gets it full of
        // the previous step's (or junk) values.
        reference::lista_step_s8(&p, b, want, acc, want_next);
        (ks.lista_step_s8)(&p, b, got, acc, got_next);
        at_step(compare_i8(case, want_next, got_next), step, n)?;
        core::mem::swap(&mut want, &mut want_next);
        core::mem::swap(&mut got, &mut got_next);
    }
    Ok(case)
}

/// A float step kernel: `(s, b, theta, h_in, h)`.
type StepFloat<W> = fn(&[W], &[f32], &[f32], &[f32], &mut [f32]);

/// A float `S` element type with a step kernel.
pub(super) trait FloatS: super::FloatWeight {
    /// The reference's step and `ks`'s.
    fn steps(ks: &Kernels) -> [StepFloat<Self>; 2];
}

impl FloatS for f32 {
    fn steps(ks: &Kernels) -> [StepFloat<f32>; 2] {
        [reference::lista_step_f32, ks.lista_step_f32]
    }
}

impl FloatS for half::f16 {
    fn steps(ks: &Kernels) -> [StepFloat<half::f16>; 2] {
        [reference::lista_step_f16, ks.lista_step_f16]
    }
}

/// `ListaF32` (`W = f32`) or `ListaF16` (`W = f16`).
pub(super) fn lista_float<W: FloatS>(
    ks: &Kernels,
    kernel: Kernel,
    seed: u64,
    rng: &mut Rng,
    work: &mut Carve<'_>,
) -> Result<Case, Mismatch> {
    let n = atoms(rng);
    let steps = 1 + rng.below(3);
    // Like a LISTA `S` (or FISTA's `I − DᵀD/L`): small off-diagonal entries.
    let scale = [1.0, 0.1, 0.01][rng.below(3)];
    let s: &[W] = work.typed(n * n, |_| W::from_f32(rng.f32() * scale));
    let [ref_step, isa_step] = W::steps(ks);
    let b = work.f32s(n, |_| rng.f32());
    let theta = work.f32s(n, |_| match rng.below(4) {
        0 => 0.0,
        _ => (rng.f32() + 1.0) * 0.25,
    });
    let case = case(ks, kernel, seed, n, (0, 0), 0);
    let (want, got, _) = work.outputs_f32(n, 0);
    let (want_next, got_next, _) = work.outputs_f32(n, 0);
    if rng.below(2) == 0 {
        reference::lista_first_f32(b, theta, want);
        (ks.lista_first_f32)(b, theta, got);
        compare_f32(case, want, got)?;
    } else {
        // FISTA's extrapolated codes: dense, with exact zeros and −0.0 among them.
        for (w, g) in want.iter_mut().zip(got.iter_mut()) {
            let v = match rng.below(6) {
                0 => 0.0,
                1 => -0.0,
                _ => rng.f32(),
            };
            (*w, *g) = (v, v);
        }
    }
    let (mut want, mut got, mut want_next, mut got_next) = (want, got, want_next, got_next);
    for step in 1..=steps {
        ref_step(s, b, theta, want, want_next);
        isa_step(s, b, theta, got, got_next);
        at_step(compare_f32(case, want_next, got_next), step, n)?;
        core::mem::swap(&mut want, &mut want_next);
        core::mem::swap(&mut got, &mut got_next);
    }
    Ok(case)
}

/// One int8 step: `(h_in, acc, h)`.
type StepS8<'a> = dyn Fn(&[i8], &mut [i32], &mut [i8]) + 'a;

/// A timed encoder kernel shape ([`bench`]): trained-encoder-like sizes, 128 atoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderShape {
    /// int8 `lista:3`: the first shrink and three `lista_step_s8`, 128 atoms, codes about
    /// one in four off the zero point.
    ListaS8x128,
    /// One f32 step on 128 atoms, a quarter of the code non-zero (a LISTA step).
    ListaF32x128,
    /// One FISTA iteration's matrix-vector step: `lista_step_f32` on 128 atoms with a
    /// dense extrapolated code (every entry non-zero, FISTA's worst case).
    FistaF32x128,
}

impl EncoderShape {
    /// Every timed encoder shape.
    pub const ALL: [EncoderShape; 3] = [
        EncoderShape::ListaS8x128,
        EncoderShape::ListaF32x128,
        EncoderShape::FistaF32x128,
    ];

    /// A short description.
    pub const fn name(self) -> &'static str {
        match self {
            EncoderShape::ListaS8x128 => "lista_s8 128 atoms, first shrink + 3 steps",
            EncoderShape::ListaF32x128 => "lista_step_f32 128 atoms, 25% non-zero",
            EncoderShape::FistaF32x128 => "FISTA step (lista_step_f32) 128 atoms, dense",
        }
    }
}

/// Times the reference and then the set this build runs by default on `shape` (like
/// [`super::bench::run`]: `time(f)` runs `f` and returns the ticks it took; `macs` counts
/// the multiply-accumulates a dense code would need).
///
/// # Panics
/// If `work` is shorter than [`super::WORK_BYTES`].
pub fn bench(
    shape: EncoderShape,
    work: &mut [u8],
    time: &mut dyn FnMut(&mut dyn FnMut()) -> u32,
) -> super::bench::Timing {
    assert!(
        work.len() >= super::WORK_BYTES,
        "bench needs WORK_BYTES of work"
    );
    let mut rng = Rng::new(0x6c69_7374_6100 ^ shape as u64);
    let mut work = Carve::new(work);
    let ks = Kernels::default_table();
    let n = 128;
    match shape {
        EncoderShape::ListaS8x128 => {
            let s = work.i8s(n * n, |_| (rng.next_u64() as i8) / 4);
            let theta = work.i32s(n, |_| rng.int(0, 2000));
            let one = work.i32s(n, |_| rng.int(1 << 30, i32::MAX));
            let shifts = work.i32s(n, |_| rng.int(-10, -6));
            let p = ListaS8 {
                s,
                theta,
                in_multiplier: one,
                in_shift: work.i32s(n, |_| 0),
                out_multiplier: one,
                out_shift: shifts,
                zp_b: 0,
                zp_h: -128,
            };
            // b codes such that about a quarter of the first shrink is off zp_h.
            let b = work.i8s(n, |_| match rng.below(4) {
                0 => rng.int(-128, 127) as i8,
                _ => 0,
            });
            let (want, got, scratch) = work.outputs_i8(n, n * 4);
            let (want2, got2, _) = work.outputs_i8(n, 0);
            let acc: &mut [i32] = bytemuck::cast_slice_mut(scratch);
            let run = |step: &StepS8<'_>, h: &mut [i8], tmp: &mut [i8], acc: &mut [i32]| {
                reference::lista_first_s8(&p, b, tmp);
                step(tmp, acc, h);
                step(h, acc, tmp);
                step(tmp, acc, h);
            };
            let r =
                |hi: &[i8], a: &mut [i32], h: &mut [i8]| reference::lista_step_s8(&p, b, hi, a, h);
            let v = |hi: &[i8], a: &mut [i32], h: &mut [i8]| (ks.lista_step_s8)(&p, b, hi, a, h);
            let reference = time(&mut || run(&r, want, want2, acc));
            let variant = time(&mut || run(&v, got, got2, acc));
            super::bench::Timing {
                macs: (3 * n * n) as u64,
                outputs: n as u64,
                reference,
                variant,
                scratch: n * 5,
                equal: want == got,
            }
        }
        EncoderShape::ListaF32x128 | EncoderShape::FistaF32x128 => {
            let dense = shape == EncoderShape::FistaF32x128;
            let s = work.f32s(n * n, |_| rng.f32() * 0.05);
            let b = work.f32s(n, |_| rng.f32());
            let theta = work.f32s(n, |_| 0.1);
            let h_in = work.f32s(n, |_| {
                if dense || rng.below(4) == 0 {
                    rng.f32()
                } else {
                    0.0
                }
            });
            let (want, got, _) = work.outputs_f32(n, 0);
            let reference = time(&mut || reference::lista_step_f32(s, b, theta, h_in, want));
            let variant = time(&mut || (ks.lista_step_f32)(s, b, theta, h_in, got));
            let equal = want
                .iter()
                .zip(got.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits());
            super::bench::Timing {
                macs: (n * n) as u64,
                outputs: n as u64,
                reference,
                variant,
                scratch: 0,
                equal,
            }
        }
    }
}
