//! aarch64 NEON convolutions, bit-exact with `reference.rs` (proven by `crate::check`).
//!
//! Shapes as in the reference: `x` `[C, H, W]`, `weight` `[OC, C, KH, KW]`, `y` `[OC, OH, OW]`.
//!
//! For stride 1, the *interior* output columns of a row (those whose `KW` taps all fall
//! inside the input row) are computed 4–16 at a time, one accumulator lane per output
//! pixel: for each tap, the pixels' inputs are `x[c, r, j0 + kq − pad ..]`, contiguous.
//! int8 (with `KW ≤ 8`) does the padded edge columns in one 8-column block per side
//! ([`Edge`]): each kernel row's input window is assembled in a register by a table lookup
//! from one load, with `zp_in` (real zero) in the padding. The remaining columns run the
//! reference's per-pixel loop over in-bounds taps. Kernel rows that fall in the padding are
//! skipped, as in the reference. int8 requantization runs on four lanes ([`Requant`]).
//!
//! For stride > 1 the lanes are *output channels* instead: 8 at a time (4 for the last
//! group; lanes past `OC` get zero weights and are not stored), the weights repacked on
//! the stack as `[tap][lane]` with taps in the reference's `(c, kp, kq)` order, each input
//! value broadcast to every lane. Output pixels whose taps all lie inside the input row
//! (`interior`) go [`STRIDED_PIXELS`] at a time, sharing each tap's weight load; the
//! others one at a time, skipping out-of-bounds taps through [`kernel_rows`] and
//! [`kernel_cols`] exactly as the reference does. Each lane thus performs its channel's
//! reference operations in order: f32 `vmulq_f32` then `vaddq_f32`; int8 `w·(x − zp_in)`
//! as i16 × i16 into i32 (`SMLAL`, exact products, wrapping sums), then [`Requant`] with
//! per-lane channel parameters ([`Requant::channels`]). Layers with more than
//! [`STRIDED_TAPS`] taps per output channel run the per-pixel loop. The `neon-dotprod` set
//! runs the same `SMLAL` path at stride > 1 (no `SDOT` there).
//!
//! No scratch: at most 2 KiB of stack at stride 1; at stride > 1 the packed weights,
//! 16 KiB (f32) or 8 KiB (int8) at most.
//!
//! Stride > 1 figures (no aarch64 hardware measured: `qemu-aarch64` user-mode emulation
//! time, a crude proxy that says nothing exact about a real core; on a shared 2-core
//! host, so noisy): 5×5, stride 2, pad 2, 8 → 16 channels on 28×28, best of 5 rounds of
//! 20 calls, ranges over 2–3 runs, from
//! `CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu cortex-a72 -L
//! /usr/aarch64-linux-gnu" cargo test -p kestrel-runtime --target aarch64-unknown-linux-gnu
//! --lib -- strided_timing --ignored --nocapture`:
//!
//! | kernel | reference | per-pixel loop (before) | channels across lanes |
//! |--------|-----------|-------------------------|-----------------------|
//! | f32    | 18–30 ms  | 10.0–10.8 ms            | 3.7–5.5 ms            |
//! | int8   | 19–29 ms  | 8.7–8.9 ms              | 1.7–3.7 ms            |
//!
//! (`-cpu max`, with `dotprod`: int8 `neon` 1.7 ms, `neon-dotprod` 2.3 ms, the same code.)
//!
//! **Kernel sets.** [`conv2d_s8`] is the `neon` set's int8 kernel; [`conv2d_s8_dot`] the
//! `neon-dotprod` set's, the same code with the `SDOT` paths below, compiled on every
//! aarch64 build as `#[target_feature(enable = "dotprod")]` functions and run only where
//! the CPU has `dotprod` (see `kernels/neon.rs`). The f32 kernels are shared.
//!
//! - int8 with `dotprod`: `SDOT` multiplies 4 taps by 4 inputs per lane. A table lookup
//!   (`TBL`) turns 8 input bytes from `x[j0 + 4·g ..]` into the four overlapping windows
//!   `x[j + 4g .. j + 4g + 4]` of pixels `j0..j0+4`; the weights, packed per output channel
//!   on the stack as one word per 4 taps (`DotW`), are zero past `KW`, so the extra bytes
//!   read multiply nothing. `SDOT` works on raw codes, so the sum is `Σ w·x − zp_in·Σ w`
//!   over the kernel rows used, equal to the reference's `Σ w·(x − zp_in)` modulo 2^32,
//!   which is all an i32 accumulator keeps.
//! - int8 without `dotprod` (and layers too large for `DotW`): `x − zp_in` widened to i16
//!   (`SSUBL`), times the broadcast weight, accumulated in i32 (`SMLAL`): exact products,
//!   wrapping sums.
//! - f32: the same interior blocks (edges per pixel), summing `w·x` in the reference's
//!   `(c, kp, kq)` order with separate multiply and add (no fused multiply-add), so every
//!   lane rounds as the reference does.

use core::arch::aarch64::*;
use core::ops::Range;

use kestrel_format::ConvGeom;

use crate::kernels::neon::{cover, Requant};
use crate::kernels::{DenseF, DenseS8, Dims};
use half::f16;

/// Output columns `lo..hi` whose taps `j·stride + kq − pad` (`kq < KW`) all lie in `0..W`.
fn interior(g: ConvGeom, w: usize, ow: usize) -> Range<usize> {
    let lo = g.pad.div_ceil(g.stride).min(ow);
    let hi = match (w + g.pad).checked_sub(g.kw) {
        Some(last) => (last / g.stride + 1).min(ow),
        None => 0,
    };
    lo..hi.max(lo)
}

/// Kernel rows `kp` whose input row `i·stride + kp − pad` lies in `0..H`.
fn kernel_rows(i: usize, g: ConvGeom, h: usize) -> Range<usize> {
    let top = i * g.stride;
    let lo = g.pad.saturating_sub(top);
    let hi = (h + g.pad).saturating_sub(top).min(g.kh);
    lo..hi.max(lo)
}

/// The kernel columns of output column `j` that fall inside the input row, and the input
/// columns they read (`j·stride + kq − pad`): two ranges of the same length.
struct Cols {
    taps: Range<usize>,
    input: Range<usize>,
}

fn kernel_cols(j: usize, g: ConvGeom, w: usize) -> Cols {
    let left = j * g.stride;
    let lo = g.pad.saturating_sub(left);
    let hi = (w + g.pad).saturating_sub(left).min(g.kw).max(lo);
    let start = (left + lo).saturating_sub(g.pad).min(w); // `.min`: when no tap is inside
    Cols {
        taps: lo..hi,
        input: start..start + (hi - lo),
    }
}

/// int8 (`neon` set): see the module docs;
/// `y = clamp(zp_out + requantize(bias + Σ w·(x − zp_in)))`.
pub(crate) fn conv2d_s8(
    x: &[i8],
    xd: Dims,
    p: DenseS8<'_>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [i8],
    _scratch: &mut [u8],
) {
    // SAFETY: without `SDOT` the body needs nothing past baseline NEON.
    unsafe { conv2d_s8_body::<false>(x, xd, p, g, yd, y) }
}

/// int8 (`neon-dotprod` set): [`conv2d_s8`] with `SDOT` (see the module docs).
pub(crate) fn conv2d_s8_dot(
    x: &[i8],
    xd: Dims,
    p: DenseS8<'_>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [i8],
    _scratch: &mut [u8],
) {
    // SAFETY: only the `neon-dotprod` kernel table (`Kernels::NEON_DOT`) holds this
    // function, and a plan uses that table only where the CPU has `dotprod`
    // (`KernelSet::runs_here`).
    unsafe { conv2d_s8_sdot(x, xd, p, g, yd, y) }
}

/// # Safety
/// The CPU must have `dotprod`.
#[target_feature(enable = "dotprod")]
unsafe fn conv2d_s8_sdot(x: &[i8], xd: Dims, p: DenseS8<'_>, g: ConvGeom, yd: Dims, y: &mut [i8]) {
    // SAFETY: `dotprod` by this function's contract.
    unsafe { conv2d_s8_body::<true>(x, xd, p, g, yd, y) }
}

/// # Safety
/// With `D` (`SDOT`), the CPU must have `dotprod`: only then does a [`Row`] carry packed
/// weights ([`DotW`]), which is what the `SDOT` paths require.
#[inline(always)]
unsafe fn conv2d_s8_body<const D: bool>(
    x: &[i8],
    xd: Dims,
    p: DenseS8<'_>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [i8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    debug_assert_eq!(p.weight.len(), yd.c * xd.c * g.kh * g.kw);
    if g.stride > 1 && strided_s8(x, xd, &p, g, yd, y) {
        return;
    }
    let per_out = xd.c * g.kh * g.kw;
    let inner = if g.stride == 1 {
        interior(g, xd.w, yd.w)
    } else {
        0..0
    };
    let tail = Tail::new(x);
    // The padded edge columns in one block each (left, right), where that covers them.
    // (At stride 1 each edge has `pad` columns.)
    let edges = if g.stride == 1 && g.kw <= 8 && g.pad <= 8 && inner.len() >= 8 {
        [
            Edge::new(0, g, xd.w, yd.w).filter(|_| inner.start > 0),
            Edge::new(yd.w - 8, g, xd.w, yd.w).filter(|_| inner.end < yd.w),
        ]
    } else {
        [None, None]
    };
    let scalar_cols = |range: Range<usize>, edge: &Option<Edge>| match edge {
        Some(_) => 0..0,
        None => range,
    };
    let scalar = [
        scalar_cols(0..inner.start, &edges[0]),
        scalar_cols(inner.end..yd.w, &edges[1]),
    ];
    // Interior columns the edge blocks leave, at least 8 wide (inside `inner`, which is
    // where there are edge blocks) if any.
    let mut cols = inner.clone();
    if edges[0].is_some() {
        cols.start = cols.start.max(8);
    }
    if edges[1].is_some() {
        cols.end = cols.end.min(yd.w - 8);
    }
    if edges.iter().any(Option::is_some) && !cols.is_empty() && cols.len() < 8 {
        let start = cols.start.min(inner.end - 8);
        cols = start..cols.end.max(start + 8);
    }
    for o in 0..yd.c {
        let w_o = &p.weight[o * per_out..][..per_out]; // [C, KH, KW]
        let rq = Requant::new(&p, o);
        let dot = if D { DotW::new(w_o, xd.c, g) } else { None };
        for i in 0..yd.h {
            let y_row = &mut y[(o * yd.h + i) * yd.w..][..yd.w]; // [OW]
            let rows = kernel_rows(i, g, xd.h);
            let row = Row {
                x,
                xd,
                w_o,
                g,
                zp: p.zp_in,
                rows,
                top: i,
                tail: &tail,
                dot: dot.as_ref(),
            };
            for j in scalar[0].clone().chain(scalar[1].clone()) {
                y_row[j] = p.output(o, row.pixel(j));
            }
            for edge in edges.iter().flatten() {
                rq.store(&row.block_edge(edge), &mut y_row[edge.j0..]);
            }
            if !cols.is_empty() {
                row.interior_s8(cols.clone(), &rq, &p, o, y_row);
            }
        }
    }
}

/// One output row `i` of one output channel: its input, weights and valid kernel rows.
#[derive(Clone)]
struct Row<'a> {
    x: &'a [i8],
    xd: Dims,
    w_o: &'a [i8], // [C, KH, KW]
    g: ConvGeom,
    zp: i32,
    /// Kernel rows inside the input (the others read padding, which contributes nothing).
    rows: Range<usize>,
    /// Output row index `i`.
    top: usize,
    /// The end of `x`, for loads that would pass it.
    tail: &'a Tail,
    /// The channel's weights packed for `SDOT`, where they fit. `Some` only in
    /// `conv2d_s8_body::<true>`, so only where the CPU has `dotprod`: the `SDOT` paths
    /// rely on it.
    dot: Option<&'a DotW>,
}

impl Row<'_> {
    /// Input row of kernel row `kp` (in `self.rows`).
    fn input_row(&self, kp: usize) -> usize {
        self.top * self.g.stride + kp - self.g.pad
    }

    /// The reference's `Σ w·(x − zp_in)` for output column `j`, skipping padding.
    fn pixel(&self, j: usize) -> i32 {
        let (g, xd) = (self.g, self.xd);
        let cols = kernel_cols(j, g, xd.w);
        let mut sum = 0i32;
        for c in 0..xd.c {
            for kp in self.rows.clone() {
                let w_row = &self.w_o[(c * g.kh + kp) * g.kw..][cols.taps.clone()];
                let x_row = &self.x[(c * xd.h + self.input_row(kp)) * xd.w..][cols.input.clone()];
                for (&w, &x) in w_row.iter().zip(x_row) {
                    sum = sum.wrapping_add(w as i32 * (x as i32 - self.zp));
                }
            }
        }
        sum
    }

    /// Interior columns `cols` (stride 1), in blocks.
    fn interior_s8(
        &self,
        cols: Range<usize>,
        rq: &Requant,
        p: &DenseS8<'_>,
        o: usize,
        y: &mut [i8],
    ) {
        if let Some(dot) = self.dot {
            // SAFETY: a row has `dot` only where the CPU has `dotprod` (see `Row::dot`).
            unsafe { self.interior_dot(dot, cols, rq, p, o, y) };
            return;
        }
        if cols.len() < 8 {
            cols.for_each(|j| y[j] = p.output(o, self.pixel(j)));
            return;
        }
        cover(cols.start, cols.end, 16, 8, |j0, big| {
            if big {
                rq.store(&self.block_widen::<4>(j0), &mut y[j0..]);
            } else {
                rq.store(&self.block_widen::<2>(j0), &mut y[j0..]);
            }
        });
    }

    /// Interior columns `cols` (stride 1) with `SDOT`, in blocks.
    #[target_feature(enable = "dotprod")]
    fn interior_dot(
        &self,
        dot: &DotW,
        cols: Range<usize>,
        rq: &Requant,
        p: &DenseS8<'_>,
        o: usize,
        y: &mut [i8],
    ) {
        if cols.len() < 4 {
            cols.for_each(|j| y[j] = p.output(o, self.pixel(j)));
            return;
        }
        let corr = dot.zp_weight_sum(self.rows.clone(), self.zp);
        // Blocks of 16, then one of 8, then 4s, the last moved back to end at `cols.end`.
        let mut j0 = cols.start;
        while cols.end - j0 >= 16 {
            rq.store(&self.block_dot::<4>(dot, j0, corr), &mut y[j0..]);
            j0 += 16;
        }
        if cols.end - j0 >= 8 {
            rq.store(&self.block_dot::<2>(dot, j0, corr), &mut y[j0..]);
            j0 += 8;
        }
        while cols.end - j0 >= 4 {
            rq.store(&self.block_dot::<1>(dot, j0, corr), &mut y[j0..]);
            j0 += 4;
        }
        if j0 < cols.end {
            let j0 = cols.end - 4;
            rq.store(&self.block_dot::<1>(dot, j0, corr), &mut y[j0..]);
        }
    }

    /// `Σ w·(x − zp_in)` of the `4·B` interior pixels `j0..` (`B` even), i16 products
    /// widened into i32 lanes.
    fn block_widen<const B: usize>(&self, j0: usize) -> [int32x4_t; B] {
        let (g, xd) = (self.g, self.xd);
        debug_assert!(B.is_multiple_of(2) && j0 >= g.pad && j0 + 4 * B + g.kw <= xd.w + g.pad + 1);
        // SAFETY: NEON is baseline on aarch64. Pixel `j0 + l` reads input column
        // `j0 + l + kq − pad`, in `0..W` for interior pixels (asserted above), so each 8-byte
        // load at `x_row[j0 + kq − pad + 8·h]`, `8·h + 8 ≤ 4·B`, stays inside `x_row`.
        unsafe {
            let zp8 = vdup_n_s8(self.zp as i8); // zp_in ∈ [-128, 127]
            let mut acc = [vdupq_n_s32(0); B];
            for c in 0..xd.c {
                for kp in self.rows.clone() {
                    let x_row = &self.x[(c * xd.h + self.input_row(kp)) * xd.w..][..xd.w];
                    let w_row = &self.w_o[(c * g.kh + kp) * g.kw..][..g.kw];
                    for (kq, &w) in w_row.iter().enumerate() {
                        let src = x_row.as_ptr().add(j0 + kq - g.pad);
                        for h in 0..B / 2 {
                            // x − zp_in ∈ [-255, 255] in i16, times w, into i32.
                            let d = vsubl_s8(vld1_s8(src.add(8 * h)), zp8);
                            acc[2 * h] = vmlal_n_s16(acc[2 * h], vget_low_s16(d), w as i16);
                            acc[2 * h + 1] = vmlal_high_n_s16(acc[2 * h + 1], d, w as i16);
                        }
                    }
                }
            }
            acc
        }
    }

    /// `Σ w·(x − zp_in)` of the 8 columns of `edge`, padded ones included: from the
    /// window, widened like [`Row::block_widen`], or with `SDOT` where the channel has
    /// packed weights (padding is `zp_in`, so `Σ w·x − zp_in·Σ w` counts it as 0).
    fn block_edge(&self, edge: &Edge) -> [int32x4_t; 2] {
        if let Some(dot) = self.dot {
            // SAFETY: a row has `dot` only where the CPU has `dotprod` (see `Row::dot`).
            return unsafe { self.block_edge_dot(edge, dot) };
        }
        let (g, xd) = (self.g, self.xd);
        // SAFETY: NEON is baseline on aarch64; the 8-byte loads read `win[kq..kq + 8]` with
        // `kq + 8 ≤ KW + 7 ≤ 15`.
        unsafe {
            let zp8 = vdup_n_s8(self.zp as i8);
            let mut acc = [vdupq_n_s32(0); 2];
            let mut win = [0i8; 16];
            for c in 0..xd.c {
                for kp in self.rows.clone() {
                    vst1q_s8(win.as_mut_ptr(), self.window(edge, c, kp));
                    let w_row = &self.w_o[(c * g.kh + kp) * g.kw..][..g.kw];
                    for (kq, &w) in w_row.iter().enumerate() {
                        let d = vsubl_s8(vld1_s8(win.as_ptr().add(kq)), zp8);
                        acc[0] = vmlal_n_s16(acc[0], vget_low_s16(d), w as i16);
                        acc[1] = vmlal_high_n_s16(acc[1], d, w as i16);
                    }
                }
            }
            acc
        }
    }

    /// Kernel row `kp` of channel `c`'s input window for `edge`: bytes `t < 8 + KW − 1`
    /// are input columns `edge.j0 + t − pad`, `zp_in` where padded.
    #[inline(always)]
    fn window(&self, edge: &Edge, c: usize, kp: usize) -> int8x16_t {
        let at = (c * self.xd.h + self.input_row(kp)) * self.xd.w + edge.start;
        // SAFETY: NEON is baseline on aarch64; the 16-byte load reads from `Tail::src` for
        // 16 bytes at an offset inside `x`.
        unsafe {
            let raw = vld1q_s8(self.tail.src(self.x, at, 16));
            vbslq_s8(
                edge.valid,
                vqtbl1q_s8(raw, edge.idx),
                vdupq_n_s8(self.zp as i8),
            )
        }
    }

    /// [`Row::block_edge`] with `SDOT`.
    #[target_feature(enable = "dotprod")]
    fn block_edge_dot(&self, edge: &Edge, dot: &DotW) -> [int32x4_t; 2] {
        use crate::kernels::neon::sdot;
        let (g, xd) = (self.g, self.xd);
        let mut acc = [vdupq_n_s32(0); 2];
        for c in 0..xd.c {
            for kp in self.rows.clone() {
                let win = self.window(edge, c, kp);
                let words = &dot.words[(c * g.kh + kp) * dot.groups..][..dot.groups];
                for (grp, &word) in words.iter().enumerate() {
                    let w4 = vreinterpretq_s8_s32(vdupq_n_s32(word));
                    for (b, acc) in acc.iter_mut().enumerate() {
                        // Lane l, byte t: window[4b + l + 4·grp + t].
                        let idx = vaddq_u8(dot.idx, vdupq_n_u8((4 * b + 4 * grp) as u8));
                        *acc = sdot(*acc, vqtbl1q_s8(win, idx), w4);
                    }
                }
            }
        }
        let corr = vdupq_n_s32(dot.zp_weight_sum(self.rows.clone(), self.zp));
        acc.map(|a| vsubq_s32(a, corr))
    }

    /// `Σ w·(x − zp_in)` of the `4·B` interior pixels `j0..` with `SDOT`: lane `l` of
    /// accumulator `b` is pixel `j0 + 4b + l`; kernel taps in groups of four.
    #[target_feature(enable = "dotprod")]
    fn block_dot<const B: usize>(&self, dot: &DotW, j0: usize, corr: i32) -> [int32x4_t; B] {
        use crate::kernels::neon::sdot;
        let (g, xd) = (self.g, self.xd);
        debug_assert!(j0 >= g.pad && j0 + 4 * B + g.kw <= xd.w + g.pad + 1);
        // From the offset of pixel j0's tap (c, kp, 0), a kernel row's loads read 8 bytes at
        // `+ 4·b + 4·grp`: `span` bytes in all, up to 4 past the input row's end.
        let span = 4 * (B - 1) + 4 * (dot.groups - 1) + 8;
        let tail = self.tail;
        // SAFETY: NEON is baseline on aarch64 and `TBL`/`SDOT` are register-only. The 8-byte
        // loads of a kernel row read `span` bytes from `src`, which `Tail::src` gives for
        // `span` (the interior block reads at most 4 bytes past the input row).
        unsafe {
            let mut acc = [vdupq_n_s32(0); B];
            for c in 0..xd.c {
                for kp in self.rows.clone() {
                    let at = (c * xd.h + self.input_row(kp)) * xd.w + j0 - g.pad;
                    let src = tail.src(self.x, at, span);
                    let words = &dot.words[(c * g.kh + kp) * dot.groups..][..dot.groups];
                    for (grp, &word) in words.iter().enumerate() {
                        // Taps 4·grp .. 4·grp + 4 of this kernel row, in every lane.
                        let w4 = vreinterpretq_s8_s32(vdupq_n_s32(word));
                        for (b, acc) in acc.iter_mut().enumerate() {
                            // Lane l, byte t: x[c, r, j0 + 4b + l + 4·grp + t − pad].
                            let xs = vcombine_s8(vld1_s8(src.add(4 * b + 4 * grp)), vdup_n_s8(0));
                            *acc = sdot(*acc, vqtbl1q_s8(xs, dot.idx), w4);
                        }
                    }
                }
            }
            let corr = vdupq_n_s32(corr);
            acc.map(|a| vsubq_s32(a, corr))
        }
    }
}

/// The last [`Tail::KEEP`] bytes of `x` followed by zeros, for the loads (of at most 24
/// bytes that the kernel reads at most 4 bytes past, or of 16 bytes anywhere in `x`) that
/// would run past the end of `x`.
struct Tail {
    /// Offset in `x` of `bytes[0]`.
    base: usize,
    bytes: [i8; Tail::KEEP + 16],
}

impl Tail {
    const KEEP: usize = 32;

    fn new(x: &[i8]) -> Self {
        let base = x.len().saturating_sub(Self::KEEP);
        let mut bytes = [0i8; Self::KEEP + 16];
        bytes[..x.len() - base].copy_from_slice(&x[base..]);
        Tail { base, bytes }
    }

    /// Where to read `x[at..at + span]` from: `x` itself when that lies inside it, else
    /// `bytes`, which holds the same values (and zeros past `x`). Then `span ≤ 24` and
    /// `at + span ≤ x.len() + 4`, or `span = 16` and `at < x.len()`: either way
    /// `at > x.len() − 24 ≥ base` and the read ends inside `bytes` (`KEEP + 16` long).
    #[inline(always)]
    fn src(&self, x: &[i8], at: usize, span: usize) -> *const i8 {
        if at + span <= x.len() {
            // In bounds of `x` (checked); only the pointer is formed here.
            x[at..].as_ptr()
        } else {
            let i = (at - self.base).min(Self::KEEP);
            self.bytes[i..].as_ptr()
        }
    }
}

/// A block of 8 output columns `j0..j0 + 8` that includes padded edge columns (stride 1,
/// `KW ≤ 8`): each kernel row's input window, columns `j0 − pad ..` (`8 + KW − 1 ≤ 15`
/// bytes), is built in a register from one 16-byte load of the input row at `start` by a
/// table lookup, with `zp_in` (real zero) in the padded columns.
struct Edge {
    j0: usize,
    /// Column of the input row where the 16-byte load starts.
    start: usize,
    /// Window byte `t` is loaded byte `idx[t]` (or 0 where padded).
    idx: uint8x16_t,
    /// All ones where window byte `t` is an input column, zero where it is padding.
    valid: uint8x16_t,
}

impl Edge {
    /// The block at `j0` (`j0 + 8 ≤ OW`), if its window fits one load.
    fn new(j0: usize, g: ConvGeom, w: usize, ow: usize) -> Option<Self> {
        debug_assert!(g.stride == 1 && g.kw <= 8 && j0 + 8 <= ow);
        let start = if j0 == 0 { 0 } else { w.saturating_sub(16) };
        let (mut idx, mut valid) = ([0u8; 16], [0u8; 16]);
        for t in 0..8 + g.kw - 1 {
            // Input column of window byte t, if inside the row.
            let col = (j0 + t).checked_sub(g.pad).filter(|&c| c < w);
            match col {
                Some(c) if (start..start + 16).contains(&c) => {
                    idx[t] = (c - start) as u8;
                    valid[t] = 0xff;
                }
                Some(_) => return None,
                None => idx[t] = 0xff,
            }
        }
        // SAFETY: both arrays are 16 bytes; NEON is baseline on aarch64.
        let (idx, valid) = unsafe { (vld1q_u8(idx.as_ptr()), vld1q_u8(valid.as_ptr())) };
        Some(Edge {
            j0,
            start,
            idx,
            valid,
        })
    }
}

/// Most packed words [`DotW`] holds (`C·KH·⌈KW/4⌉`; 2 KiB of stack); larger layers, and
/// `KW > 8` or `KH > 32`, run the widening path.
const DOT_WORDS: usize = 512;

/// One output channel's weights for [`Row::block_dot`].
struct DotW {
    /// `⌈KW/4⌉` (1 or 2).
    groups: usize,
    /// Taps `4·grp .. 4·grp + 4` of kernel row `(c, kp)` as one little-endian word, zero
    /// past `KW`: `[C, KH, groups]`.
    words: [i32; DOT_WORDS],
    /// `Σ_{c, kq} w[c, kp, kq]` per kernel row `kp`, wrapping.
    row_sums: [i32; 32],
    /// Table-lookup indices: of the 8 bytes loaded for a group, lane `l` byte `t` reads
    /// byte `l + t`.
    idx: uint8x16_t,
}

impl DotW {
    /// `w_o` `[C, KH, KW]`; `None` where it does not fit.
    fn new(w_o: &[i8], c: usize, g: ConvGeom) -> Option<Self> {
        let groups = g.kw.div_ceil(4);
        if g.kw > 8 || g.kh > 32 || c * g.kh * groups > DOT_WORDS {
            return None;
        }
        let mut words = [0i32; DOT_WORDS];
        let mut row_sums = [0i32; 32];
        for (n, w_row) in w_o.chunks_exact(g.kw).enumerate() {
            let mut b = [0u8; 8];
            for (b, &w) in b.iter_mut().zip(w_row) {
                *b = w as u8;
            }
            words[n * groups] = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if groups == 2 {
                words[n * groups + 1] = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            }
            let kp = n % g.kh;
            row_sums[kp] = w_row
                .iter()
                .fold(row_sums[kp], |s, &w| s.wrapping_add(w as i32));
        }
        let t: [u8; 16] = core::array::from_fn(|n| (n / 4 + n % 4) as u8);
        // SAFETY: `t` is 16 bytes; NEON is baseline on aarch64.
        let idx = unsafe { vld1q_u8(t.as_ptr()) };
        Some(DotW {
            groups,
            words,
            row_sums,
            idx,
        })
    }

    /// `zp_in · Σ w` over the kernel rows `rows` (all columns: interior pixels use every
    /// tap), the term that turns `Σ w·x` into `Σ w·(x − zp_in)` modulo 2^32.
    fn zp_weight_sum(&self, rows: Range<usize>, zp: i32) -> i32 {
        self.row_sums[rows]
            .iter()
            .fold(0i32, |s, &r| s.wrapping_add(r))
            .wrapping_mul(zp)
    }
}

/// f16 weights: [`conv2d_f32`] on them widened, equal to
/// [`super::reference::conv2d_f16`] bit for bit (`conv2d::f16_on_f32`).
pub(crate) fn conv2d_f16(
    x: &[f32],
    xd: Dims,
    p: DenseF<'_, f16>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [f32],
    scratch: &mut [u8],
) {
    super::f16_on_f32(
        x,
        xd,
        p,
        g,
        yd,
        y,
        scratch,
        crate::kernels::neon::widen_f16,
        conv2d_f32,
    )
}

/// f32 weights, f32 activations: see the module docs.
pub(crate) fn conv2d_f32(
    x: &[f32],
    xd: Dims,
    p: DenseF<'_, f32>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [f32],
    _scratch: &mut [u8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    debug_assert_eq!(p.weight.len(), yd.c * xd.c * g.kh * g.kw);
    if g.stride > 1 && strided_f32(x, xd, p, g, yd, y) {
        return;
    }
    let per_out = xd.c * g.kh * g.kw;
    let inner = if g.stride == 1 {
        interior(g, xd.w, yd.w)
    } else {
        0..0
    };
    for o in 0..yd.c {
        let w_o = &p.weight[o * per_out..][..per_out]; // [C, KH, KW]
        let bias = p.bias[o];
        for i in 0..yd.h {
            let y_row = &mut y[(o * yd.h + i) * yd.w..][..yd.w]; // [OW]
            let rows = kernel_rows(i, g, xd.h);
            let cols = if inner.len() >= 4 {
                inner.clone()
            } else {
                0..0
            };
            for j in (0..cols.start).chain(cols.end..yd.w) {
                y_row[j] = bias + pixel_f32(x, xd, w_o, g, rows.clone(), i, j);
            }
            if cols.is_empty() {
                continue;
            }
            cover(cols.start, cols.end, 16, 4, |j0, big| {
                let out = &mut y_row[j0..];
                if big {
                    block_f32::<4>(x, xd, w_o, g, rows.clone(), i, j0, bias, out);
                } else {
                    block_f32::<1>(x, xd, w_o, g, rows.clone(), i, j0, bias, out);
                }
            });
        }
    }
}

/// The reference's f32 sum for output pixel `(i, j)`, in `(c, kp, kq)` order.
fn pixel_f32(
    x: &[f32],
    xd: Dims,
    w_o: &[f32],
    g: ConvGeom,
    rows: Range<usize>,
    i: usize,
    j: usize,
) -> f32 {
    let cols = kernel_cols(j, g, xd.w);
    let mut sum = 0.0f32;
    for c in 0..xd.c {
        for kp in rows.clone() {
            let r = i * g.stride + kp - g.pad;
            let w_row = &w_o[(c * g.kh + kp) * g.kw..][cols.taps.clone()];
            let x_row = &x[(c * xd.h + r) * xd.w..][cols.input.clone()];
            for (&w, &x) in w_row.iter().zip(x_row) {
                sum += w * x;
            }
        }
    }
    sum
}

/// `bias + Σ w·x` of the `4·B` interior pixels `j0..` of output row `i` (stride 1), written
/// to `y[..4·B]`; each lane sums in the reference's order.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn block_f32<const B: usize>(
    x: &[f32],
    xd: Dims,
    w_o: &[f32],
    g: ConvGeom,
    rows: Range<usize>,
    i: usize,
    j0: usize,
    bias: f32,
    y: &mut [f32],
) {
    debug_assert!(j0 >= g.pad && j0 + 4 * B + g.kw <= xd.w + g.pad + 1);
    let y = &mut y[..4 * B];
    // SAFETY: NEON is baseline on aarch64. Interior pixels `j0 + l` read input columns
    // `j0 + l + kq − pad` in `0..W` (asserted above), so each 4-lane load at
    // `x_row[j0 + kq − pad + 4·b]`, `4·b + 4 ≤ 4·B`, lies inside `x_row`; the stores write
    // `y`'s `4·B` elements.
    unsafe {
        let mut acc = [vdupq_n_f32(0.0); B];
        for c in 0..xd.c {
            for kp in rows.clone() {
                let r = i + kp - g.pad;
                let x_row = &x[(c * xd.h + r) * xd.w..][..xd.w];
                let w_row = &w_o[(c * g.kh + kp) * g.kw..][..g.kw];
                for (kq, &w) in w_row.iter().enumerate() {
                    let src = x_row.as_ptr().add(j0 + kq - g.pad);
                    let w = vdupq_n_f32(w);
                    for (b, acc) in acc.iter_mut().enumerate() {
                        // Rounded product, then rounded sum: no FMA, as the reference.
                        *acc = vaddq_f32(*acc, vmulq_f32(w, vld1q_f32(src.add(4 * b))));
                    }
                }
            }
        }
        let bias = vdupq_n_f32(bias);
        for (b, acc) in acc.iter().enumerate() {
            vst1q_f32(y.as_mut_ptr().add(4 * b), vaddq_f32(bias, *acc));
        }
    }
}

/// Most taps `C·KH·KW` per output channel that the stride > 1 paths pack on the stack
/// (`[tap][8 lanes]`: 16 KiB of f32, 8 KiB of i16); larger layers run the per-pixel loop.
const STRIDED_TAPS: usize = 512;

/// Output pixels per block of interior columns on the stride > 1 paths.
const STRIDED_PIXELS: usize = 4;

/// Walks output row `i`'s columns for the stride > 1 paths: blocks of
/// [`STRIDED_PIXELS`] interior columns (`f(j0, true)`), each other column alone
/// (`f(j, false)`).
#[inline(always)]
fn strided_cols(inner: &Range<usize>, ow: usize, mut f: impl FnMut(usize, bool)) {
    let mut j = 0;
    while j < ow {
        if inner.contains(&j) && j + STRIDED_PIXELS <= inner.end {
            f(j, true);
            j += STRIDED_PIXELS;
        } else {
            f(j, false);
            j += 1;
        }
    }
}

/// The `4·V` output channels `o0..` of a stride > 1 group, `n ≤ 4·V` of them real: channel
/// of lane `l` (the last real one for the padding lanes), for per-lane parameters.
fn lane_channel(o0: usize, n: usize, l: usize) -> usize {
    o0 + l.min(n - 1)
}

/// f32 at stride > 1 (see the module docs): `false`, having done nothing, where the
/// weights do not fit [`STRIDED_TAPS`].
fn strided_f32(
    x: &[f32],
    xd: Dims,
    p: DenseF<'_, f32>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [f32],
) -> bool {
    let taps = xd.c * g.kh * g.kw;
    if taps > STRIDED_TAPS {
        return false;
    }
    let mut pack = [0f32; 8 * STRIDED_TAPS];
    channel_groups(yd.c, |o0, eight| {
        if eight {
            group_f32::<2>(x, xd, p, g, yd, y, o0, &mut pack)
        } else {
            group_f32::<1>(x, xd, p, g, yd, y, o0, &mut pack)
        }
    });
    true
}

/// Output channels from 0 to `oc` in groups from `o0`: of eight (`group(o0, true)`) while
/// more than four remain, then of four (`group(o0, false)`; the channels past `oc` are zero
/// lanes, never stored).
#[inline(always)]
fn channel_groups(oc: usize, mut group: impl FnMut(usize, bool)) {
    let mut o0 = 0;
    while o0 < oc {
        let eight = oc - o0 > 4;
        group(o0, eight);
        o0 += if eight { 8 } else { 4 };
    }
}

/// The weights of channels `o0 .. o0 + n` as `[tap][lane]` in `pack` (`lanes` per tap,
/// taps in the reference's `(c, kp, kq)` order, zero in lanes `n..`), through `widen`.
#[inline(always)]
fn pack_lanes<'p, W: Copy, T: Copy + Default>(
    weight: &[W],
    taps: usize,
    o0: usize,
    n: usize,
    lanes: usize,
    pack: &'p mut [T],
    widen: impl Fn(W) -> T,
) -> &'p [T] {
    let pack = &mut pack[..taps * lanes];
    for (t, w) in pack.chunks_exact_mut(lanes).enumerate() {
        for (l, w) in w.iter_mut().enumerate() {
            *w = if l < n {
                widen(weight[(o0 + l) * taps + t])
            } else {
                T::default()
            };
        }
    }
    pack
}

/// Output channels `o0 .. o0 + 4·V` (those below `OC`) at stride > 1, one lane per channel.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn group_f32<const V: usize>(
    x: &[f32],
    xd: Dims,
    p: DenseF<'_, f32>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [f32],
    o0: usize,
    pack: &mut [f32; 8 * STRIDED_TAPS],
) {
    let lanes = 4 * V;
    let n = lanes.min(yd.c - o0);
    let pack: &[f32] = pack_lanes(p.weight, xd.c * g.kh * g.kw, o0, n, lanes, pack, |w| w);
    let bias: [f32; 8] = core::array::from_fn(|l| p.bias[lane_channel(o0, n, l % lanes)]);
    let plane = yd.h * yd.w;
    // Writes lane `l < n` of `sums` (channel `o0 + l`) to output pixel `(i, j)`.
    let mut store = |sums: &[float32x4_t; V], i: usize, j: usize| {
        let mut t = [0f32; 8];
        // SAFETY: NEON is baseline on aarch64; `V ≤ 2` vectors fill `t`'s first `4·V`.
        unsafe {
            for (v, s) in sums.iter().enumerate() {
                let b = vld1q_f32(bias.as_ptr().add(4 * v));
                vst1q_f32(t.as_mut_ptr().add(4 * v), vaddq_f32(b, *s));
            }
        }
        for (l, &t) in t[..n].iter().enumerate() {
            y[(o0 + l) * plane + i * yd.w + j] = t;
        }
    };
    let inner = interior(g, xd.w, yd.w);
    for i in 0..yd.h {
        let rows = kernel_rows(i, g, xd.h);
        strided_cols(&inner, yd.w, |j, block| {
            if !block {
                let cols = kernel_cols(j, g, xd.w);
                // SAFETY: NEON is baseline on aarch64; each tap's weights are the `4·V`
                // lanes at `t·lanes` in `pack` (`t < taps`).
                let acc = unsafe {
                    let mut acc = [vdupq_n_f32(0.0); V];
                    for c in 0..xd.c {
                        for kp in rows.clone() {
                            let r = i * g.stride + kp - g.pad;
                            let x_row = &x[(c * xd.h + r) * xd.w..][cols.input.clone()];
                            let t0 = (c * g.kh + kp) * g.kw;
                            for (kq, &xv) in cols.taps.clone().zip(x_row) {
                                let w = &pack[(t0 + kq) * lanes..][..lanes];
                                let xv = vdupq_n_f32(xv);
                                for (v, acc) in acc.iter_mut().enumerate() {
                                    // Rounded product, then rounded sum: no FMA.
                                    let wv = vld1q_f32(w.as_ptr().add(4 * v));
                                    *acc = vaddq_f32(*acc, vmulq_f32(wv, xv));
                                }
                            }
                        }
                    }
                    acc
                };
                store(&acc, i, j);
            } else {
                let j0 = j;
                // SAFETY: NEON is baseline on aarch64. Interior pixel `j0 + q` reads input
                // columns `(j0 + q)·stride + kq − pad` in `0..W` (`interior`), so every
                // read of `x_row` is in bounds; weights as above.
                let acc = unsafe {
                    let mut acc = [[vdupq_n_f32(0.0); V]; STRIDED_PIXELS];
                    for c in 0..xd.c {
                        for kp in rows.clone() {
                            let r = i * g.stride + kp - g.pad;
                            let x_row = &x[(c * xd.h + r) * xd.w..][..xd.w];
                            let src = x_row.as_ptr().add(j0 * g.stride - g.pad);
                            let t0 = (c * g.kh + kp) * g.kw;
                            for kq in 0..g.kw {
                                let w = pack.as_ptr().add((t0 + kq) * lanes);
                                let wv: [float32x4_t; V] =
                                    core::array::from_fn(|v| vld1q_f32(w.add(4 * v)));
                                for (q, acc) in acc.iter_mut().enumerate() {
                                    let xv = vdupq_n_f32(*src.add(q * g.stride + kq));
                                    for (acc, wv) in acc.iter_mut().zip(&wv) {
                                        *acc = vaddq_f32(*acc, vmulq_f32(*wv, xv));
                                    }
                                }
                            }
                        }
                    }
                    acc
                };
                for (q, acc) in acc.iter().enumerate() {
                    store(acc, i, j0 + q);
                }
            }
        });
    }
}

/// int8 at stride > 1 (see the module docs): `false`, having done nothing, where the
/// weights do not fit [`STRIDED_TAPS`].
#[inline(always)]
fn strided_s8(x: &[i8], xd: Dims, p: &DenseS8<'_>, g: ConvGeom, yd: Dims, y: &mut [i8]) -> bool {
    let taps = xd.c * g.kh * g.kw;
    if taps > STRIDED_TAPS {
        return false;
    }
    let mut pack = [0i16; 8 * STRIDED_TAPS];
    channel_groups(yd.c, |o0, eight| {
        if eight {
            group_s8::<2>(x, xd, p, g, yd, y, o0, &mut pack)
        } else {
            group_s8::<1>(x, xd, p, g, yd, y, o0, &mut pack)
        }
    });
    true
}

/// `acc[v] += w[4v..4v + 4] · d` (i16 × i16 into i32, exact; wrapping sums).
///
/// # Safety
/// `w` must be valid for reading `4·V` values.
#[inline(always)]
unsafe fn mlal_lanes<const V: usize>(acc: &mut [int32x4_t; V], w: *const i16, d: i16) {
    // SAFETY: the caller guarantees `4·V` readable values at `w`; NEON is baseline.
    unsafe {
        if V == 2 {
            let wv = vld1q_s16(w);
            acc[0] = vmlal_n_s16(acc[0], vget_low_s16(wv), d);
            acc[1] = vmlal_high_n_s16(acc[1], wv, d);
        } else {
            for (v, acc) in acc.iter_mut().enumerate() {
                *acc = vmlal_n_s16(*acc, vld1_s16(w.add(4 * v)), d);
            }
        }
    }
}

/// Output channels `o0 .. o0 + 4·V` (those below `OC`) at stride > 1, one lane per channel.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn group_s8<const V: usize>(
    x: &[i8],
    xd: Dims,
    p: &DenseS8<'_>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [i8],
    o0: usize,
    pack: &mut [i16; 8 * STRIDED_TAPS],
) {
    let lanes = 4 * V;
    let n = lanes.min(yd.c - o0);
    let taps = xd.c * g.kh * g.kw;
    let pack: &[i16] = pack_lanes(p.weight, taps, o0, n, lanes, pack, i16::from);
    let rq: [Requant; V] = core::array::from_fn(|v| {
        Requant::channels(p, core::array::from_fn(|l| lane_channel(o0, n, 4 * v + l)))
    });
    // x − zp_in ∈ [-255, 255] fits i16.
    let zp = p.zp_in;
    let plane = yd.h * yd.w;
    // Writes lane `l < n` of `sums` (channel `o0 + l`), requantized, to output pixel `(i, j)`.
    let mut store = |sums: &[int32x4_t; V], i: usize, j: usize| {
        let mut t = [0i32; 8];
        // SAFETY: NEON is baseline on aarch64; `V ≤ 2` vectors fill `t`'s first `4·V`.
        unsafe {
            for (v, s) in sums.iter().enumerate() {
                vst1q_s32(t.as_mut_ptr().add(4 * v), rq[v].codes(*s));
            }
        }
        for (l, &t) in t[..n].iter().enumerate() {
            // Codes are in [-128, 127].
            y[(o0 + l) * plane + i * yd.w + j] = t as i8;
        }
    };
    let inner = interior(g, xd.w, yd.w);
    for i in 0..yd.h {
        let rows = kernel_rows(i, g, xd.h);
        strided_cols(&inner, yd.w, |j, block| {
            if !block {
                let cols = kernel_cols(j, g, xd.w);
                let mut acc = [zero_s32(); V];
                for c in 0..xd.c {
                    for kp in rows.clone() {
                        let r = i * g.stride + kp - g.pad;
                        let x_row = &x[(c * xd.h + r) * xd.w..][cols.input.clone()];
                        let t0 = (c * g.kh + kp) * g.kw;
                        for (kq, &xv) in cols.taps.clone().zip(x_row) {
                            let w = &pack[(t0 + kq) * lanes..][..lanes];
                            // SAFETY: `w` holds the `4·V` lanes of tap `t0 + kq`.
                            unsafe { mlal_lanes(&mut acc, w.as_ptr(), (xv as i32 - zp) as i16) };
                        }
                    }
                }
                store(&acc, i, j);
            } else {
                let j0 = j;
                let mut acc = [[zero_s32(); V]; STRIDED_PIXELS];
                for c in 0..xd.c {
                    for kp in rows.clone() {
                        let r = i * g.stride + kp - g.pad;
                        let x_row = &x[(c * xd.h + r) * xd.w..][..xd.w];
                        let t0 = (c * g.kh + kp) * g.kw;
                        // SAFETY: interior pixel `j0 + q` reads input columns
                        // `(j0 + q)·stride + kq − pad` in `0..W` (`interior`), so every read
                        // of `x_row` is in bounds; tap `t0 + kq < taps` has `4·V` lanes in
                        // `pack`.
                        unsafe {
                            let src = x_row.as_ptr().add(j0 * g.stride - g.pad);
                            for kq in 0..g.kw {
                                let w = pack.as_ptr().add((t0 + kq) * lanes);
                                for (q, acc) in acc.iter_mut().enumerate() {
                                    let xv = *src.add(q * g.stride + kq) as i32 - zp;
                                    mlal_lanes(acc, w, xv as i16);
                                }
                            }
                        }
                    }
                }
                for (q, acc) in acc.iter().enumerate() {
                    store(acc, i, j0 + q);
                }
            }
        });
    }
}

/// A zero i32 vector.
#[inline(always)]
fn zero_s32() -> int32x4_t {
    // SAFETY: NEON is baseline on aarch64.
    unsafe { vdupq_n_s32(0) }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::super::reference;
    use super::*;

    /// Deterministic pseudo-random values (LCG), 24 bits each.
    fn lcg(seed: u32) -> impl FnMut() -> u32 {
        let mut s = seed;
        move || {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            s >> 8
        }
    }

    /// Reference and NEON outputs of a random `x` `[C, H, W]` → `OC` convolution, f32 and
    /// int8 (`conv2d_s8`, and `conv2d_s8_dot` where the CPU has `dotprod`), compared bit
    /// for bit; `time(f)` runs `f` (the reference, then each variant) and may time it.
    fn compare(xd: Dims, oc: usize, g: ConvGeom, mut time: impl FnMut(&str, &mut dyn FnMut())) {
        let yd = Dims {
            c: oc,
            h: (xd.h + 2 * g.pad - g.kh) / g.stride + 1,
            w: (xd.w + 2 * g.pad - g.kw) / g.stride + 1,
        };
        let n_w = oc * xd.c * g.kh * g.kw;
        let mut r = lcg(12345);
        let mut f = |n: usize| -> Vec<f32> { (0..n).map(|_| r() as f32 / 1e7 - 0.8).collect() };
        let (xf, wf, bf) = (f(xd.len()), f(n_w), f(oc));
        let p = DenseF {
            weight: &wf,
            bias: &bf,
        };
        let (mut want, mut got) = (std::vec![0f32; yd.len()], std::vec![1f32; yd.len()]);
        time("f32 reference", &mut || {
            reference::conv2d_f32(&xf, xd, p, g, yd, &mut want, &mut [])
        });
        time("f32 neon", &mut || {
            conv2d_f32(&xf, xd, p, g, yd, &mut got, &mut [])
        });
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&want), bits(&got));
        let mut r = lcg(54321);
        let xs: Vec<i8> = (0..xd.len()).map(|_| r() as i8).collect();
        let ws: Vec<i8> = (0..n_w).map(|_| r() as i8).collect();
        let bs: Vec<i32> = (0..oc).map(|_| (r() % 4000) as i32 - 2000).collect();
        let m: Vec<i32> = (0..oc).map(|_| (1 << 30) + (r() as i32 & 0xffff)).collect();
        let sh: Vec<i32> = (0..oc).map(|o| -13 - (o % 3) as i32).collect();
        let p = DenseS8 {
            weight: &ws,
            bias: &bs,
            multiplier: &m,
            shift: &sh,
            zp_in: -3,
            zp_out: 5,
        };
        let (mut want, mut got) = (std::vec![0i8; yd.len()], std::vec![1i8; yd.len()]);
        time("int8 reference", &mut || {
            reference::conv2d_s8(&xs, xd, p, g, yd, &mut want, &mut [])
        });
        time("int8 neon", &mut || {
            conv2d_s8(&xs, xd, p, g, yd, &mut got, &mut [])
        });
        assert_eq!(want, got);
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            got.fill(1);
            time("int8 neon-dotprod", &mut || {
                conv2d_s8_dot(&xs, xd, p, g, yd, &mut got, &mut [])
            });
            assert_eq!(want, got);
        }
    }

    /// Stride > 1 with more than [`STRIDED_TAPS`] taps per channel (the shared check's
    /// cases have at most 300) takes the per-pixel fallback, still bit-exact.
    #[test]
    fn strided_fallback_past_the_tap_cap() {
        let g = ConvGeom {
            kh: 5,
            kw: 5,
            stride: 2,
            pad: 1,
        };
        const { assert!(21 * 25 > STRIDED_TAPS) };
        compare(Dims { c: 21, h: 9, w: 11 }, 5, g, |_, f| f());
    }

    /// Timings for the module docs (ignored; run it under qemu or on hardware with
    /// `-- --ignored strided_timing --nocapture`): 5×5, stride 2, pad 2, 8 → 16 channels
    /// on 28×28, best of 5 rounds of 20 calls.
    #[test]
    #[ignore = "a timing for the module docs, run by hand (see above)"]
    fn strided_timing() {
        let g = ConvGeom {
            kh: 5,
            kw: 5,
            stride: 2,
            pad: 2,
        };
        compare(Dims { c: 8, h: 28, w: 28 }, 16, g, |name, f| {
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = std::time::Instant::now();
                for _ in 0..20 {
                    f();
                }
                best = best.min(t.elapsed().as_secs_f64() / 20.0);
            }
            std::eprintln!("{name:<18} {:>8.0} µs", best * 1e6);
        });
    }
}
