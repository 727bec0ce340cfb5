//! What the vector variants (`x86.rs`, `neon.rs`) share: the choice between them and the
//! reference, the zero-padded stack copies their window passes read, the walk over output
//! blocks, the squared deviations, and the reference's last steps as slice loops. Each variant brings
//! only its window sums ([`LANES`] output columns per step) and the passes' vector `/` and
//! `√`.
//!
//! The copies: the input dequantized to f32 `[C, H + 2r, W + 2r + LANES]` and the mean map
//! `[H + 2r, W + 2r + LANES]`, zero outside the layer, so that a block of `LANES` columns
//! loads every tap unconditionally (see `x86.rs` for why the padded taps leave each sum
//! bit-exact). After the mean pass the input copy is overwritten with the squared
//! deviations ([`square_deviations`]), which the deviation pass sums the same way. Layers
//! with even or non-finite windows, or too large for the copies, run the reference.

use kestrel_format::quant::dequantize;
use kestrel_format::QParams;

use super::reference::{self, Lcn};
use crate::kernels::{quantize, Dims};

/// Output columns per step of both variants (one AVX2 vector, two NEON ones); also the
/// slack past each padded row, so that a step's loads stay inside it.
pub(crate) const LANES: usize = 8;

/// f32 elements of the stack's zero-padded copies (64 KiB).
const CAP: usize = 16384;

/// The layer as the window passes see it.
pub(crate) struct Padded<'a> {
    pub xd: Dims,
    pub lcn: Lcn<'a>,
    /// Padded row count `H + 2r` and length `W + 2r + LANES`.
    pub hp: usize,
    pub wp: usize,
    /// The input `[C, hp, wp]`, the layer at `[i, r + row, r + col]`, zero elsewhere; the
    /// passes may overwrite it ([`square_deviations`]).
    pub x: &'a mut [f32],
    /// The mean map `[hp, wp]`, all zero: the mean pass writes `m[j, k]` at
    /// `[r + j, r + k]`, for the deviation pass to read.
    pub m: &'a mut [f32],
}

impl Padded<'_> {
    /// Whether the copies have the sizes above: what the variants' unchecked loads need.
    pub(crate) fn sizes_hold(&self) -> bool {
        let r = self.lcn.size / 2;
        self.hp == self.xd.h + 2 * r
            && self.wp == self.xd.w + 2 * r + LANES
            && self.x.len() == self.xd.c * self.hp * self.wp
            && self.m.len() == self.hp * self.wp
            && self.lcn.window.len() == self.lcn.size * self.lcn.size
    }
}

/// The padded row count and length, if both copies fit and the window is usable.
fn layout(xd: Dims, lcn: Lcn<'_>) -> Option<(usize, usize)> {
    let r = lcn.size / 2;
    let (hp, wp) = (xd.h + 2 * r, xd.w + 2 * r + LANES);
    let fits = (xd.c + 1)
        .checked_mul(hp)
        .and_then(|v| v.checked_mul(wp))
        .is_some_and(|v| v <= CAP);
    (fits && lcn.size % 2 == 1 && lcn.window.iter().all(|w| w.is_finite())).then_some((hp, wp))
}

/// f32: `passes(layer, m, s)` fills the maps `m`, `s` `[H, W]` (and `layer.m`), the rest
/// is the reference's; layers [`layout`] refuses run [`reference::lcn_f32`]. Inlined, with
/// the copies and the tail, into the caller (so into its `#[target_feature]` code).
#[inline(always)]
pub(crate) fn lcn_f32(
    x: &[f32],
    xd: Dims,
    lcn: Lcn<'_>,
    scratch: &mut [f32],
    y: &mut [f32],
    passes: impl FnOnce(Padded<'_>, &mut [f32], &mut [f32]),
) {
    debug_assert_eq!(y.len(), xd.len());
    match layout(xd, lcn) {
        Some(l) => run(
            |n| x[n],
            xd,
            lcn,
            l,
            scratch,
            passes,
            |_, m, d| {
                // The reference's `v / d` per element, in slice loops the compiler vectorizes.
                for (x, y) in x.chunks_exact(m.len()).zip(y.chunks_exact_mut(m.len())) {
                    for (((y, &x), &m), &d) in y.iter_mut().zip(x).zip(m).zip(d) {
                        *y = (x - m) / d;
                    }
                }
            },
        ),
        None => reference::lcn_f32(x, xd, lcn, scratch, y),
    }
}

/// int8, as [`lcn_f32`] between the reference's dequantization and quantization (the
/// latter by this build's `quantize_s8`, bit-exact with
/// [`quantize_f32`](kestrel_format::quant::quantize_f32)).
#[allow(clippy::too_many_arguments)] // the kernel's seven, and the passes
#[inline(always)]
pub(crate) fn lcn_s8(
    x: &[i8],
    qi: QParams,
    xd: Dims,
    lcn: Lcn<'_>,
    scratch: &mut [f32],
    qo: QParams,
    y: &mut [i8],
    passes: impl FnOnce(Padded<'_>, &mut [f32], &mut [f32]),
) {
    debug_assert_eq!(y.len(), xd.len());
    let x_at = |n| dequantize(x[n], qi.scale, qi.zero_point);
    match layout(xd, lcn) {
        Some(l) => run(x_at, xd, lcn, l, scratch, passes, |v, m, d| {
            let v = &mut v[..m.len()];
            for (x, y) in x.chunks_exact(m.len()).zip(y.chunks_exact_mut(m.len())) {
                for (((v, &x), &m), &d) in v.iter_mut().zip(x).zip(m).zip(d) {
                    *v = (dequantize(x, qi.scale, qi.zero_point) - m) / d;
                }
                quantize::isa::quantize_s8(v, qo, y);
            }
        }),
        None => reference::lcn_s8(x, qi, xd, lcn, scratch, qo, y),
    }
}

/// Fills the copies, runs the passes, then the reference's tail: the mean deviation `c`
/// (summed in order, as the reference does), each `s` replaced by its divisor
/// `max(max(c, s), eps)`, and `tail(work, m, divisors)`, `work` being the input copy's
/// storage (at least `H·W` f32s), free once the passes are done.
#[inline(always)]
fn run(
    x_at: impl Fn(usize) -> f32,
    xd: Dims,
    lcn: Lcn<'_>,
    (hp, wp): (usize, usize),
    scratch: &mut [f32],
    passes: impl FnOnce(Padded<'_>, &mut [f32], &mut [f32]),
    tail: impl FnOnce(&mut [f32], &[f32], &[f32]),
) {
    let (r, (h, w), hw) = (lcn.size / 2, (xd.h, xd.w), xd.h * xd.w);
    debug_assert_eq!(scratch.len(), 2 * hw);
    let mut buf = [0f32; CAP];
    let (xpad, rest) = buf.split_at_mut(xd.c * hp * wp);
    for i in 0..xd.c {
        for row in 0..h {
            let dst = &mut xpad[(i * hp + row + r) * wp + r..][..w];
            for (col, d) in dst.iter_mut().enumerate() {
                *d = x_at((i * h + row) * w + col);
            }
        }
    }
    let (m, s) = scratch.split_at_mut(hw);
    let layer = Padded {
        xd,
        lcn,
        hp,
        wp,
        x: xpad,
        m: &mut rest[..hp * wp],
    };
    passes(layer, m, s);
    // The mean deviation, summed in `(j, k)` order as the reference sums it.
    let mut sum = 0.0f32;
    for &sd in s.iter() {
        sum += sd;
    }
    let c = sum / hw as f32;
    for d in s.iter_mut() {
        *d = c.max(*d).max(lcn.eps);
    }
    tail(&mut buf, m, s);
}

/// Between the passes: each element of the input copy `x` `[C, hp, wp]` replaced by its
/// squared deviation `v² = (x − m)²` from the mean copy `m` `[hp, wp]`, rounded as the
/// reference rounds `v` and then `v·v`. The padding stays `(0 − 0)² = +0`, so that the
/// deviation pass sums `x` as the mean pass did, each `v²` computed once instead of once
/// per window that holds it.
#[inline(always)]
pub(crate) fn square_deviations(x: &mut [f32], m: &[f32]) {
    for plane in x.chunks_exact_mut(m.len()) {
        for (xv, &mv) in plane.iter_mut().zip(m) {
            let v = *xv - mv;
            *xv = v * v;
        }
    }
}

/// The end of a window sum's loads: block sums for window corner `at` (padded coordinates,
/// [`pass`]) load `LANES` floats up to `at + (C − 1)·plane + (S − 1)·(wp + 1) + LANES`.
#[inline(always)]
pub(crate) fn loads_end(c: usize, plane: usize, size: usize, wp: usize) -> usize {
    c.saturating_sub(1) * plane + size.saturating_sub(1) * (wp + 1) + LANES
}

/// Every output position of a `[h, w]` map (row length `wp` in the copies), [`LANES`]
/// columns and (while they last) four rows at a time: `sum4(at)` / `sum1(at)` give the
/// window sums of the rows whose first taps are at `at` (padded coordinates), and
/// `put(j, k0, n, sum)` takes row `j`'s, columns `k0 .. k0 + n` (`n ≤ LANES` lanes used).
/// Four rows give four independent sums, so that the additions of one do not wait for
/// another's.
#[inline(always)]
pub(crate) fn pass<V>(
    (h, w, wp): (usize, usize, usize),
    sum4: impl Fn([usize; 4]) -> [V; 4],
    sum1: impl Fn(usize) -> V,
    mut put: impl FnMut(usize, usize, usize, V),
) {
    for k0 in (0..w).step_by(LANES) {
        let n = (w - k0).min(LANES);
        let mut j = 0;
        while j < h {
            if h - j >= 4 {
                let at = [0, 1, 2, 3].map(|t| (j + t) * wp + k0);
                for (t, sum) in sum4(at).into_iter().enumerate() {
                    put(j + t, k0, n, sum);
                }
                j += 4;
            } else {
                put(j, k0, n, sum1(j * wp + k0));
                j += 1;
            }
        }
    }
}

/// Instruction counts for the variants' module docs: `KESTREL_LCN_CALLS=<set>,<elem>,<c>x<h>x<w>,<n>`
/// (`set` `reference` or `variant`, `elem` `s8` or `f32`) makes this test call that LCN
/// (9×9 window) `n` times; the difference between the counts of `n` and of `0` calls,
/// divided by `n`, is one call's. Without the variable it does nothing.
#[cfg(test)]
mod calls {
    use kestrel_format::QParams;

    use super::super::{isa, reference};
    use crate::kernels::Dims;

    #[test]
    #[ignore = "run by hand, see above"]
    fn lcn_calls() {
        let Ok(spec) = std::env::var("KESTREL_LCN_CALLS") else {
            return;
        };
        let f: std::vec::Vec<&str> = spec.split(',').collect();
        let d: std::vec::Vec<usize> = f[2].split('x').map(|v| v.parse().unwrap()).collect();
        let xd = Dims {
            c: d[0],
            h: d[1],
            w: d[2],
        };
        let n: usize = f[3].parse().unwrap();
        let window: std::vec::Vec<f32> = (0..81).map(|i| (1 + i % 7) as f32 / 324.0).collect();
        let lcn = reference::Lcn {
            size: 9,
            eps: 1e-4,
            window: &window,
        };
        let mut scratch = std::vec![0f32; 2 * xd.h * xd.w];
        let q = QParams {
            scale: 0.02,
            zero_point: -3,
        };
        let xs: std::vec::Vec<i8> = (0..xd.len()).map(|i| (i * 37 % 251) as i8).collect();
        let xf: std::vec::Vec<f32> = xs.iter().map(|&v| v as f32 * 0.02).collect();
        let (mut ys, mut yf) = (std::vec![0i8; xd.len()], std::vec![0f32; xd.len()]);
        let (s8, f32_) = match f[0] {
            "reference" => (
                reference::lcn_s8 as crate::kernels::table::LcnS8,
                reference::lcn_f32 as crate::kernels::table::LcnF32,
            ),
            _ => (
                isa::lcn_s8 as crate::kernels::table::LcnS8,
                isa::lcn_f32 as crate::kernels::table::LcnF32,
            ),
        };
        for _ in 0..n {
            match f[1] {
                "s8" => s8(&xs, q, xd, lcn, &mut scratch, q, &mut ys),
                _ => f32_(&xf, xd, lcn, &mut scratch, &mut yf),
            }
        }
        std::println!("{} {}", ys[n % ys.len()], yf[n % yf.len()]);
    }
}
