//! aarch64 NEON local contrast normalization: `lcn_f32` and `lcn_s8`, equal to the
//! reference bit for bit (proven by `crate::check`).
//!
//! As `x86.rs`, with two `float32x4_t` per row for its one AVX2 vector: the two window
//! passes (the weighted mean `m` and deviation `s`, `C·S²` multiply-adds per position each:
//! nearly all the work) run eight output columns `k .. k + 8` of four rows at a time (eight
//! independent sums), each lane summing `window[p,q]·x` in the reference's `(i, p, q)`
//! order with a separate multiply and add (`FMUL` then `FADD`: never `FMLA`, which rounds
//! once), from the zero-padded stack copies of `padded.rs` (the deviation pass from the
//! squared deviations it computes once, between the passes). `√` and `/` are IEEE-exact
//! (`FSQRT`, `FDIV`). The sum of `s` over the map is the reference's sequential sum, and
//! the last pass (`v / max(c, s, eps)`, requantized for int8) the same operations per
//! element in slice loops (`padded.rs`); even or non-finite windows and layers too large
//! for the copies run the reference.
//!
//! `jarrett`'s LCN layers (9×9 window), executed aarch64 instructions per call, reference →
//! these (no aarch64 hardware here: instruction counts, not time):
//!
//! | layer    | int8                   | f32                    |
//! |----------|------------------------|------------------------|
//! | 8×28×28  | 37.38 M → 1.19 M (31×) | 34.01 M → 1.13 M (30×) |
//! | 16×10×10 | 7.26 M → 0.47 M (15×)  | 6.64 M → 0.45 M (15×)  |
//!
//! From `cargo test --release -p kestrel-runtime --target aarch64-unknown-linux-gnu --lib
//! --no-run`, then the test binary run as `KESTREL_LCN_CALLS=<reference|variant>,<s8|f32>,
//! <8x28x28|16x10x10>,<n> qemu-aarch64 -cpu cortex-a72 -L /usr/aarch64-linux-gnu -plugin
//! libinsn.so <binary> --ignored --exact kernels::lcn::padded::calls::lcn_calls` (QEMU 7.2;
//! `libinsn.so` a 20-line TCG plugin adding each executed translation block's instruction
//! count, `qemu_plugin_register_vcpu_tb_exec_inline`), one call = (count with `n = 4` −
//! count with `n = 0`) / 4. (Before the squared deviations were computed once: 1.62 M,
//! 1.56 M, 0.62 M, 0.59 M.)

use core::arch::aarch64::*;

use kestrel_format::QParams;

use super::padded::{self, pass, Padded, LANES};
use super::reference::Lcn;
use crate::kernels::Dims;

/// Eight lanes: columns `k .. k + 4`, `k + 4 .. k + 8`.
type F32x8 = [float32x4_t; 2];

/// f32: equal to [`super::reference::lcn_f32`] bit for bit.
pub(crate) fn lcn_f32(x: &[f32], xd: Dims, lcn: Lcn<'_>, scratch: &mut [f32], y: &mut [f32]) {
    // SAFETY: NEON is baseline on aarch64.
    padded::lcn_f32(x, xd, lcn, scratch, y, |l, m, s| unsafe { passes(l, m, s) })
}

/// int8: equal to [`super::reference::lcn_s8`] bit for bit.
pub(crate) fn lcn_s8(
    x: &[i8],
    qi: QParams,
    xd: Dims,
    lcn: Lcn<'_>,
    scratch: &mut [f32],
    qo: QParams,
    y: &mut [i8],
) {
    // SAFETY: NEON is baseline on aarch64.
    padded::lcn_s8(x, qi, xd, lcn, scratch, qo, y, |l, m, s| unsafe {
        passes(l, m, s)
    })
}

/// `a + b·c` lane by lane, rounding the product and then the sum (no fusion).
#[inline]
#[target_feature(enable = "neon")]
fn mul_add(a: F32x8, b: float32x4_t, c: F32x8) -> F32x8 {
    [
        vaddq_f32(a[0], vmulq_f32(b, c[0])),
        vaddq_f32(a[1], vmulq_f32(b, c[1])),
    ]
}

/// Lanes `k0 .. k0 + 8` of `N` output rows at once: `Σ_{i,p,q} window[p,q]·x[i·plane +
/// at[t] + p·wp + q ..]` in that order, `at[t]` being row `t`'s first window tap in padded
/// coordinates. Inlined into [`passes`].
#[inline]
#[target_feature(enable = "neon")]
fn window_sum<const N: usize>(
    x: &[f32],
    (c, plane, wp): (usize, usize, usize),
    window: &[f32],
    size: usize,
    at: [usize; N],
) -> [F32x8; N] {
    assert!(window.len() == size * size);
    let end = padded::loads_end(c, plane, size, wp);
    assert!(at.iter().all(|&a| a + end <= x.len()));
    let mut acc = [[vdupq_n_f32(0.0); 2]; N];
    for i in 0..c {
        for (p, row) in window.chunks_exact(size).enumerate() {
            for (q, &wpq) in row.iter().enumerate() {
                let wv = vdupq_n_f32(wpq);
                for t in 0..N {
                    // SAFETY: 8 f32s inside `x` (the bound above).
                    let v = unsafe {
                        let src = x.as_ptr().add(i * plane + at[t] + p * wp + q);
                        [vld1q_f32(src), vld1q_f32(src.add(4))]
                    };
                    acc[t] = mul_add(acc[t], wv, v);
                }
            }
        }
    }
    acc
}

/// `dst[..n] = v[..n]`, `n = min(len, 8)`.
#[inline]
#[target_feature(enable = "neon")]
fn store(dst: &mut [f32], v: F32x8) {
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` is 8 f32s, written 4 at 0 and 4 at 4.
    unsafe {
        vst1q_f32(lanes.as_mut_ptr(), v[0]);
        vst1q_f32(lanes.as_mut_ptr().add(4), v[1]);
    }
    let n = dst.len().min(8);
    dst[..n].copy_from_slice(&lanes[..n]);
}

/// The window passes: `m` (and `layer.m`), then `s` from the squared deviations. (A `neon`
/// function, as the ones above, only so that the intrinsics need no `unsafe`: NEON is
/// baseline on aarch64.)
#[target_feature(enable = "neon")]
fn passes(layer: Padded<'_>, m: &mut [f32], s: &mut [f32]) {
    debug_assert!(layer.sizes_hold() && LANES == 8);
    let Padded {
        xd,
        lcn,
        hp,
        wp,
        x: xpad,
        m: mpad,
    } = layer;
    let (c, window, size, r) = (xd.c, lcn.window, lcn.size, lcn.size / 2);
    let (h, w, dims) = (xd.h, xd.w, (xd.c, hp * wp, wp));
    let channels = vdupq_n_f32(c as f32);
    let div = |v: F32x8| [vdivq_f32(v[0], channels), vdivq_f32(v[1], channels)];
    pass(
        (h, w, wp),
        |at| window_sum::<4>(xpad, dims, window, size, at),
        |at| window_sum::<1>(xpad, dims, window, size, [at])[0],
        |j, k0, n, sum| {
            let mv = div(sum);
            store(&mut m[j * w + k0..][..n], mv);
            store(&mut mpad[(j + r) * wp + r + k0..][..n], mv);
        },
    );
    padded::square_deviations(xpad, mpad);
    pass(
        (h, w, wp),
        |at| window_sum::<4>(xpad, dims, window, size, at),
        |at| window_sum::<1>(xpad, dims, window, size, [at])[0],
        |j, k0, n, sum| {
            let sd = div(sum);
            store(
                &mut s[j * w + k0..][..n],
                [vsqrtq_f32(sd[0]), vsqrtq_f32(sd[1])],
            );
        },
    );
}
