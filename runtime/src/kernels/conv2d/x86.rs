//! x86-64 AVX2 convolutions. `conv2d_s8` is vectorized across output channels; the float
//! kernels are the reference's.
//!
//! **int8.** Shapes as in `reference.rs`: `x` `[C, H, W]`, `weight` `[OC, C, KH, KW]`,
//! `y` `[OC, OH, OW]`. Eight output channels sit in the eight i32 lanes of a vector, and
//! pairs of horizontally adjacent taps `(kq, kq+1)` feed one `_mm256_madd_epi16`:
//!
//! ```text
//! acc[o] += w[o,c,kp,kq]·(x[c,r,s] − zp) + w[o,c,kp,kq+1]·(x[c,r,s+1] − zp)   (8 channels o)
//! ```
//!
//! Both factors are exact i16 (`|x − zp| ≤ 255`, `|w| ≤ 127`), so each pair sum fits in
//! i32 without saturation, and the i32 lanes wrap like the reference's `wrapping_add`.
//! Per call, on the stack (never in the arena, so `scratch_len` is 0):
//! - `wpack`: the weights of up to 16 output channels as `(w[kq], w[kq+1])` i16 pairs,
//!   channel-minor, `[C, KH, ⌈KW/2⌉, B][8]` (a zero weight pairs with the last tap of an
//!   odd `KW`);
//! - `xbuf`: a band of input rows widened to i16 with `zp_in` subtracted and the padding
//!   written as 0, `[C, band rows, W + 2·pad + 1]`.
//!
//! Every output position then reads the pair `(xbuf[u], xbuf[u+1])` as one i32 and
//! broadcasts it, so a tile of `P` positions × `B` blocks of 8 channels costs, per tap pair,
//! `B` weight loads, `P` broadcasts and `P·B` multiply-adds. Layers whose packed weights or
//! input rows do not fit the stack buffers run the reference.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use kestrel_format::ConvGeom;

use super::reference;
use crate::kernels::x86::{load_partial_i8, Requant8};
use crate::kernels::{DenseS8, Dims};

// No scratch (the reference's `scratch_len`, 0): the packed weights and widened input rows
// live on the stack.
pub(crate) use reference::{conv2d_f16, conv2d_f32, scratch_len};

/// i16 elements in the stack's input band (8 KiB), including 16 of slack for the last
/// row's vector stores.
const XCAP: usize = 4096;
/// 8-channel weight-pair vectors in the stack's weight pack (8 KiB).
const WCAP: usize = 256;

/// int8: see the module docs; equal to [`reference::conv2d_s8`] bit for bit.
pub(crate) fn conv2d_s8(
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
    match Layout::new(xd, g, yd) {
        // SAFETY: this file is compiled only where the target has AVX2 (kestrel_isa).
        Some(l) => unsafe { conv2d_s8_avx2(x, p, &l, y) },
        None => reference::conv2d_s8(x, xd, p, g, yd, y, scratch),
    }
}

/// The shapes, and how the layer is cut to fit the stack buffers.
struct Layout {
    xd: Dims,
    yd: Dims,
    g: ConvGeom,
    /// Tap pairs per kernel row, `⌈KW/2⌉`.
    nq: usize,
    /// 8-channel blocks per pass over the input (1 or 2).
    blocks: usize,
    /// Padded row length in `xbuf`: `W + 2·pad + 1` (the `+1` is read, with a zero
    /// weight, by the last pair of an odd `KW`).
    wp: usize,
    /// Output rows per band.
    band: usize,
}

impl Layout {
    /// `None` if one output row's input rows or one channel block's weights overflow the
    /// stack buffers.
    fn new(xd: Dims, g: ConvGeom, yd: Dims) -> Option<Self> {
        let nq = g.kw.div_ceil(2);
        let pairs = xd.c * g.kh * nq; // weight vectors per 8-channel block
        let blocks = if yd.c > 8 && 2 * pairs <= WCAP { 2 } else { 1 };
        let wp = xd.w + 2 * g.pad + 1;
        let rows = |band: usize| (band - 1) * g.stride + g.kh;
        if pairs > WCAP || xd.c * rows(1) * wp + 16 > XCAP || yd.len() == 0 {
            return None;
        }
        let mut band = yd.h;
        while xd.c * rows(band) * wp + 16 > XCAP {
            band = band.div_ceil(2);
        }
        while xd.c * rows(band) * wp + 16 > XCAP {
            band -= 1;
        }
        Some(Layout {
            xd,
            yd,
            g,
            nq,
            blocks,
            wp,
            band,
        })
    }

    /// Input rows (padded coordinates) a band of `n` output rows reads.
    fn band_rows(&self, n: usize) -> usize {
        (n - 1) * self.g.stride + self.g.kh
    }
}

/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn conv2d_s8_avx2(x: &[i8], p: DenseS8<'_>, l: &Layout, y: &mut [i8]) {
    let yd = l.yd;
    // Uninitialized: only the parts written for a block and band are read.
    let mut wpack = [const { MaybeUninit::<__m256i>::uninit() }; WCAP];
    let mut xbuf = [const { MaybeUninit::<i16>::uninit() }; XCAP];
    for o0 in (0..yd.c).step_by(8 * l.blocks) {
        let blocks = l.blocks.min((yd.c - o0).div_ceil(8));
        let wpack = pack_weights(p.weight, l, o0, blocks, &mut wpack);
        let rq = [
            Requant8::new(p.bias, p.multiplier, p.shift, o0, p.zp_out),
            Requant8::new(p.bias, p.multiplier, p.shift, o0 + 8, p.zp_out),
        ];
        let out = Out {
            p: &p,
            rq: &rq,
            o0,
            plane: yd.h * yd.w,
        };
        for i0 in (0..yd.h).step_by(l.band) {
            let n = l.band.min(yd.h - i0);
            let rows = l.band_rows(n);
            let band = Band {
                l,
                rows,
                xbuf: fill_band(x, l, p.zp_in, i0, rows, &mut xbuf),
                wpack,
            };
            // SAFETY (both calls): `band.xbuf` holds every row the band's positions read
            // (see `Band::tile`), and `wpack` has `blocks` vectors per tap pair.
            unsafe {
                if blocks == 2 {
                    band.run::<4, 2>(i0, n, &out, y);
                } else {
                    band.run::<8, 1>(i0, n, &out, y);
                }
            }
        }
    }
}

/// Packs the weights of channels `o0 .. o0 + 8·blocks` into `wpack[((c·KH + kp)·NQ + q)·B + b]`,
/// lane `l` = `(w[o, c, kp, 2q], w[o, c, kp, 2q+1])` for `o = o0 + 8b + l` (zero past `KW`
/// or `OC`), and returns the part written.
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
    let w = |o: usize, c: usize, kp: usize, kq: usize| -> i32 {
        if o < oc && kq < kw {
            weight[o * per_out + (c * kh + kp) * kw + kq] as i32
        } else {
            0
        }
    };
    let mut v = 0;
    for c in 0..l.xd.c {
        for kp in 0..kh {
            for q in 0..l.nq {
                for b in 0..blocks {
                    let mut lanes = [0i32; 8];
                    for (lane, pair) in lanes.iter_mut().enumerate() {
                        let o = o0 + 8 * b + lane;
                        let (lo, hi) = (w(o, c, kp, 2 * q), w(o, c, kp, 2 * q + 1));
                        *pair = (lo & 0xffff) | (hi << 16);
                    }
                    // SAFETY: `lanes` is 8 i32s (32 bytes), `loadu` needs no alignment.
                    wpack[v].write(unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) });
                    v += 1;
                }
            }
        }
    }
    // SAFETY: entries `0..v` were just written (`v = C·KH·NQ·blocks ≤ WCAP`, checked by
    // `Layout::new`), and `MaybeUninit<T>` has `T`'s layout.
    unsafe { core::slice::from_raw_parts(wpack.as_ptr().cast(), v) }
}

/// Writes padded input rows `i0·stride .. i0·stride + rows` of every channel into
/// `xbuf[(c·rows + rr)·wp + u]` as `x[c, i0·stride + rr − pad, u − pad] − zp_in`, or 0 in
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
    xbuf[..used + 16].fill(MaybeUninit::new(0));
    // SAFETY: the first `used + 16 ≤ XCAP` elements were just initialized (`Layout::new`
    // checks the bound), and `MaybeUninit<i16>` has `i16`'s layout.
    let xbuf: &mut [i16] =
        unsafe { core::slice::from_raw_parts_mut(xbuf.as_mut_ptr().cast(), used + 16) };
    let zp = _mm256_set1_epi16(zp_in as i16);
    let iota = _mm256_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // Rows in increasing order: a row's last 16-lane store may spill zeros into the next
    // row, which is written afterwards.
    for c in 0..xd.c {
        for rr in 0..rows {
            let Some(r) = (i0 * l.g.stride + rr)
                .checked_sub(pad)
                .filter(|&r| r < xd.h)
            else {
                continue;
            };
            let src = (c * xd.h + r) * xd.w;
            let dst = (c * rows + rr) * wp + pad;
            for j in (0..xd.w).step_by(16) {
                let v = load_partial_i8(&x[src + j..], 0);
                let v = _mm256_sub_epi16(_mm256_cvtepi8_epi16(v), zp);
                // Lanes past the row's end become padding (0).
                let keep = _mm256_cmpgt_epi16(_mm256_set1_epi16((xd.w - j) as i16), iota);
                let out = &mut xbuf[dst + j..][..16];
                // SAFETY: `out` is 16 i16s (32 bytes).
                unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), _mm256_and_si256(v, keep)) };
            }
        }
    }
    &xbuf[..used]
}

/// Where a tile's outputs go, and the output stage of its channels.
struct Out<'a, 'p> {
    p: &'a DenseS8<'p>,
    rq: &'a [Requant8; 2],
    /// First channel of the block.
    o0: usize,
    /// `OH·OW`: the distance between two channels' outputs.
    plane: usize,
}

/// One band of output rows with its widened input rows and packed weights.
struct Band<'a> {
    l: &'a Layout,
    rows: usize,
    /// `[C, rows, wp]`.
    xbuf: &'a [i16],
    wpack: &'a [__m256i],
}

impl Band<'_> {
    /// Runs output rows `i0 .. i0 + n` (all of this band), flattened: tiles of `P`
    /// consecutive positions `i·OW + j` (a tile may span two rows), then one at a time.
    ///
    /// # Safety
    /// AVX2; `self` as built by `conv2d_s8_avx2` (`xbuf` covers the band, `wpack` has
    /// `C·KH·NQ·B` vectors).
    #[target_feature(enable = "avx2")]
    unsafe fn run<const P: usize, const B: usize>(
        &self,
        i0: usize,
        n: usize,
        out: &Out<'_, '_>,
        y: &mut [i8],
    ) {
        let (ow, s, wp) = (self.l.yd.w, self.l.g.stride, self.l.wp);
        let end = (i0 + n) * ow;
        // The next position and its `xbuf` offset, stepped without division.
        let (mut pos, mut j, mut base_i) = (i0 * ow, 0, 0);
        let mut next = || {
            let base = base_i + j * s;
            j += 1;
            if j == ow {
                j = 0;
                base_i += s * wp;
            }
            base
        };
        while pos + P <= end {
            let base: [usize; P] = core::array::from_fn(|_| next());
            // SAFETY: forwarded from the caller; `base` are positions of this band.
            let acc = unsafe { self.tile::<P, B>(base) };
            out.store::<P, B>(pos, &acc, y);
            pos += P;
        }
        while pos < end {
            // SAFETY: as above.
            let acc = unsafe { self.tile::<1, B>([next()]) };
            out.store::<1, B>(pos, &acc, y);
            pos += 1;
        }
    }

    /// The accumulators `Σ w·(x − zp)` of `P` output positions, given by their offsets
    /// `base = (i − i0)·stride·wp + j·stride` in `xbuf`, for `B` blocks of 8 channels.
    ///
    /// # Safety
    /// AVX2, and the positions lie in this band: then every read
    /// `xbuf[base + (c·rows + kp)·wp + 2q + {0, 1}]` is in bounds, because
    /// `(i − i0)·stride + kp < rows` and `j·stride + 2q + 1 ≤ (OW−1)·stride + KW ≤ wp − 1`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn tile<const P: usize, const B: usize>(&self, base: [usize; P]) -> [[__m256i; B]; P] {
        let l = self.l;
        let wp = l.wp;
        debug_assert_eq!(self.xbuf.len(), l.xd.c * self.rows * wp);
        debug_assert_eq!(self.wpack.len(), l.xd.c * l.g.kh * l.nq * B);
        let xp = self.xbuf.as_ptr();
        let mut acc = [[_mm256_setzero_si256(); B]; P];
        let mut w = self.wpack.as_ptr();
        for c in 0..l.xd.c {
            for kp in 0..l.g.kh {
                let row = (c * self.rows + kp) * wp;
                for q in 0..l.nq {
                    let off = row + 2 * q;
                    // SAFETY: `wpack` has `C·KH·NQ·B` vectors and this is vector
                    // `((c·KH + kp)·NQ + q)·B + b`; the `xbuf` reads are in bounds (see
                    // above); `read_unaligned` takes the i16 pair at any address.
                    unsafe {
                        let wv: [__m256i; B] = core::array::from_fn(|b| *w.add(b));
                        w = w.add(B);
                        for t in 0..P {
                            let pair = xp.add(base[t] + off).cast::<i32>().read_unaligned();
                            let xv = _mm256_set1_epi32(pair);
                            for b in 0..B {
                                acc[t][b] =
                                    _mm256_add_epi32(acc[t][b], _mm256_madd_epi16(xv, wv[b]));
                            }
                        }
                    }
                }
            }
        }
        acc
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
            // codes[t]: byte l is channel o_b + l at position pos + t.
            let codes: [u64; P] = core::array::from_fn(|t| match rq.apply(acc[t][b]) {
                Some(codes) => codes,
                None => {
                    let mut sums = [0i32; 8];
                    // SAFETY: `sums` is 8 i32s (32 bytes).
                    unsafe { _mm256_storeu_si256(sums.as_mut_ptr().cast(), acc[t][b]) };
                    let mut codes = 0u64;
                    for (l, &sum) in sums.iter().enumerate().take(lanes) {
                        codes |= (self.p.output(o_b + l, sum) as u8 as u64) << (8 * l);
                    }
                    codes
                }
            });
            let at = o_b * self.plane + pos;
            if P == 8 || P == 4 {
                // Transpose [position][channel] bytes to [channel][position] and store
                // each channel's P consecutive outputs at once.
                let cols =
                    transpose8x8(core::array::from_fn(|t| codes.get(t).copied().unwrap_or(0)));
                for (l, col) in cols.iter().enumerate().take(lanes) {
                    let dst = &mut y[at + l * self.plane..][..P];
                    dst.copy_from_slice(&bytemuck::cast::<u64, [i8; 8]>(*col)[..P]);
                }
            } else {
                for (t, codes) in codes.iter().enumerate() {
                    for l in 0..lanes {
                        y[at + l * self.plane + t] = (codes >> (8 * l)) as u8 as i8;
                    }
                }
            }
        }
    }
}

/// Transposes an 8 × 8 byte matrix held as eight little-endian u64 rows.
#[target_feature(enable = "avx2")]
#[inline]
fn transpose8x8(rows: [u64; 8]) -> [u64; 8] {
    let r = |a: usize| _mm_set_epi64x(rows[a + 1] as i64, rows[a] as i64);
    let (r01, r23, r45, r67) = (r(0), r(2), r(4), r(6));
    // Interleave bytes of rows (0,1), (2,3), …: column c holds r0[c] r1[c].
    let t0 = _mm_unpacklo_epi8(r01, _mm_unpackhi_epi64(r01, r01));
    let t1 = _mm_unpacklo_epi8(r23, _mm_unpackhi_epi64(r23, r23));
    let t2 = _mm_unpacklo_epi8(r45, _mm_unpackhi_epi64(r45, r45));
    let t3 = _mm_unpacklo_epi8(r67, _mm_unpackhi_epi64(r67, r67));
    // Then 16-bit pairs: columns 0..4 and 4..8 of rows 0..4 (and 4..8).
    let u0 = _mm_unpacklo_epi16(t0, t1);
    let u1 = _mm_unpackhi_epi16(t0, t1);
    let u2 = _mm_unpacklo_epi16(t2, t3);
    let u3 = _mm_unpackhi_epi16(t2, t3);
    // Then 32-bit halves: two full columns per vector.
    let w = [
        _mm_unpacklo_epi32(u0, u2),
        _mm_unpackhi_epi32(u0, u2),
        _mm_unpacklo_epi32(u1, u3),
        _mm_unpackhi_epi32(u1, u3),
    ];
    core::array::from_fn(|c| {
        let v = w[c / 2];
        (if c % 2 == 0 {
            _mm_cvtsi128_si64(v)
        } else {
            _mm_extract_epi64::<1>(v)
        }) as u64
    })
}
