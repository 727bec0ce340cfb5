//! Pooling of any window at any stride on eight f32 lanes, shared by the AVX2 and NEON
//! variants (`maxpool/x86.rs`, `maxpool/neon.rs`, `avgpool/…`), which bring the lanes
//! ([`Lanes`]: one `__m256`, two `float32x4_t`). Each input row is split by column phase
//! on the stack so that every tap of eight consecutive outputs is one contiguous load
//! ([`pool_any`]); int8 codes are widened to f32, where they and their window sums are
//! exact. Layers whose `K` input rows do not fit that copy (16 KiB) run the reference.

use crate::kernels::Dims;

/// How a window is folded, in the reference's `(p, q)` order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fold {
    /// `f32::max` from the first element.
    Max,
    /// `0 + a + b + …` (the caller divides).
    Mean,
}

/// Eight f32 lanes of one instruction set.
pub(crate) trait Lanes: Copy {
    /// All `+0`.
    fn zero() -> Self;
    /// `v[..8]`.
    fn load(v: &[f32]) -> Self;
    /// The lanes into `out`.
    fn store(self, out: &mut [f32; 8]);
    /// Lane by lane `a + b`.
    fn add(self, b: Self) -> Self;
    /// Lane by lane `f32::max(a, b)` (`b` where `a` is NaN, and the other way round).
    fn max(self, b: Self) -> Self;
}

/// f32 elements of [`pool_any`]'s phase-split band of input rows (16 KiB on the stack).
const SPLIT_CAP: usize = 4096;

/// Whether [`pool_any`] takes a layer of this input width, window and stride: one output
/// row's `K` input rows must fit the split band.
pub(crate) fn fits_any(xd: Dims, k: usize, stride: usize) -> bool {
    (1..=256).contains(&stride)
        && k <= 256
        && k.checked_mul(stride)
            .and_then(|n| n.checked_mul(phase_len(xd.w, stride)))
            .is_some_and(|n| n <= SPLIT_CAP)
}

/// Columns of one phase in [`pool_any`]'s split rows: `⌈W/S⌉`, plus 8 of slack for the
/// last vector.
fn phase_len(w: usize, stride: usize) -> usize {
    w.div_ceil(stride) + 8
}

/// Phase `φ` of input row `n` (`c·H + r`), `x[n·W + φ + m·S]` for `m < dst.len()`
/// (never empty), into `dst` through `f`, for [`pool_any`]'s `load`.
#[inline(always)]
pub(crate) fn phase<'x, T: Copy>(
    x: &'x [T],
    xd: Dims,
    stride: usize,
    f: impl Fn(T) -> f32 + 'x,
) -> impl Fn(usize, usize, &mut [f32]) + 'x {
    move |n, phase, dst| {
        let row = &x[n * xd.w + phase..][..(dst.len() - 1) * stride + 1];
        for (m, d) in dst.iter_mut().enumerate() {
            *d = f(row[m * stride]);
        }
    }
}

/// Stores outputs `j..` of output row `n` (`c·OH + i`) through `finish` (the reference's
/// last step), for [`pool_any`]'s `store`.
#[inline(always)]
pub(crate) fn finished<'y, T>(
    y: &'y mut [T],
    yd: Dims,
    finish: impl Fn(f32) -> T + 'y,
) -> impl FnMut(usize, usize, &[f32]) + 'y {
    move |n, j, v| {
        for (y, &a) in y[n * yd.w + j..].iter_mut().zip(v) {
            *y = finish(a);
        }
    }
}

/// Any `K × K` window at any stride `S` (no padding, as in the reference), eight outputs
/// per f32 vector, taps folded in the reference's `(p, q)` order: `f32::max` from the
/// first tap ([`Fold::Max`]) or `+0 + v + …` ([`Fold::Mean`]; `store` divides). Tap
/// `(p, q)` of outputs `j..j + 8` is `x[c, i·S + p, (j + l)·S + q]`; with each input row
/// split by column phase once per band (`split[r][φ][m] = x[c, r, m·S + φ]`) it is the
/// contiguous `split[i·S + p][q mod S][j + q div S ..]`. `load(n, φ, dst)` writes phase `φ`
/// of input row `n` (`c·H + r`) as f32 ([`phase`]); `store(n, j, v)` takes outputs
/// `j..j + v.len()` of output row `n` (`c·OH + i`) ([`finished`]). i8 codes are exact in
/// f32, and so are their window sums (`|sum| ≤ 128·K² < 2²⁴`).
///
/// Inlined into each variant's `#[target_feature]` entry, with its [`Lanes`]; the caller
/// checks [`fits_any`].
#[inline(always)]
pub(crate) fn pool_any<V: Lanes>(
    xd: Dims,
    k: usize,
    stride: usize,
    yd: Dims,
    fold: Fold,
    load: impl Fn(usize, usize, &mut [f32]),
    mut store: impl FnMut(usize, usize, &[f32]),
) {
    assert!(fits_any(xd, k, stride) && yd.w <= xd.w);
    let (s, pl) = (stride, phase_len(xd.w, stride));
    let split_row = s * pl;
    // Output rows per band: the band's `(band − 1)·S + K` input rows fit `split`. Each
    // phase holds the same number of columns in every row, so its slack stays zero.
    let band = (SPLIT_CAP / split_row - k) / s + 1;
    let mut split = [0f32; SPLIT_CAP];
    // Where tap column `q` starts in a split row (no division in the loop below).
    let mut offset = [0usize; 256];
    for (q, at) in offset.iter_mut().enumerate().take(k) {
        *at = q % s * pl + q / s;
    }
    let offset = &offset[..k];
    // Columns of each phase: `⌈(W − φ)/S⌉` (phases past `W` hold none).
    let mut count = [0usize; 256];
    for (phase, n) in count.iter_mut().enumerate().take(s) {
        *n = xd.w.saturating_sub(phase).div_ceil(s);
    }
    for c in 0..xd.c {
        for i0 in (0..yd.h).step_by(band) {
            let rows = band.min(yd.h - i0);
            for r in 0..(rows - 1) * s + k {
                let dst = &mut split[r * split_row..][..split_row];
                for (phase, dst) in dst.chunks_exact_mut(pl).enumerate() {
                    if count[phase] > 0 {
                        load(c * xd.h + i0 * s + r, phase, &mut dst[..count[phase]]);
                    }
                }
            }
            for i in 0..rows {
                for j in (0..yd.w).step_by(8) {
                    let mut acc = V::zero();
                    for p in 0..k {
                        let src = &split[(i * s + p) * split_row..][..split_row];
                        for (q, &at) in offset.iter().enumerate() {
                            // `j + 8 + q div S ≤ ⌈W/S⌉ + 8`: inside the phase.
                            let v = V::load(&src[at + j..at + j + 8]);
                            acc = match fold {
                                Fold::Max if p == 0 && q == 0 => v,
                                Fold::Max => acc.max(v),
                                Fold::Mean => acc.add(v),
                            };
                        }
                    }
                    let mut out = [0f32; 8];
                    acc.store(&mut out);
                    store(c * yd.h + i0 + i, j, &out[..8.min(yd.w - j)]);
                }
            }
        }
    }
}

/// The reference's int8 mean, `(sum ± ⌊n/2⌋) / n` truncating and clamped, of an exact
/// window sum held in f32, computed in f32 (an integer division cost more than the rest of
/// the layer): `a = |sum| + ⌊n/2⌋ < 128.5·n < 2²⁴` is exact, and unless `a/n` is an integer
/// it lies at least `1/n` from one, more than half an ulp of `a/n < 256` for `n ≤ 255²`, so
/// the rounded quotient truncates to the same integer (`mean_code_is_the_reference_s`).
#[inline(always)]
pub(crate) fn mean_code(sum: f32, n: usize) -> i8 {
    let q = ((sum.abs() + (n / 2) as f32) / n as f32) as i32;
    (if sum < 0.0 { -q } else { q }).clamp(-128, 127) as i8
}

#[cfg(test)]
mod tests {
    /// Every window size the format allows, at sums around each multiple of `n` (where
    /// the rounding turns), against the reference's integer formula.
    #[test]
    fn mean_code_is_the_reference_s() {
        for k in 1..=255i32 {
            let n = k * k;
            for m in -128..=128 {
                for d in [
                    -n / 2 - 1,
                    -n / 2,
                    -n / 2 + 1,
                    -1,
                    0,
                    1,
                    n / 2 - 1,
                    n / 2,
                    n / 2 + 1,
                ] {
                    let sum = (m * n + d).clamp(-128 * n, 127 * n);
                    let want = if sum >= 0 {
                        (sum + n / 2) / n
                    } else {
                        (sum - n / 2) / n
                    };
                    let want = want.clamp(-128, 127) as i8;
                    assert_eq!(
                        super::mean_code(sum as f32, n as usize),
                        want,
                        "k {k} sum {sum}"
                    );
                }
            }
        }
    }
}
