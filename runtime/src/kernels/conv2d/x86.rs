//! x86-64 AVX2 convolutions. `conv2d_s8` is vectorized across output channels, or across
//! output columns for layers with few channels (`Band::run_columns`); `conv2d_f32` across
//! output columns (any stride); `conv2d_f16` is `conv2d_f32` on widened weights.
//!
//! **int8.** Shapes as in `reference.rs`: `x` `[C, H, W]`, `weight` `[OC, C, KH, KW]`,
//! `y` `[OC, OH, OW]`. Eight output channels sit in the eight i32 lanes of a vector, and
//! each `_mm256_madd_epi16` adds two taps at once, a *tap pair*: two input channels at the
//! same kernel position when `C` is even and `KW` odd, else two horizontally adjacent taps:
//!
//! ```text
//! acc[o] += w[o,c,kp,kq]·(x[c,r,s] − zp) + w[o,c+1,kp,kq]·(x[c+1,r,s] − zp)   (channel pairs)
//! acc[o] += w[o,c,kp,kq]·(x[c,r,s] − zp) + w[o,c,kp,kq+1]·(x[c,r,s+1] − zp)   (column pairs)
//! ```
//!
//! Both factors are exact i16 (`|x − zp| ≤ 255`, `|w| ≤ 127`), so each pair sum fits in
//! i32 without saturation, and the i32 lanes wrap like the reference's `wrapping_add`.
//! Per call, on the stack (never in the arena, so `scratch_len` is 0):
//! - `wpack`: the weights of up to 16 output channels as i16 pairs, one 8-channel vector
//!   per tap pair and block (a zero weight pairs with the last column of an odd `KW`);
//! - `xbuf`: a band of input rows widened to i16 with `zp_in` subtracted and the padding
//!   written as 0, laid out so that each tap pair is two adjacent i16: `[C, rows, wp]`
//!   for column pairs, `[C/2, rows, wp, 2]` (two channels interleaved) for channel pairs,
//!   with `wp = W + 2·pad + 1`.
//!
//! Every output position reads its pair for a tap pair at `base + offset` as one i32 and
//! broadcasts it, so a tile of `P` positions × `B` blocks of 8 channels costs, per tap
//! pair, `B` weight loads, `P` broadcasts and `P·B` multiply-adds. The output stage
//! requantizes whole vectors (`crate::kernels::x86::Requant8`) and transposes the codes
//! so that each channel's `P` consecutive outputs are stored at once. Layers whose packed
//! weights or input rows do not fit the stack buffers run the reference.
//!
//! **AVX-512 VNNI.** `conv2d_s8_vnni` (the `avx2-vnni` kernel set, run where the CPU has
//! `avx512vnni`, `avx512vl` and `avx512bw`) reads *tap quads* in both paths (tiles and
//! columns) instead: two neighbouring tap pairs as four
//! u8 input bytes `x + 128` times four s8 weights, one `vpdpbusd` each, on a u8 copy of the
//! band (same layout, `wp = W + 2·pad + 3`), minus `(zp_in + 128)·Σ w` per channel (see
//! `x86/vnni.rs`). Measured on Zen 4 for LeNet-5 (`lenet5`; minimum per layer, µs, AVX2 → VNNI):
//! conv 5×5 1→6 on 28×28, 3.39 → 2.93 (columns); conv 5×5 6→16 on 14×14, 4.40 → 2.86
//! (tiles). Quads beat `vpdpwssd` on the i16 pairs (tried first: whole LeNet-5 9.40 µs
//! against 8.86 µs with quad tiles), so the i16 paths are the AVX2 ones unchanged.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use kestrel_format::ConvGeom;

use super::reference;
use crate::kernels::x86::{array, load_partial_i8, transpose8x8, Requant8};
use crate::kernels::{DenseF, DenseS8, Dims};
use half::f16;

// No scratch (the reference's `scratch_len`, 0): the packed weights and widened input rows
// live on the stack.

/// i16 elements in the stack's input band (8 KiB), including `SLACK`.
const XCAP: usize = 4096;
/// Room past a band's rows for the last row's full-vector stores.
const SLACK: usize = 32;
/// Tap pairs (8-channel weight vectors) in the stack's weight pack (8 KiB).
const WCAP: usize = 256;
/// int8 (AVX2 set): see the module docs; equal to [`reference::conv2d_s8`] bit for bit.
pub(crate) fn conv2d_s8(
    x: &[i8],
    xd: Dims,
    p: DenseS8<'_>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [i8],
    scratch: &mut [u8],
) {
    conv2d_s8_entry::<false>(x, xd, p, g, yd, y, scratch)
}

/// int8 (AVX2 + VNNI set): tap quads on bytes ([`vnni`]) instead of i16 pairs; equal to
/// [`reference::conv2d_s8`] bit for bit.
pub(crate) fn conv2d_s8_vnni(
    x: &[i8],
    xd: Dims,
    p: DenseS8<'_>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [i8],
    scratch: &mut [u8],
) {
    conv2d_s8_entry::<true>(x, xd, p, g, yd, y, scratch)
}

/// Both int8 entries: `V`, the VNNI quads.
#[inline(always)]
fn conv2d_s8_entry<const V: bool>(
    x: &[i8],
    xd: Dims,
    p: DenseS8<'_>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [i8],
    scratch: &mut [u8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    debug_assert_eq!(p.weight.len(), yd.c * xd.c * g.kh * g.kw);
    match Layout::new(xd, g, yd, V) {
        // SAFETY: this file runs only through the AVX2 kernel tables, which a plan uses
        // only where the CPU has AVX2 and F16C; only the AVX2 + VNNI table holds
        // `conv2d_s8_vnni` (`V`), used only where the CPU also has AVX-512 VNNI, VL and BW
        // (`KernelSet::runs_here`).
        Some(l) if V => unsafe { conv2d_s8_avx2_vnni(x, p, &l, y) },
        Some(l) => unsafe { conv2d_s8_avx2(x, p, &l, y) },
        None => reference::conv2d_s8(x, xd, p, g, yd, y, scratch),
    }
}

/// f32 elements of the stack's zero-padded input band for `conv2d_f32` (16 KiB).
const FCAP: usize = 4096;

/// f32: equal to [`reference::conv2d_f32`] bit for bit. Eight consecutive output columns
/// of one row sit in a vector, four output channels at a time, and each lane sums
/// `w·x` in the reference's `(c, kp, kq)` order with a separate multiply and add (no FMA).
/// The padding is read as 0 from a zero-padded copy of the input instead of being
/// skipped: `w·0 = ±0` leaves every partial sum unchanged (the reference's sum starts at
/// +0 and is never −0), provided `w` is finite, so layers with non-finite weights, or so
/// wide that one output row's input rows overflow the copy, run the reference. The copy
/// holds the input rows of a band of output rows. At stride `S > 1` its rows are split by
/// column phase (`[C, rows, S, ⌈(W + 2·pad)/S⌉ + 8]`, phase `φ` holding padded columns
/// `φ, φ + S, …`), so that tap `kq` of outputs `j..j + 8`, padded columns `(j + l)·S + kq`,
/// is the contiguous `phase[kq mod S][j + kq div S ..]`.
pub(crate) fn conv2d_f32(
    x: &[f32],
    xd: Dims,
    p: crate::kernels::DenseF<'_, f32>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [f32],
    scratch: &mut [u8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    if fits_f32(xd, g) && p.weight.iter().all(|w| w.is_finite()) {
        // SAFETY: this file runs only through `Kernels::VARIANT`, which a plan uses only where the CPU has AVX2 and F16C (`KernelSet::runs_here`).
        unsafe { conv2d_f32_avx2(x, xd, p, g, yd, y) }
    } else {
        reference::conv2d_f32(x, xd, p, g, yd, y, scratch)
    }
}

/// Columns of one phase of a padded row in `conv2d_f32_avx2`'s input copy:
/// `⌈(W + 2·pad)/S⌉`, plus 8 of slack for the last vector.
fn phase_len(w: usize, g: ConvGeom) -> usize {
    (w + 2 * g.pad).div_ceil(g.stride) + 8
}

/// Whether `conv2d_f32_avx2` takes the layer: the `KH` padded input rows of one output
/// row, split by phase, fit the stack copy.
fn fits_f32(xd: Dims, g: ConvGeom) -> bool {
    g.kw <= 256
        && xd
            .c
            .checked_mul(g.kh)
            .and_then(|n| n.checked_mul(g.stride * phase_len(xd.w, g)))
            .is_some_and(|n| n <= FCAP)
}

/// # Safety
/// AVX2; [`fits_f32`].
#[target_feature(enable = "avx2")]
unsafe fn conv2d_f32_avx2(
    x: &[f32],
    xd: Dims,
    p: crate::kernels::DenseF<'_, f32>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [f32],
) {
    // Zero-padded input rows `[C, rows, S, phase_len]` (see `conv2d_f32`) for a band of
    // output rows; at stride 1 one phase, the padded row plus 8 columns of slack.
    let (s, pl) = (g.stride, phase_len(xd.w, g));
    let row_len = s * pl;
    // Output rows per band: its `(band − 1)·S + KH` input rows of every channel fit.
    let band = (FCAP / (xd.c * row_len) - g.kh) / s + 1;
    let mut xpad = [0f32; FCAP];
    let per_out = xd.c * g.kh * g.kw;
    let plane = yd.h * yd.w;
    // Where kernel column `kq` starts in a split row: `(kq mod S)·phase_len + kq div S`
    // (no division in the loops below; `KW ≤ 255`, a `u8` in the format).
    let mut col = [0usize; 256];
    for (kq, at) in col.iter_mut().enumerate().take(g.kw) {
        *at = kq % s * pl + kq / s;
    }
    let col = &col[..g.kw];
    for i0 in (0..yd.h).step_by(band) {
        let n_out = band.min(yd.h - i0);
        let rows = (n_out - 1) * s + g.kh;
        for c in 0..xd.c {
            for t in 0..rows {
                let dst = &mut xpad[(c * rows + t) * row_len..][..row_len];
                dst.fill(0.0);
                // Padded row `i0·S + t` is input row `i0·S + t − pad`, if any.
                let Some(r) = (i0 * s + t).checked_sub(g.pad).filter(|&r| r < xd.h) else {
                    continue;
                };
                let src = &x[(c * xd.h + r) * xd.w..][..xd.w];
                if s == 1 {
                    dst[g.pad..g.pad + xd.w].copy_from_slice(src);
                } else {
                    for (col, &v) in (g.pad..).zip(src) {
                        dst[col % s * pl + col / s] = v;
                    }
                }
            }
        }
        for o0 in (0..yd.c).step_by(4) {
            // Channels past the end repeat the last one; their results are dropped.
            let o: [usize; 4] = array(|k| (o0 + k).min(yd.c - 1));
            let w: [&[f32]; 4] = array(|k| &p.weight[o[k] * per_out..][..per_out]);
            for i in 0..n_out {
                // The rows of output row `i` for input channel `c` and kernel row `kp`.
                let row = |c: usize, kp: usize| (c * rows + i * s + kp) * row_len;
                for j in (0..yd.w).step_by(8) {
                    // At stride 1 a tap's column is `kq` itself (no table lookup).
                    let dims = (xd.c, g.kh, g.kw);
                    // SAFETY: AVX2, this function's contract.
                    let acc = unsafe {
                        if s == 1 {
                            block_f32(&xpad, row, dims, j, |kq| kq, &w)
                        } else {
                            block_f32(&xpad, row, dims, j, |kq| col[kq], &w)
                        }
                    };
                    let n = 8.min(yd.w - j);
                    for k in 0..4.min(yd.c - o0) {
                        let v = _mm256_add_ps(_mm256_set1_ps(p.bias[o[k]]), acc[k]);
                        let mut out = [0f32; 8];
                        // SAFETY: `out` is 8 f32s.
                        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
                        let at = o[k] * plane + (i0 + i) * yd.w + j;
                        y[at..at + n].copy_from_slice(&out[..n]);
                    }
                }
            }
        }
    }
}

/// The sums of output columns `j .. j + 8` for four output channels (`w`: their weights
/// `[C, KH, KW]`), in the reference's `(c, kp, kq)` order: tap `(c, kp, kq)` reads 8
/// floats at `row(c, kp) + at(kq) + j` of the padded copy (`j + kq div S + 8 ≤
/// phase_len`: inside the phase). Inlined into `conv2d_f32_avx2`, with `at`.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn block_f32(
    xpad: &[f32],
    row: impl Fn(usize, usize) -> usize,
    (c_n, kh, kw): (usize, usize, usize),
    j: usize,
    at: impl Fn(usize) -> usize,
    w: &[&[f32]; 4],
) -> [__m256; 4] {
    // SAFETY: AVX2 by the contract; each load reads the 8 floats of a checked slice.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut tap = 0;
        for c in 0..c_n {
            for kp in 0..kh {
                let r = row(c, kp) + j;
                for kq in 0..kw {
                    let xv = &xpad[r + at(kq)..][..8];
                    let xv = _mm256_loadu_ps(xv.as_ptr());
                    for (acc, w) in acc.iter_mut().zip(w) {
                        let wv = _mm256_set1_ps(w[tap]);
                        *acc = _mm256_add_ps(*acc, _mm256_mul_ps(wv, xv));
                    }
                    tap += 1;
                }
            }
        }
        acc
    }
}

/// f16 weights: [`conv2d_f32`] on them widened, equal to
/// [`reference::conv2d_f16`] bit for bit (`conv2d::f16_on_f32`).
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
        crate::kernels::x86::widen_f16,
        conv2d_f32,
    )
}

/// The shapes, the tap pairing, and how the layer is cut to fit the stack buffers.
struct Layout {
    xd: Dims,
    yd: Dims,
    g: ConvGeom,
    /// Stride 1, at least 16 columns, and few output channels (≤ 6) or one input channel
    /// and ≤ 16 outputs (in passes of 8): vectorize across output columns instead (see
    /// [`Band::run_columns`]). For `lenet`'s conv 5×5 1→12 on 28×28 the column passes beat
    /// the 16-channel tiles: whole int8 `lenet` 21.15 → 19.59 µs (VNNI), 27.3 → 25.1 µs (AVX2).
    columns: bool,
    /// Pair input channels (`C` even, `KW` odd) rather than columns.
    channel_pairs: bool,
    /// Tap pairs: `C/2·KH·KW` or `C·KH·⌈KW/2⌉`.
    pairs: usize,
    /// 8-channel blocks per pass over the input (1 or 2).
    blocks: usize,
    /// Padded row length in `xbuf`: `W + 2·pad + 1` (the `+1` is read, with a zero
    /// weight, by the last column pair of an odd `KW`).
    wp: usize,
    /// Output rows per band.
    band: usize,
    /// Tap quads on bytes (AVX-512 VNNI, [`vnni`]) instead of i16 pairs.
    vnni: bool,
}

impl Layout {
    /// `None` if one output row's input rows or one channel block's weights overflow the
    /// stack buffers.
    fn new(xd: Dims, g: ConvGeom, yd: Dims, vnni: bool) -> Option<Self> {
        let columns = g.stride == 1 && (yd.c <= 6 || (xd.c == 1 && yd.c <= 16)) && yd.w >= 16;
        let channel_pairs = !columns && xd.c.is_multiple_of(2) && !g.kw.is_multiple_of(2);
        let pairs = if channel_pairs {
            xd.c / 2 * g.kh * g.kw
        } else {
            xd.c * g.kh * g.kw.div_ceil(2)
        };
        let blocks = if !columns && yd.c > 8 && 2 * pairs <= WCAP {
            2
        } else {
            1
        };
        // Quads of column pairs read up to 2 columns further (see `vnni`).
        let wp = xd.w + 2 * g.pad + if vnni { 3 } else { 1 };
        let fits = |band: usize| xd.c * ((band - 1) * g.stride + g.kh) * wp + SLACK <= XCAP;
        if pairs > WCAP || !fits(1) || yd.len() == 0 {
            return None;
        }
        let mut band = yd.h;
        while !fits(band) {
            band = band.div_ceil(2);
        }
        while !fits(band) {
            band -= 1;
        }
        Some(Layout {
            xd,
            yd,
            g,
            columns,
            channel_pairs,
            pairs,
            blocks,
            wp,
            band,
            vnni,
        })
    }

    /// Input rows (padded coordinates) a band of `n` output rows reads.
    fn band_rows(&self, n: usize) -> usize {
        (n - 1) * self.g.stride + self.g.kh
    }

    /// i16 elements per `xbuf` position: 2 with channels interleaved in pairs.
    fn elem(&self) -> usize {
        1 + self.channel_pairs as usize
    }

    /// The `xbuf` offset of each tap pair relative to its output position's base, in
    /// `wpack` order, for a band of `rows` input rows.
    fn offsets(&self, rows: usize, offs: &mut [u32; WCAP]) {
        let (kh, kw, wp) = (self.g.kh, self.g.kw, self.wp);
        let mut v = 0;
        if self.channel_pairs {
            for cp in 0..self.xd.c / 2 {
                for kp in 0..kh {
                    for kq in 0..kw {
                        offs[v] = (((cp * rows + kp) * wp + kq) * 2) as u32;
                        v += 1;
                    }
                }
            }
        } else {
            for c in 0..self.xd.c {
                for kp in 0..kh {
                    for q in 0..kw.div_ceil(2) {
                        offs[v] = ((c * rows + kp) * wp + 2 * q) as u32;
                        v += 1;
                    }
                }
            }
        }
        debug_assert_eq!(v, self.pairs);
    }
}

/// # Safety
/// The CPU must support AVX2; `l` without `vnni`.
#[target_feature(enable = "avx2")]
unsafe fn conv2d_s8_avx2(x: &[i8], p: DenseS8<'_>, l: &Layout, y: &mut [i8]) {
    debug_assert!(!l.vnni);
    // SAFETY: forwarded.
    unsafe { conv2d_s8_body::<false>(x, p, l, y) }
}

/// # Safety
/// The CPU must support AVX2, AVX-512 VNNI, VL and BW; `l` with `vnni`.
#[target_feature(enable = "avx2,avx512vnni,avx512vl,avx512bw")]
unsafe fn conv2d_s8_avx2_vnni(x: &[i8], p: DenseS8<'_>, l: &Layout, y: &mut [i8]) {
    debug_assert!(l.vnni);
    // SAFETY: forwarded.
    unsafe { conv2d_s8_body::<true>(x, p, l, y) }
}

/// The int8 convolution, inlined into each entry so that it is compiled with the entry's
/// features: `V`, the VNNI quads (then the CPU has AVX-512 VNNI, VL and BW).
///
/// # Safety
/// As the entry that calls it.
#[inline(always)]
unsafe fn conv2d_s8_body<const V: bool>(x: &[i8], p: DenseS8<'_>, l: &Layout, y: &mut [i8]) {
    let yd = l.yd;
    // Uninitialized: only the parts written for a block and band are read.
    let mut wpack = [const { MaybeUninit::<__m256i>::uninit() }; WCAP];
    let mut xbuf = [const { MaybeUninit::<i16>::uninit() }; XCAP];
    let mut offs = [0u32; WCAP];
    let mut qbuf = if V { Some(vnni::Buffers::new()) } else { None };
    for o0 in (0..yd.c).step_by(8 * l.blocks) {
        let blocks = l.blocks.min((yd.c - o0).div_ceil(8));
        // SAFETY: AVX2 by this function's contract.
        let wpack = unsafe { pack_weights(p.weight, l, o0, blocks, &mut wpack) };
        // SAFETY: with `V` the CPU has AVX-512 VNNI and VL (this function's contract).
        let mut quads = qbuf
            .as_mut()
            .map(|q| unsafe { q.pack(l, wpack, blocks, p.zp_in) });
        // SAFETY: AVX2 by this function's contract.
        let rq = unsafe {
            [
                Requant8::new(p.bias, p.multiplier, p.shift, o0, p.zp_out),
                Requant8::new(p.bias, p.multiplier, p.shift, o0 + 8, p.zp_out),
            ]
        };
        let out = Out {
            p: &p,
            rq,
            o0,
            plane: yd.h * yd.w,
        };
        for i0 in (0..yd.h).step_by(l.band) {
            let n = l.band.min(yd.h - i0);
            let rows = l.band_rows(n);
            l.offsets(rows, &mut offs);
            // With VNNI, the bytes in `quads` replace the i16 rows.
            let band = Band {
                l,
                xbuf: if !V {
                    // SAFETY: AVX2 by this function's contract.
                    unsafe { fill_band(x, l, p.zp_in, i0, rows, &mut xbuf) }
                } else {
                    &[]
                },
                wpack,
                offs: &offs[..l.pairs],
                // SAFETY: AVX2 by this function's contract.
                quads: quads
                    .as_mut()
                    .map(|q| unsafe { q.band(x, l, p.zp_in, i0, rows, &offs) }),
            };
            // SAFETY (all calls): `band.xbuf` (with VNNI, `band.quads`) holds every row the
            // band's positions read (see `Band::tile`), and `wpack` (the quads) has `blocks`
            // vectors per tap pair (quad).
            unsafe {
                if l.columns {
                    match yd.c - o0 {
                        1 | 2 => band.run_columns::<2, V>(o0, i0, n, &p, y),
                        3 | 4 => band.run_columns::<4, V>(o0, i0, n, &p, y),
                        5 | 6 => band.run_columns::<6, V>(o0, i0, n, &p, y),
                        _ => band.run_columns::<8, V>(o0, i0, n, &p, y),
                    }
                } else if blocks == 2 {
                    band.run::<4, 2, V>(i0, n, &out, y);
                } else {
                    band.run::<8, 1, V>(i0, n, &out, y);
                }
            }
        }
    }
}

/// Packs the weights of channels `o0 .. o0 + 8·blocks`, one vector per tap pair and block
/// (`wpack[pair·B + b]`, lane `l` for channel `o = o0 + 8b + l`, zero past `OC` or `KW`),
/// in the order of [`Layout::offsets`], and returns the part written.
#[target_feature(enable = "avx2")]
fn pack_weights<'w>(
    weight: &[i8],
    l: &Layout,
    o0: usize,
    blocks: usize,
    wpack: &'w mut [MaybeUninit<__m256i>; WCAP],
) -> &'w [__m256i] {
    let (kh, kw) = (l.g.kh, l.g.kw);
    let (oc, per_out) = (l.yd.c, l.xd.c * kh * kw);
    let n = l.pairs * blocks;
    if l.channel_pairs {
        // Eight tap pairs × eight channels at a time: each channel's pairs
        // `(w[o, 2cp, t], w[o, 2cp+1, t])` (t = kp·KW + kq) interleaved from its two
        // channels' weights, then transposed so that each vector holds one pair.
        let taps = kh * kw;
        let load8 = |at: usize| {
            let src = &weight[at.min(weight.len())..];
            if src.len() >= 8 {
                // SAFETY: 8 readable bytes.
                unsafe { _mm_loadl_epi64(src.as_ptr().cast()) }
            } else {
                load_partial_i8(src, 0) // the last channel's last pairs
            }
        };
        for blk in 0..blocks {
            for cp in 0..l.xd.c / 2 {
                for t0 in (0..taps).step_by(8) {
                    let rows: [__m256; 8] = array(|lane| {
                        let o = o0 + 8 * blk + lane;
                        if o >= oc {
                            return _mm256_setzero_ps();
                        }
                        let a = o * per_out + 2 * cp * taps + t0;
                        let wa = _mm_cvtepi8_epi16(load8(a));
                        let wb = _mm_cvtepi8_epi16(load8(a + taps));
                        let (lo, hi) = (_mm_unpacklo_epi16(wa, wb), _mm_unpackhi_epi16(wa, wb));
                        _mm256_castsi256_ps(_mm256_set_m128i(hi, lo))
                    });
                    let cols = transpose8x8(rows);
                    // Pairs past this channel pair's taps read other weights: dropped.
                    for (t, col) in cols.iter().enumerate().take(taps - t0) {
                        let v = (cp * taps + t0 + t) * blocks + blk;
                        wpack[v].write(_mm256_castps_si256(*col));
                    }
                }
            }
        }
    } else {
        // The vectors as i32 lanes: entry `v`, lane `lane` is `lanes[8·v + lane]`.
        let lanes = wpack[..n].as_mut_ptr().cast::<MaybeUninit<i32>>();
        // SAFETY: `n ≤ WCAP` vectors of 8 i32 lanes each, and `MaybeUninit<__m256i>` is 8
        // `MaybeUninit<i32>` in a row.
        let lanes = unsafe { core::slice::from_raw_parts_mut(lanes, 8 * n) };
        let pair = |lo: i8, hi: i8| MaybeUninit::new((lo as i32 & 0xffff) | (hi as i32) << 16);
        // Channel by channel, walking its weights `[C, KH, KW]` in tap-pair order.
        for blk in 0..blocks {
            for lane in 0..8 {
                let o = o0 + 8 * blk + lane;
                let mut at = 8 * blk + lane; // entry `blk` of the first tap pair
                let mut put = |v| {
                    lanes[at] = v;
                    at += 8 * blocks;
                };
                if o >= oc {
                    (0..l.pairs).for_each(|_| put(MaybeUninit::new(0)));
                    continue;
                }
                for r in weight[o * per_out..][..per_out].chunks_exact(kw) {
                    let mut q = r.chunks_exact(2);
                    q.by_ref().for_each(|ab| put(pair(ab[0], ab[1])));
                    if let [last] = q.remainder() {
                        put(pair(*last, 0));
                    }
                }
            }
        }
    }
    // SAFETY: every lane of entries `0..n` was just written (`n = pairs·blocks ≤ WCAP`,
    // checked by `Layout::new`), and `MaybeUninit<T>` has `T`'s layout.
    unsafe { core::slice::from_raw_parts(wpack.as_ptr().cast(), n) }
}

/// Writes padded input rows `i0·stride .. i0·stride + rows` of every channel into `xbuf`
/// (layout in the module docs) as `x[c, i0·stride + rr − pad, u − pad] − zp_in`, or 0 in
/// the padding, and returns them.
#[target_feature(enable = "avx2")]
fn fill_band<'b>(
    x: &[i8],
    l: &Layout,
    zp_in: i32,
    i0: usize,
    rows: usize,
    xbuf: &'b mut [MaybeUninit<i16>; XCAP],
) -> &'b [i16] {
    let (xd, pad, wp) = (l.xd, l.g.pad, l.wp);
    let used = xd.c * rows * wp;
    xbuf[..used + SLACK].fill(MaybeUninit::new(0));
    // SAFETY: the first `used + SLACK ≤ XCAP` elements were just initialized
    // (`Layout::new` checks the bound), and `MaybeUninit<i16>` has `i16`'s layout.
    let xbuf: &mut [i16] =
        unsafe { core::slice::from_raw_parts_mut(xbuf.as_mut_ptr().cast(), used + SLACK) };
    let zp = _mm256_set1_epi16(zp_in as i16);
    let iota = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // 16 columns of channel `c`, row `r`, from column `j`: widened, `zp_in` subtracted,
    // lanes past the row's end 0 (padding).
    let cols16 = |c: usize, r: usize, j: usize| {
        let v = load_partial_i8(&x[(c * xd.h + r) * xd.w + j..], 0);
        let v = _mm256_sub_epi16(_mm256_cvtepi8_epi16(v), zp);
        let keep = _mm256_cmpgt_epi16(_mm256_set1_epi16((xd.w - j) as i16), iota);
        _mm256_and_si256(v, keep)
    };
    let store = |xbuf: &mut [i16], at: usize, v: __m256i| {
        let out = &mut xbuf[at..][..16];
        // SAFETY: `out` is 16 i16s (32 bytes).
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) };
    };
    // Rows in increasing order: a row's last full-vector store may spill zeros into the
    // next row, which is written afterwards (or into the slack).
    let planes = xd.c / l.elem();
    for plane in 0..planes {
        for rr in 0..rows {
            let Some(r) = (i0 * l.g.stride + rr)
                .checked_sub(pad)
                .filter(|&r| r < xd.h)
            else {
                continue;
            };
            let dst = (plane * rows + rr) * wp + pad; // in positions
            for j in (0..xd.w).step_by(16) {
                if l.channel_pairs {
                    // Interleave channels 2·plane and 2·plane + 1.
                    let (a, b) = (cols16(2 * plane, r, j), cols16(2 * plane + 1, r, j));
                    let (lo, hi) = (_mm256_unpacklo_epi16(a, b), _mm256_unpackhi_epi16(a, b));
                    let at = 2 * (dst + j);
                    store(xbuf, at, _mm256_permute2x128_si256::<0x20>(lo, hi));
                    store(xbuf, at + 16, _mm256_permute2x128_si256::<0x31>(lo, hi));
                } else {
                    store(xbuf, dst + j, cols16(plane, r, j));
                }
            }
        }
    }
    &xbuf[..used]
}

/// Where a tile's outputs go, and the output stage of its channels.
struct Out<'a, 'p> {
    p: &'a DenseS8<'p>,
    rq: [Requant8; 2],
    /// First channel of the block.
    o0: usize,
    /// `OH·OW`: the distance between two channels' outputs.
    plane: usize,
}

/// One band of output rows with its widened input rows and packed weights.
struct Band<'a> {
    l: &'a Layout,
    xbuf: &'a [i16],
    wpack: &'a [__m256i],
    /// `xbuf` offset of each tap pair (see [`Layout::offsets`]).
    offs: &'a [u32],
    /// The same band as u8 bytes, and the weights as quads (used by [`Band::tile`] and
    /// [`Band::run_columns`] when `V`).
    quads: Option<vnni::Band<'a>>,
}

impl Band<'_> {
    /// Runs output rows `i0 .. i0 + n` (all of this band), flattened: tiles of `P`
    /// consecutive positions `i·OW + j` (a tile may span two rows), then one at a time.
    ///
    /// # Safety
    /// AVX2; `self` as built by `conv2d_s8_avx2` (`xbuf` covers the band, `wpack` has
    /// `pairs·B` vectors).
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn run<const P: usize, const B: usize, const V: bool>(
        &self,
        i0: usize,
        n: usize,
        out: &Out<'_, '_>,
        y: &mut [i8],
    ) {
        let l = self.l;
        let (ow, s, wp, e) = (l.yd.w, l.g.stride, l.wp, l.elem());
        let end = (i0 + n) * ow;
        // The next position's `xbuf` base, `((i − i0)·stride·wp + j·stride)·elem`,
        // stepped without division.
        let (mut pos, mut j, mut base_i) = (i0 * ow, 0, 0);
        let mut next = || {
            let base = (base_i + j * s) * e;
            j += 1;
            if j == ow {
                j = 0;
                base_i += s * wp;
            }
            base
        };
        while pos + P <= end {
            let base: [usize; P] = array(|_| next());
            // SAFETY: forwarded from the caller; `base` are positions of this band.
            let acc = unsafe { self.tile::<P, B, V>(base) };
            out.store::<P, B>(pos, &acc, y);
            pos += P;
        }
        while pos < end {
            // SAFETY: as above.
            let acc = unsafe { self.tile::<1, B, V>([next()]) };
            out.store::<1, B>(pos, &acc, y);
            pos += 1;
        }
    }

    /// The accumulators `Σ w·(x − zp)` of `P` output positions, given by their `xbuf`
    /// bases, for `B` blocks of 8 channels.
    ///
    /// # Safety
    /// AVX2, and the positions lie in this band: then every read `xbuf[base + off + {0,1}]`
    /// is in bounds, because the position's input rows `(i − i0)·stride + kp < rows` and
    /// columns `j·stride + kq + 1 ≤ (OW−1)·stride + KW ≤ wp − 1` are in the band.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn tile<const P: usize, const B: usize, const V: bool>(
        &self,
        base: [usize; P],
    ) -> [[__m256i; B]; P] {
        if let (true, Some(quads)) = (V, &self.quads) {
            // SAFETY: forwarded; `quads` was built for this band (see `vnni::Band::tile`),
            // and with `V` the CPU has AVX-512 VNNI and VL (`conv2d_s8_body`).
            return unsafe { quads.tile::<P, B>(base) };
        }
        debug_assert_eq!(self.wpack.len(), self.offs.len() * B);
        let xp = self.xbuf.as_ptr();
        let mut acc = [[_mm256_setzero_si256(); B]; P];
        for (pair, &off) in self.offs.iter().enumerate() {
            // SAFETY: `wpack` has `B` vectors per tap pair; the `xbuf` reads are in bounds
            // (see above); `read_unaligned` takes the i16 pair at any address.
            unsafe {
                let w = self.wpack.as_ptr().add(pair * B);
                let wv: [__m256i; B] = array(|b| *w.add(b));
                for t in 0..P {
                    let at = base[t] + off as usize;
                    debug_assert!(at + 1 < self.xbuf.len());
                    let xv = _mm256_set1_epi32(xp.add(at).cast::<i32>().read_unaligned());
                    for b in 0..B {
                        acc[t][b] = _mm256_add_epi32(acc[t][b], _mm256_madd_epi16(xv, wv[b]));
                    }
                }
            }
        }
        acc
    }
}

impl Band<'_> {
    /// Output rows `i0 .. i0 + n`, vectorized across columns: for one output row and 16
    /// consecutive columns `j .. j + 16`, the even columns sit in one vector and the odd
    /// ones in another, so that each column tap pair `(x[s], x[s+1])` of all eight is one
    /// plain 16-lane load from `xbuf` (at `j + 2q` and at `j + 1 + 2q`), shared by the
    /// `G` channels `o0 ..` of this pass (at most 8), whose weight pairs are broadcast from
    /// `wpack` (lane `o`). The last 16 columns of a row overlap the previous ones when `OW`
    /// is not a multiple of 16 (the same values are written twice).
    ///
    /// # Safety
    /// AVX2; `self` as built by `conv2d_s8_avx2` for a `columns` layout (stride 1, column
    /// pairs, one block, `OW ≥ 16`): the loads reach at most column
    /// `(OW − 16) + 1 + (KW − 1) + 15 = W + 2·pad ≤ wp − 1` of a band row.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn run_columns<const G: usize, const V: bool>(
        &self,
        o0: usize,
        i0: usize,
        n: usize,
        p: &DenseS8<'_>,
        y: &mut [i8],
    ) {
        let l = self.l;
        // This pass: channels `o0 .. o0 + oc`, lane `o` of the packed weights.
        let (oc, ow, wp) = ((l.yd.c - o0).min(8), l.yd.w, l.wp);
        let plane = l.yd.h * ow;
        debug_assert!(l.columns && oc <= G && G <= 8 && ow >= 16 && self.wpack.len() == l.pairs);
        let rq: [Requant8; G] = array(|o| {
            let o = o0 + o.min(oc - 1);
            let splat = |v: &[i32]| [v[o]; 8];
            Requant8::new(
                &splat(p.bias),
                &splat(p.multiplier),
                &splat(p.shift),
                0,
                p.zp_out,
            )
        });
        for i in i0..i0 + n {
            let mut j0 = 0;
            loop {
                let j = j0.min(ow - 16);
                let base = (i - i0) * wp + j;
                // SAFETY: forwarded; `quads` was built for this band, and with `V` the CPU
                // has AVX-512 VNNI and VL (`conv2d_s8_body`).
                let (even, odd) = match (V, &self.quads) {
                    (true, Some(quads)) => unsafe { quads.columns::<G>(base) },
                    _ => unsafe { self.columns::<G>(base) },
                };
                for o in 0..oc.min(G) {
                    let out = &mut y[(o0 + o) * plane + i * ow + j..][..16];
                    let (re, fe) = rq[o].requant(even[o]);
                    let (ro, fo) = rq[o].requant(odd[o]);
                    if Requant8::in_range(_mm256_or_si256(fe, fo)) {
                        let codes = rq[o].interleave16(re, ro);
                        // SAFETY: `out` is 16 writable bytes.
                        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), codes) };
                    } else {
                        let (mut e, mut d) = ([0i32; 8], [0i32; 8]);
                        // SAFETY: `e` and `d` are 8 i32s (32 bytes) each.
                        unsafe {
                            _mm256_storeu_si256(e.as_mut_ptr().cast(), even[o]);
                            _mm256_storeu_si256(d.as_mut_ptr().cast(), odd[o]);
                        }
                        for t in 0..8 {
                            out[2 * t] = p.output(o0 + o, e[t]);
                            out[2 * t + 1] = p.output(o0 + o, d[t]);
                        }
                    }
                }
                if j + 16 >= ow {
                    break;
                }
                j0 += 16;
            }
        }
    }

    /// The accumulators of [`Band::run_columns`] for the 16 columns whose first tap pair
    /// starts at `xbuf[base]`: even columns, odd columns, per channel.
    ///
    /// # Safety
    /// AVX2; `base` as in `run_columns`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn columns<const G: usize>(&self, base: usize) -> ([__m256i; G], [__m256i; G]) {
        let (xp, wp_i32) = (self.xbuf.as_ptr(), self.wpack.as_ptr().cast::<i32>());
        let mut even = [_mm256_setzero_si256(); G];
        let mut odd = [_mm256_setzero_si256(); G];
        for (pair, &off) in self.offs.iter().enumerate() {
            let at = base + off as usize;
            debug_assert!(at + 17 <= self.xbuf.len());
            // SAFETY: in bounds (see `run_columns`); `wpack` has 8 lanes per tap pair.
            unsafe {
                let xe = _mm256_loadu_si256(xp.add(at).cast());
                let xo = _mm256_loadu_si256(xp.add(at + 1).cast());
                for o in 0..G {
                    let w = _mm256_set1_epi32(*wp_i32.add(8 * pair + o));
                    even[o] = _mm256_add_epi32(even[o], _mm256_madd_epi16(xe, w));
                    odd[o] = _mm256_add_epi32(odd[o], _mm256_madd_epi16(xo, w));
                }
            }
        }
        (even, odd)
    }
}

impl Out<'_, '_> {
    /// Requantizes and stores the outputs of positions `pos .. pos + P` (flat `i·OW + j`,
    /// so consecutive in each channel's plane), channels `o0 .. o0 + 8·B` (those below
    /// `OC`).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn store<const P: usize, const B: usize>(
        &self,
        pos: usize,
        acc: &[[__m256i; B]; P],
        y: &mut [i8],
    ) {
        let oc = y.len() / self.plane;
        for (b, rq) in self.rq.iter().enumerate().take(B) {
            let o_b = self.o0 + 8 * b;
            let lanes = 8.min(oc.saturating_sub(o_b));
            let at = o_b * self.plane + pos;
            let mut flags = _mm256_setzero_si256();
            let r: [__m256i; P] = array(|t| {
                let (r, f) = rq.requant(acc[t][b]);
                flags = _mm256_or_si256(flags, f);
                r
            });
            if (P == 4 || P == 8) && Requant8::in_range(flags) {
                // Bytes [position][channel] in each 128-bit half (channels 0..4, 4..8),
                // transposed to [channel][position].
                let by_channel = |r4: &[__m256i]| {
                    let t = _mm256_setr_epi8(
                        0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, //
                        0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                    );
                    _mm256_shuffle_epi8(rq.narrow([r4[0], r4[1], r4[2], r4[3]]), t)
                };
                let first = by_channel(&r[..4]);
                if P == 4 {
                    // Dword c of half h: channel 4h + c's 4 outputs.
                    let mut cols = [0u32; 8];
                    // SAFETY: `cols` is 8 u32s (32 bytes).
                    unsafe { _mm256_storeu_si256(cols.as_mut_ptr().cast(), first) };
                    let order = [0, 1, 2, 3, 4, 5, 6, 7];
                    for (l, &c) in order.iter().enumerate().take(lanes) {
                        let dst = &mut y[at + l * self.plane..][..4];
                        dst.copy_from_slice(&bytemuck::cast::<u32, [i8; 4]>(cols[c]));
                    }
                } else {
                    let second = by_channel(&r[4..]);
                    // Qwords: channels 0, 1, 4, 5 and 2, 3, 6, 7, 8 outputs each.
                    let mut cols = [0u64; 8];
                    // SAFETY: `cols` is 8 u64s (64 bytes).
                    unsafe {
                        let p = cols.as_mut_ptr().cast::<__m256i>();
                        _mm256_storeu_si256(p, _mm256_unpacklo_epi32(first, second));
                        _mm256_storeu_si256(p.add(1), _mm256_unpackhi_epi32(first, second));
                    }
                    let order = [0, 1, 4, 5, 2, 3, 6, 7];
                    for (l, &c) in order.iter().enumerate().take(lanes) {
                        let dst = &mut y[at + l * self.plane..][..8];
                        dst.copy_from_slice(&bytemuck::cast::<u64, [i8; 8]>(cols[c]));
                    }
                }
                continue;
            }
            // A lone position, or some value out of the i32 range.
            for (t, acc) in acc.iter().enumerate() {
                let codes = rq.apply(acc[b]).unwrap_or_else(|| {
                    let mut sums = [0i32; 8];
                    // SAFETY: `sums` is 8 i32s (32 bytes).
                    unsafe { _mm256_storeu_si256(sums.as_mut_ptr().cast(), acc[b]) };
                    let mut codes = 0u64;
                    for (l, &sum) in sums.iter().enumerate().take(lanes) {
                        codes |= (self.p.output(o_b + l, sum) as u8 as u64) << (8 * l);
                    }
                    codes
                });
                for l in 0..lanes {
                    y[at + l * self.plane + t] = (codes >> (8 * l)) as u8 as i8;
                }
            }
        }
    }
}

/// AVX-512 VNNI: the tiles and columns by tap quads (`x86/vnni.rs`).
mod vnni;
