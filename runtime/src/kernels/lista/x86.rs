//! x86-64 AVX2 LISTA steps: `lista_step_s8` and `lista_step_f32` (the latter also FISTA's
//! step, [`crate::sparse`]) and `lista_step_f16` (the f32 step with `S` widened by F16C's
//! `vcvtph2ps`); the first shrinks are the reference's.
//!
//! Shapes as in `reference.rs`: `S` column-major `[N, N]` (`s[j·N + i] = S[i, j]`), so
//! column `j` is `N` contiguous values, one per row. Both steps vectorize across rows `i`
//! and walk the non-zero `h[j]` in ascending `j`, adding column `j` times `h[j]` to all
//! rows at once: the per-row operations and their order are the reference's.
//!
//! **int8.** `d_j = h_q[j] − zp_h ∈ [−255, 255]` fits an i16. The non-zero `d_j` are taken
//! two at a time; the two columns are widened to i16, interleaved, and multiplied with
//! the pair `(d_a, d_b)` by `_mm256_madd_epi16` (`|s_a·d_a + s_b·d_b| ≤ 2·128·255 < 2^31`:
//! no saturation), then added to the i32 row accumulators in `acc` (scratch) with
//! wrapping adds. Addition modulo 2^32 does not depend on the order, so the sums are the
//! reference's bit for bit. An odd last column pairs with itself and `d = 0`. The
//! interleave works inside 128-bit halves, so a block of 16 rows is kept as rows
//! `[0‥3, 8‥11]` and `[4‥7, 12‥15]` and put back in order once at the end. Rows past the
//! last full block of 16 are summed by scalar code. The output stage (`b_acc`, saturating
//! add, shrink, requantize, clamp) is the reference's [`ListaS8::output`], per row.
//!
//! **f32.** Eight rows per vector, up to eight vectors (64 rows) in registers; for each
//! non-zero `h[j]` in ascending `j`, `acc += S[rows, j] · h[j]` with a separate multiply and
//! add (no FMA), exactly the reference's per-row sum. Then `b + acc` and the shrink, per row,
//! by the reference's scalar code. Rows past the last multiple of 8 are summed by scalar code.

use core::arch::x86_64::*;

use super::reference::{self, ListaS8};
use crate::kernels::shrink::reference::shrink1_f32;
use crate::kernels::Widen;
use half::f16;

pub(crate) use reference::{lista_first_f32, lista_first_s8};

/// One int8 step, equal to [`reference::lista_step_s8`] bit for bit (module docs); `acc`
/// (`[N]` i32) is scratch.
pub(crate) fn lista_step_s8(p: &ListaS8<'_>, b: &[i8], h_in: &[i8], acc: &mut [i32], h: &mut [i8]) {
    let n = h.len();
    debug_assert!(p.s.len() == n * n && b.len() == n && h_in.len() == n && acc.len() == n);
    // SAFETY: this file runs only through `Kernels::VARIANT`, which a plan uses only where the CPU has AVX2 and F16C (`KernelSet::runs_here`).
    unsafe { step_s8_avx2(p, h_in, acc) };
    for (i, (h, &b)) in h.iter_mut().zip(b).enumerate() {
        *h = p.output(i, b, acc[i]);
    }
}

/// `acc[i] = Σ_{d_j ≠ 0} S[i, j]·d_j` (wrapping) for every row `i`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn step_s8_avx2(p: &ListaS8<'_>, h_in: &[i8], acc: &mut [i32]) {
    let n = acc.len();
    let full = n / 16 * 16;
    acc.fill(0);
    p.column_pairs(h_in, |first, second| {
        add_pair(p.s, n, full, acc, first, second)
    });
    // Blocks of 16 rows back in order: [0‥3, 8‥11] [4‥7, 12‥15] → [0‥7] [8‥15].
    for r0 in (0..full).step_by(16) {
        let blk = &mut acc[r0..r0 + 16];
        // SAFETY: `blk` is 16 i32s (64 bytes).
        unsafe {
            let lo = _mm256_loadu_si256(blk.as_ptr().cast());
            let hi = _mm256_loadu_si256(blk.as_ptr().add(8).cast());
            let a = _mm256_permute2x128_si256::<0x20>(lo, hi);
            let c = _mm256_permute2x128_si256::<0x31>(lo, hi);
            _mm256_storeu_si256(blk.as_mut_ptr().cast(), a);
            _mm256_storeu_si256(blk.as_mut_ptr().add(8).cast(), c);
        }
    }
    // The last `n % 16` rows, scalar, in the same wrapping arithmetic.
    for (i, acc) in acc.iter_mut().enumerate().skip(full) {
        *acc = p.row_acc(i, h_in);
    }
}

/// Adds `S[·, a]·d_a + S[·, c]·d_c` to the first `full` rows of `acc`, in the block
/// layout of the module docs.
#[target_feature(enable = "avx2")]
#[inline]
fn add_pair(
    s: &[i8],
    n: usize,
    full: usize,
    acc: &mut [i32],
    (a, da): (usize, i32),
    (c, dc): (usize, i32),
) {
    let (col_a, col_c) = (&s[a * n..][..n], &s[c * n..][..n]);
    // (d_a, d_c) in every i32 lane, as two i16: the madd pairs.
    let d = _mm256_set1_epi32((da as i16 as u16 as i32) | ((dc as i16 as i32) << 16));
    for r0 in (0..full).step_by(16) {
        // SAFETY: `r0 + 16 ≤ full ≤ n`: 16 readable bytes of each column, 16 i32s of `acc`.
        unsafe {
            let va = _mm256_cvtepi8_epi16(_mm_loadu_si128(col_a.as_ptr().add(r0).cast()));
            let vc = _mm256_cvtepi8_epi16(_mm_loadu_si128(col_c.as_ptr().add(r0).cast()));
            let lo = _mm256_madd_epi16(_mm256_unpacklo_epi16(va, vc), d);
            let hi = _mm256_madd_epi16(_mm256_unpackhi_epi16(va, vc), d);
            let pa = acc.as_mut_ptr().add(r0);
            let pb = pa.add(8);
            _mm256_storeu_si256(
                pa.cast(),
                _mm256_add_epi32(_mm256_loadu_si256(pa.cast()), lo),
            );
            _mm256_storeu_si256(
                pb.cast(),
                _mm256_add_epi32(_mm256_loadu_si256(pb.cast()), hi),
            );
        }
    }
}

/// One float step, f32 `S`, equal to [`reference::lista_step_f32`] bit for bit (module
/// docs). Also FISTA's step.
pub(crate) fn lista_step_f32(s: &[f32], b: &[f32], theta: &[f32], h_in: &[f32], h: &mut [f32]) {
    step_float(s, b, theta, h_in, h)
}

/// One float step, f16 `S` widened on the fly (F16C `vcvtph2ps`, exact like the
/// reference's widening), equal to [`reference::lista_step_f16`] bit for bit (every AVX2
/// CPU has F16C; the set requires both).
pub(crate) fn lista_step_f16(s: &[f16], b: &[f32], theta: &[f32], h_in: &[f32], h: &mut [f32]) {
    step_float(s, b, theta, h_in, h)
}

/// A column element the AVX2 step loads eight of at a time as f32.
trait Load8: Widen {
    /// Eight elements from `p`, widened to f32.
    ///
    /// # Safety
    /// The CPU must support AVX2 (and F16C for `f16`); `p` must point to 8 readable elements.
    unsafe fn load8(p: *const Self) -> __m256;
}

impl Load8 for f32 {
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> __m256 {
        // SAFETY: the caller's contract.
        unsafe { _mm256_loadu_ps(p) }
    }
}

impl Load8 for f16 {
    #[inline(always)]
    unsafe fn load8(p: *const f16) -> __m256 {
        // SAFETY: the caller's contract: 8 f16s are 16 readable bytes, and the CPU has
        // F16C.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }
}

fn step_float<W: Load8>(s: &[W], b: &[f32], theta: &[f32], h_in: &[f32], h: &mut [f32]) {
    let n = h.len();
    debug_assert!(s.len() == n * n && b.len() == n && theta.len() == n && h_in.len() == n);
    let full = n / 8 * 8;
    let mut r0 = 0;
    while r0 < full {
        // Blocks of 8 rows in this pass: 8, 4, 2 or 1 (each a separate monomorphization).
        let blocks = match (full - r0) / 8 {
            8.. => 8,
            4..=7 => 4,
            2 | 3 => 2,
            _ => 1,
        };
        // SAFETY: this file runs only through `Kernels::VARIANT`, which a plan uses only where the CPU has AVX2 and F16C (`KernelSet::runs_here`);
        // rows `r0 .. r0 + 8·blocks` lie inside `full ≤ n`.
        unsafe {
            match blocks {
                8 => step_f32_avx2::<W, 8>(s, b, theta, h_in, h, r0),
                4 => step_f32_avx2::<W, 4>(s, b, theta, h_in, h, r0),
                2 => step_f32_avx2::<W, 2>(s, b, theta, h_in, h, r0),
                _ => step_f32_avx2::<W, 1>(s, b, theta, h_in, h, r0),
            }
        }
        r0 += 8 * blocks;
    }
    // The last `n % 8` rows: the reference's scalar sum.
    for (i, h) in h.iter_mut().enumerate().skip(full) {
        *h = super::reference::step_row(s, b, theta, h_in, i);
    }
}

/// Rows `r0 .. r0 + 8·B` of the float step.
///
/// # Safety
/// The CPU must support AVX2 and F16C, and `r0 + 8·B ≤ h.len()`.
#[target_feature(enable = "avx2,f16c")]
unsafe fn step_f32_avx2<W: Load8, const B: usize>(
    s: &[W],
    b: &[f32],
    theta: &[f32],
    h_in: &[f32],
    h: &mut [f32],
    r0: usize,
) {
    let n = h.len();
    debug_assert!(r0 + 8 * B <= n);
    let mut acc = [_mm256_setzero_ps(); B];
    for (j, &hj) in h_in.iter().enumerate() {
        if hj != 0.0 {
            let col = &s[j * n + r0..][..8 * B];
            let hv = _mm256_set1_ps(hj);
            for (k, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `col` has `8·B` elements; AVX2 (and F16C where `W` is f16) by
                // this function's contract.
                let sv = unsafe { W::load8(col.as_ptr().add(8 * k)) };
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(sv, hv));
            }
        }
    }
    let mut sums = [0f32; 8];
    for (k, acc) in acc.iter().enumerate() {
        // SAFETY: `sums` is 8 f32s.
        unsafe { _mm256_storeu_ps(sums.as_mut_ptr(), *acc) };
        for (l, &sum) in sums.iter().enumerate() {
            let i = r0 + 8 * k + l;
            h[i] = shrink1_f32(b[i] + sum, theta[i]);
        }
    }
}
