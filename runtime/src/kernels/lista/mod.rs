//! The LISTA recurrence (sparse-code encoders): `lista_f32`, `lista_f16`, `lista_s8`, built
//! from one step kernel per type (`lista_step_*`), which [`crate::sparse`]'s FISTA shares.
//!
//! Input `b` and output `h` are the layer's two arena regions; the recurrence needs a third
//! code buffer, the scratch. The steps alternate between `h` and the scratch, starting in
//! whichever makes the last step land in `h`.
//!
//! Variants (each documented at its top; all bit-exact, proven by `crate::check`):
//!
//! | set    | `lista_step_s8`          | `lista_step_f32` (FISTA's too) | `lista_step_f16` |
//! |--------|--------------------------|--------------------------------|------------------|
//! | `avx2` | `VPMADDWD`, column pairs | 8 rows a vector                | F16C widening    |
//! | `neon` | `SMLAL`, 64 rows in regs | 4 rows a vector, 64 in regs    | reference        |
//! | `dsp`  | `SMLAD`, column pairs    | reference (scalar FPU only)    | reference        |
//! | `mve`  | `VMLA.S32`, 4 columns    | `VMUL`+`VADD.F32`, 4 columns   | reference        |
//!
//! Executed instructions per dense MAC under QEMU (`scripts/mcu-kernel-check.sh bench`,
//! 128 atoms), reference → variant: M4 int8 `lista:3` 7.38 → 1.15; M55 int8 7.01 → 1.08,
//! f32 step (25% non-zero) 11.00 → 0.45, FISTA step (dense) 15.26 → 1.24. `lista_step_f16`
//! stays the reference everywhere but AVX2: the M-profile cores have no f16 vector
//! widening that pays on a column walk (M4 has no vector unit; on the M55 it was not
//! attempted), and NEON's f16 conversion intrinsics are not stable in `core::arch`.

// The spec. Where a variant replaces a kernel, only `crate::check` (tests) calls it.
#[cfg_attr(not(kestrel_isa = "reference"), allow(dead_code))]
pub(crate) mod reference;

// The variant this build runs, chosen at compile time (see `kernels/fc/mod.rs`);
// `crate::check` proves it equal to the reference. Each variant file has the same
// functions as `reference.rs`, re-exporting the reference for what it does not speed up.
#[cfg(kestrel_isa = "dsp")]
pub(crate) mod dsp;
#[cfg(kestrel_isa = "mve")]
pub(crate) mod mve;
#[cfg(kestrel_isa = "neon")]
pub(crate) mod neon;
#[cfg(kestrel_isa = "avx2")]
pub(crate) mod x86;

#[cfg(kestrel_isa = "dsp")]
pub(crate) use dsp as isa;
#[cfg(kestrel_isa = "mve")]
pub(crate) use mve as isa;
#[cfg(kestrel_isa = "neon")]
pub(crate) use neon as isa;
#[cfg(kestrel_isa = "reference")]
pub(crate) use reference as isa;
#[cfg(kestrel_isa = "avx2")]
pub(crate) use x86 as isa;

use super::table::Kernels;
use kestrel_format::{Lateral, Layer};

pub(crate) use reference::ListaS8;

use super::{Elem, Io};

/// f32 / f16 `S` on f32 activations; int8 `S` on int8 activations with both quantizations.
pub(crate) fn supports(lateral: &Lateral<'_>, layer: &Layer<'_>, elem: Elem) -> bool {
    match lateral {
        Lateral::F32 { .. } | Lateral::F16 { .. } => elem == Elem::F32,
        Lateral::I8 { .. } => {
            elem == Elem::I8 && layer.in_quant.is_some() && layer.out_quant.is_some()
        }
    }
}

/// Scratch bytes, the same for every kernel set: float, the second code buffer (`4·N`);
/// int8, `N` i32 row accumulators then the second code buffer (`4·N + N`).
/// Saturates (such a plan can never run).
pub(crate) fn scratch_len(layer: &Layer<'_>, elem: Elem) -> usize {
    let n = layer.input.len();
    match elem {
        Elem::F32 => n.saturating_mul(4),
        Elem::I8 => n.saturating_mul(5),
    }
}

/// Runs the layer: `io.x` is `b`, `io.y` receives `h`; `scratch` is [`scratch_len`] bytes
/// (16-byte aligned, from the plan).
pub(crate) fn dispatch(
    kernels: &Kernels,
    steps: usize,
    lateral: &Lateral<'_>,
    layer: &Layer<'_>,
    io: Io<'_>,
    scratch: &mut [u8],
) {
    match (*lateral, io, layer.in_quant, layer.out_quant) {
        #[cfg(feature = "f32")]
        (Lateral::F32 { s, theta }, Io::F32 { x, y }, ..) => {
            let step = |th: &[f32], hi: &[f32], h: &mut [f32]| {
                kernel!(kernels, lista::lista_step_f32)(s, x, th, hi, h)
            };
            lista_float(kernels, step, x, theta, steps, y, cast_mut(scratch))
        }
        #[cfg(feature = "f32")]
        (Lateral::F16 { s, theta }, Io::F32 { x, y }, ..) => {
            let step = |th: &[f32], hi: &[f32], h: &mut [f32]| {
                kernel!(kernels, lista::lista_step_f16)(s, x, th, hi, h)
            };
            lista_float(kernels, step, x, theta, steps, y, cast_mut(scratch))
        }
        #[cfg(feature = "int8")]
        (
            Lateral::I8 {
                s,
                theta,
                in_multiplier,
                in_shift,
                out_multiplier,
                out_shift,
                ..
            },
            Io::S8 { x, y },
            Some(qi),
            Some(qo),
        ) => {
            let p = ListaS8 {
                s,
                theta,
                in_multiplier,
                in_shift,
                out_multiplier,
                out_shift,
                zp_b: qi.zero_point,
                zp_h: qo.zero_point,
            };
            let (acc, tmp) = scratch.split_at_mut(scratch.len().saturating_sub(y.len()));
            lista_s8(kernels, &p, x, steps, y, cast_mut(acc), cast_mut(tmp))
        }
        _ => debug_assert!(false, "Plan::new admits only supported layers"),
    }
}

/// A scratch region as `T`s: regions are 16-byte aligned and whole, so the cast cannot
/// fail (the fallback only keeps the run loop free of panics).
fn cast_mut<T: bytemuck::Pod>(b: &mut [u8]) -> &mut [T] {
    let t = bytemuck::try_cast_slice_mut(b);
    debug_assert!(t.is_ok(), "scratch is aligned and whole");
    t.unwrap_or_default()
}

/// The thresholds of step `t` (`0`: the first shrink) from the layer's `theta`: all of it
/// when it is one `[n]` for every step, else its `t`-th `[n]` (the validator admits only
/// these two lengths; the fallback keeps the run loop free of panics).
pub(crate) fn step_theta<T>(theta: &[T], n: usize, t: usize) -> &[T] {
    if theta.len() == n {
        theta
    } else {
        theta.get(t * n..(t + 1) * n).unwrap_or(theta)
    }
}

/// `h ← shrink_θ₀(b)`, then for `t = 1..=steps`, `h ← step(θ_t, h)`, alternating between
/// `h` and `tmp`.
pub(crate) fn lista_float(
    kernels: &Kernels,
    step: impl Fn(&[f32], &[f32], &mut [f32]),
    b: &[f32],
    theta: &[f32],
    steps: usize,
    h: &mut [f32],
    tmp: &mut [f32],
) {
    debug_assert_eq!(tmp.len(), h.len());
    let n = h.len();
    let (mut cur, mut next) = if steps.is_multiple_of(2) {
        (h, tmp)
    } else {
        (tmp, h)
    };
    kernel!(kernels, lista::lista_first_f32)(b, step_theta(theta, n, 0), cur);
    for t in 1..=steps {
        step(step_theta(theta, n, t), cur, next);
        core::mem::swap(&mut cur, &mut next);
    }
}

/// The int8 recurrence with `acc` (`[N]` i32) and `tmp` (`[N]`) as scratch; `p.theta` is
/// the layer's (one `[N]` or one per step).
fn lista_s8(
    kernels: &Kernels,
    p: &ListaS8<'_>,
    b: &[i8],
    steps: usize,
    h: &mut [i8],
    acc: &mut [i32],
    tmp: &mut [i8],
) {
    debug_assert!(tmp.len() == h.len() && acc.len() == h.len());
    let n = h.len();
    let at = |t| ListaS8 {
        theta: step_theta(p.theta, n, t),
        ..*p
    };
    let (mut cur, mut next) = if steps.is_multiple_of(2) {
        (h, tmp)
    } else {
        (tmp, h)
    };
    kernel!(kernels, lista::lista_first_s8)(&at(0), b, cur);
    for t in 1..=steps {
        kernel!(kernels, lista::lista_step_s8)(&at(t), b, cur, acc, next);
        core::mem::swap(&mut cur, &mut next);
    }
}
