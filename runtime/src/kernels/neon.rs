//! aarch64 NEON building blocks shared by the `<op>/neon.rs` kernels: the int8
//! requantization on four lanes, and `SDOT` (through `asm!`, because the
//! dot-product intrinsics are still unstable in `core::arch`).
//!
//! **Kernel sets.** NEON is baseline on aarch64, so the `neon` set needs no run-time
//! check. `SDOT` is the Armv8.2-A dot-product extension (`dotprod`: Cortex-A55, A76 and
//! later; not the Cortex-A53 or A72 of older boards): every aarch64 build compiles the
//! `SDOT` kernels as separate entries (`conv2d_s8_dot`, `fc_s8_dot`) whose bodies are
//! `#[target_feature(enable = "dotprod")]` code, gathered in the `neon-dotprod` set
//! (`Kernels::NEON_DOT`), which runs where `KernelSet::runs_here` finds `dotprod` (asked
//! of the CPU with the `std` feature, or guaranteed by the target, e.g.
//! `-C target-cpu=cortex-a76`). The plain entries never execute `SDOT`.

use core::arch::aarch64::*;

use crate::kernels::{DenseS8, Dims};

/// `acc + Σ_{t<4} a[4l+t]·b[4l+t]` in each 32-bit lane `l` (`SDOT`, wrapping like the i32
/// accumulators of the reference). Callable only from `dotprod` code (or `unsafe`, where
/// the CPU has `dotprod`), into which it inlines.
#[target_feature(enable = "dotprod")]
#[inline]
pub(crate) fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `SDOT` only reads and writes the three vector registers given to it, and this
    // function runs only where the CPU has the dot-product extension (its target feature).
    unsafe {
        core::arch::asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// One output channel's requantization on four accumulators at once, equal lane by lane to
/// [`DenseS8::output`]: `clamp(zp_out +sat requantize(bias + sum, m, shift), -128, 127)`.
#[derive(Clone, Copy)]
pub(crate) struct Requant {
    bias: int32x4_t,
    multiplier: int32x4_t,
    /// `2^(n−1)` with `n = 31 − shift ∈ 1..=62`: the round-half-up offset, for lanes 0–1
    /// and 2–3.
    round: [int64x2_t; 2],
    /// `−n`: `SSHL` by a negative amount is an arithmetic (flooring) shift right.
    neg_n: [int64x2_t; 2],
    zp_out: int32x4_t,
}

impl Requant {
    /// Channel `o` of `p` (its multiplier and shift are in range: checked at load time).
    #[inline(always)]
    pub(crate) fn new(p: &DenseS8<'_>, o: usize) -> Self {
        Self::channels(p, [o; 4])
    }

    /// Lane `l` requantizes for output channel `o[l]` (each in range, as for [`Self::new`]).
    #[inline(always)]
    pub(crate) fn channels(p: &DenseS8<'_>, o: [usize; 4]) -> Self {
        let n = o.map(|o| 31 - p.shift[o] as i64);
        debug_assert!(n.iter().all(|n| (1..=62).contains(n)));
        let (round, neg_n) = (n.map(|n| 1i64 << (n - 1)), n.map(|n| -n));
        let (bias, multiplier) = (o.map(|o| p.bias[o]), o.map(|o| p.multiplier[o]));
        // SAFETY: NEON is baseline on aarch64; these only load vectors from local arrays
        // of exactly their length.
        unsafe {
            Requant {
                bias: vld1q_s32(bias.as_ptr()),
                multiplier: vld1q_s32(multiplier.as_ptr()),
                round: [vld1q_s64(round.as_ptr()), vld1q_s64(round[2..].as_ptr())],
                neg_n: [vld1q_s64(neg_n.as_ptr()), vld1q_s64(neg_n[2..].as_ptr())],
                zp_out: vdupq_n_s32(p.zp_out),
            }
        }
    }

    /// Output codes of four accumulators `Σ w·(x − zp_in)`, as i32 lanes in `[-128, 127]`.
    #[inline(always)]
    pub(crate) fn codes(&self, sum: int32x4_t) -> int32x4_t {
        // SAFETY: NEON is baseline on aarch64; register-only arithmetic.
        unsafe {
            let acc = vaddq_s32(self.bias, sum); // wraps, like `wrapping_add`
                                                 // acc·m exactly in 64 bits (|acc·m| < 2^62), + 2^(n−1) (no overflow), >> n.
            let lo = vmull_s32(vget_low_s32(acc), vget_low_s32(self.multiplier));
            let hi = vmull_high_s32(acc, self.multiplier);
            let lo = vshlq_s64(vaddq_s64(lo, self.round[0]), self.neg_n[0]);
            let hi = vshlq_s64(vaddq_s64(hi, self.round[1]), self.neg_n[1]);
            // Saturate to i32 (as `requantize`), add zp_out saturating, clamp to int8.
            let r = vcombine_s32(vqmovn_s64(lo), vqmovn_s64(hi));
            let y = vqaddq_s32(r, self.zp_out);
            vminq_s32(vmaxq_s32(y, vdupq_n_s32(-128)), vdupq_n_s32(127))
        }
    }

    /// Requantizes `B` (1, 2 or 4) accumulator vectors and writes their `4·B` codes to
    /// `y[..4·B]`.
    #[inline(always)]
    pub(crate) fn store<const B: usize>(&self, sums: &[int32x4_t; B], y: &mut [i8]) {
        let y = &mut y[..4 * B];
        // SAFETY: NEON is baseline on aarch64; the codes are in [-128, 127], so the
        // truncating narrows are exact; every store writes inside `y`'s `4·B` bytes.
        unsafe {
            let c = sums.map(|s| vmovn_s32(self.codes(s)));
            match B {
                4 => {
                    let v = vcombine_s8(
                        vmovn_s16(vcombine_s16(c[0], c[1])),
                        vmovn_s16(vcombine_s16(c[2], c[3])),
                    );
                    vst1q_s8(y.as_mut_ptr(), v);
                }
                2 => vst1_s8(y.as_mut_ptr(), vmovn_s16(vcombine_s16(c[0], c[1]))),
                _ => {
                    debug_assert_eq!(B, 1);
                    let mut t = [0i8; 8];
                    vst1_s8(t.as_mut_ptr(), vmovn_s16(vcombine_s16(c[0], c[0])));
                    y.copy_from_slice(&t[..4 * B]);
                }
            }
        }
    }
}

/// Covers the output columns `lo..hi` (`hi − lo ≥ small`) with blocks: `big`-wide ones
/// while they fit, then `small`-wide ones, the last moved back to end at `hi` (it may
/// overlap the one before: recomputing an output writes the same value). Calls
/// `f(start, is_big)` for each.
#[inline(always)]
pub(crate) fn cover(
    lo: usize,
    hi: usize,
    big: usize,
    small: usize,
    mut f: impl FnMut(usize, bool),
) {
    debug_assert!(hi - lo >= small && big >= small);
    let mut j = lo;
    while hi - j >= big {
        f(j, true);
        j += big;
    }
    while hi - j >= small {
        f(j, false);
        j += small;
    }
    if j < hi {
        f(hi - small, false);
    }
}

/// Strided loads for pooling: lane `l` of the result is `src[l·S + q]` (`S` = stride in
/// `1..=4`, `q < S`), through `LD1`..`LD4`, which read `LANES·S` elements from `src` and
/// de-interleave them.
macro_rules! strided {
    ($(#[$m:meta])* $name:ident, $t:ty, $v:ty, $ld1:ident, $ld2:ident, $ld3:ident, $ld4:ident) => {
        $(#[$m])*
        ///
        /// # Safety
        /// `src` must be valid for reading `LANES·S` elements.
        #[inline(always)]
        pub(crate) unsafe fn $name<const S: usize>(src: *const $t, q: usize) -> $v {
            debug_assert!(q < S);
            // SAFETY: the caller guarantees `LANES·S` readable elements, exactly what the
            // `LDn` with `n = S` reads; NEON is baseline on aarch64.
            unsafe {
                match (S, q) {
                    (1, _) => $ld1(src),
                    (2, 0) => $ld2(src).0,
                    (2, _) => $ld2(src).1,
                    (3, 0) => $ld3(src).0,
                    (3, 1) => $ld3(src).1,
                    (3, _) => $ld3(src).2,
                    (_, 0) => $ld4(src).0,
                    (_, 1) => $ld4(src).1,
                    (_, 2) => $ld4(src).2,
                    _ => $ld4(src).3,
                }
            }
        }
    };
}

strided!(
    /// `LANES` = 16 int8 lanes.
    strided_s8x16, i8, int8x16_t, vld1q_s8, vld2q_s8, vld3q_s8, vld4q_s8
);
strided!(
    /// `LANES` = 8 int8 lanes.
    strided_s8x8, i8, int8x8_t, vld1_s8, vld2_s8, vld3_s8, vld4_s8
);
strided!(
    /// `LANES` = 4 f32 lanes.
    strided_f32x4, f32, float32x4_t, vld1q_f32, vld2q_f32, vld3q_f32, vld4q_f32
);

/// The `k × k` windows of a block of consecutive pooling outputs `y[c, i, j0..]` (stride
/// `S`): where in `x` the strided load of each window tap starts.
#[derive(Clone, Copy)]
pub(crate) struct PoolBlock {
    /// Offset in `x` of the first output's tap `(0, 0)`: `x[c, i·S, j0·S]`.
    pub corner: usize,
    /// Input width `W`.
    pub w: usize,
    /// Window size.
    pub k: usize,
}

impl PoolBlock {
    /// Start of the `S`-strided load of tap `(p, q)`, and its lane selector `q % S`.
    #[inline(always)]
    pub(crate) fn tap<const S: usize>(&self, p: usize, q: usize) -> (usize, usize) {
        (self.corner + p * self.w + q / S * S, q % S)
    }

    /// Whether every load of `lanes` outputs (each `lanes·S` elements long) ends inside a
    /// slice of `len` elements.
    #[inline(always)]
    pub(crate) fn fits<const S: usize>(&self, lanes: usize, len: usize) -> bool {
        let (last, _) = self.tap::<S>(self.k - 1, self.k - 1);
        last + lanes * S <= len
    }
}

/// Walks a pooling layer's output `y` `[C, OH, OW]` (window `k`, stride `S`, input `xd`
/// of `x_len` elements) row by row in SIMD blocks of `lanes.0`, then `lanes.1`, outputs
/// (see [`cover`]): `vector(y, block, o, lanes)` computes the outputs `o..o + lanes`, and
/// `scalar(y, o)` output `o` alone, for rows narrower than `lanes.1` and for blocks whose
/// strided loads would read past `x`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn pool_rows<const S: usize, T>(
    xd: Dims,
    yd: Dims,
    k: usize,
    x_len: usize,
    (big, small): (usize, usize),
    y: &mut [T],
    mut scalar: impl FnMut(&mut [T], usize),
    mut vector: impl FnMut(&mut [T], PoolBlock, usize, usize),
) {
    for c in 0..yd.c {
        for i in 0..yd.h {
            let row = (c * yd.h + i) * yd.w; // y[c, i, ..]
            if yd.w < small {
                (row..row + yd.w).for_each(|o| scalar(y, o));
                continue;
            }
            cover(0, yd.w, big, small, |j0, is_big| {
                let lanes = if is_big { big } else { small };
                let blk = PoolBlock {
                    corner: (c * xd.h + i * S) * xd.w + j0 * S,
                    w: xd.w,
                    k,
                };
                if blk.fits::<S>(lanes, x_len) {
                    vector(y, blk, row + j0, lanes);
                } else {
                    (row + j0..row + j0 + lanes).for_each(|o| scalar(y, o));
                }
            });
        }
    }
}

/// The taps `(p, q)` of a `k × k` window in the reference's order.
#[inline(always)]
pub(crate) fn taps(k: usize) -> impl Iterator<Item = (usize, usize)> {
    // One flat range: `flat_map`'s iterator did not fold away in the hot loops.
    (0..k * k).map(move |n| (n / k, n % k))
}

/// `dst[i] = src[i]` widened to f32 (exact, like [`crate::kernels::Widen`]).
pub(crate) fn widen_f16(src: &[half::f16], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len());
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_f32();
    }
}
