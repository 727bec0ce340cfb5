//! AVX-512 VNNI tiles: two tap pairs of a kernel row that lie side by side in `xbuf` (the
//! next column pair, or for channel pairs the next column of both channels) form a tap
//! *quad*, four consecutive bytes of a u8 copy of the band, multiplied with 4 s8 weights
//! per channel by one `vpdpbusd` (u8 × s8, four products summed into the i32 lane without
//! saturation):
//!
//! ```text
//! acc[o] += w[o,c,kp,kq]·x'[c,r,s] + w[o,c+1,kp,kq]·x'[c+1,r,s]
//!         + w[o,c,kp,kq+1]·x'[c,r,s+1] + w[o,c+1,kp,kq+1]·x'[c+1,r,s+1]   (channel pairs)
//! acc[o] += Σ_{d<4} w[o,c,kp,kq+d]·x'[c,r,s+d]                             (column pairs)
//! ```
//!
//! with `x' = x ^ 0x80 = x + 128` (u8) and the padding written as `zp_in + 128`, so that
//! every tap reads `x' = (x − zp_in) + (zp_in + 128)`, and `Σ w·(x − zp_in) = Σ w·x' −
//! (zp_in + 128)·Σ w` (modulo 2^32, like the reference's wrapping sum). A row with an odd
//! number of pairs gets a zero pair; it reads up to 2 columns past the last tap, inside
//! `wp = W + 2·pad + 3`. Same `xbuf` layout as the i16 rows, one byte per element.

use super::*;

/// Stack buffers of the quad path, reused by every block and band.
pub(super) struct Buffers {
    /// `w[quad·B + b]`: channels `o0 + 8b ..` × 4 s8 weights per lane.
    w: [MaybeUninit<__m256i>; WCAP],
    /// The first tap pair of each quad.
    first: [usize; WCAP],
    offs: [u32; WCAP],
    x: [MaybeUninit<u8>; XCAP],
}

/// One block's quads: weights, first pairs, and `(zp_in + 128)·Σ w` per channel.
pub(super) struct Quads<'q> {
    w: &'q [__m256i],
    first: &'q [usize],
    offs: &'q mut [u32; WCAP],
    x: &'q mut [MaybeUninit<u8>; XCAP],
    corr: [__m256i; 2],
}

/// A band as the quad tiles read it.
pub(super) struct Band<'a> {
    /// `[C, rows, wp]` or `[C/2, rows, wp, 2]` bytes `x'` (padding `zp_in + 128`).
    x: &'a [u8],
    w: &'a [__m256i],
    /// `x` offset of each quad.
    offs: &'a [u32],
    corr: [__m256i; 2],
}

impl Buffers {
    pub(super) fn new() -> Self {
        Buffers {
            w: [const { MaybeUninit::uninit() }; WCAP],
            first: [0; WCAP],
            offs: [0; WCAP],
            x: [const { MaybeUninit::uninit() }; XCAP],
        }
    }

    /// Quads from the tap pairs `wpack` (`[pairs, B]` vectors of i16 pairs, each
    /// within i8) of one block of channels.
    ///
    /// # Safety
    /// The CPU must support AVX2, AVX-512 VNNI and VL.
    #[target_feature(enable = "avx2,avx512vnni,avx512vl")]
    pub(super) unsafe fn pack(
        &mut self,
        l: &Layout,
        wpack: &[__m256i],
        blocks: usize,
        zp_in: i32,
    ) -> Quads<'_> {
        let per_row = if l.channel_pairs {
            l.g.kw
        } else {
            l.g.kw.div_ceil(2)
        };
        // i16 lanes to bytes: the i32 lane `t`'s pair lands in bytes `2t, 2t + 1`
        // of its 128-bit half (lanes 0..4 of each half, all that `unpacklo` reads).
        let bytes = |v: __m256i| _mm256_packs_epi16(v, v);
        let ones = _mm256_set1_epi8(1);
        let mut sum = [_mm256_setzero_si256(); 2];
        let mut n = 0;
        for row in 0..l.pairs / per_row {
            for q in (0..per_row).step_by(2) {
                let p0 = row * per_row + q;
                self.first[n] = p0;
                for (b, sum) in sum.iter_mut().enumerate().take(blocks) {
                    let lo = wpack[p0 * blocks + b];
                    let hi = match q + 1 < per_row {
                        true => wpack[(p0 + 1) * blocks + b],
                        false => _mm256_setzero_si256(),
                    };
                    let quad = _mm256_unpacklo_epi16(bytes(lo), bytes(hi));
                    *sum = _mm256_dpbusd_epi32(*sum, ones, quad); // Σ w per channel
                    self.w[n * blocks + b].write(quad);
                }
                n += 1;
            }
        }
        let zp128 = _mm256_set1_epi32(zp_in + 128);
        // SAFETY: entries `0..n·blocks` were just written (`n ≤ pairs`, so within
        // `WCAP` like `wpack`), and `MaybeUninit<T>` has `T`'s layout.
        let w = unsafe { core::slice::from_raw_parts(self.w.as_ptr().cast(), n * blocks) };
        Quads {
            w,
            first: &self.first[..n],
            offs: &mut self.offs,
            x: &mut self.x,
            corr: array(|b| _mm256_mullo_epi32(sum[b], zp128)),
        }
    }
}

impl Quads<'_> {
    /// The bytes of band `i0` (`rows` input rows) and the quads' offsets in it, from
    /// the tap pairs' `offs`.
    #[target_feature(enable = "avx2")]
    pub(super) fn band(
        &mut self,
        x: &[i8],
        l: &Layout,
        zp_in: i32,
        i0: usize,
        rows: usize,
        offs: &[u32],
    ) -> Band<'_> {
        for (o, &p) in self.offs.iter_mut().zip(self.first) {
            *o = offs[p];
        }
        Band {
            x: fill_band_u8(x, l, zp_in, i0, rows, self.x),
            w: self.w,
            offs: &self.offs[..self.first.len()],
            corr: self.corr,
        }
    }
}

impl Band<'_> {
    /// [`super::Band::tile`] by quads.
    ///
    /// # Safety
    /// AVX2 and AVX-512 VNNI/VL; the positions lie in this band: every read
    /// `x[base + off + {0..3}]` is in bounds, as the pairs' reads are, two columns
    /// further at most (inside `wp`).
    #[target_feature(enable = "avx2,avx512vnni,avx512vl")]
    #[inline]
    pub(super) unsafe fn tile<const P: usize, const B: usize>(
        &self,
        base: [usize; P],
    ) -> [[__m256i; B]; P] {
        debug_assert_eq!(self.w.len(), self.offs.len() * B);
        let xp = self.x.as_ptr();
        let mut acc = [[_mm256_setzero_si256(); B]; P];
        for (quad, &off) in self.offs.iter().enumerate() {
            // SAFETY: `w` has `B` vectors per quad; the `x` reads are in bounds (see
            // above); `read_unaligned` takes the 4 bytes at any address.
            unsafe {
                let w = self.w.as_ptr().add(quad * B);
                let wv: [__m256i; B] = array(|b| *w.add(b));
                for t in 0..P {
                    let at = base[t] + off as usize;
                    debug_assert!(at + 3 < self.x.len());
                    let xv = _mm256_set1_epi32(xp.add(at).cast::<i32>().read_unaligned());
                    for b in 0..B {
                        acc[t][b] = _mm256_dpbusd_epi32(acc[t][b], xv, wv[b]);
                    }
                }
            }
        }
        array(|t| array(|b| _mm256_sub_epi32(acc[t][b], self.corr[b])))
    }

    /// [`super::Band::columns`] by quads of column pairs: for 16 output columns from
    /// `base`, quad `q` of a kernel row reads bytes `base + off + 2t + {0..3}` for the
    /// even column `2t` and `+ 1` for the odd one: two 16-byte loads (at `+0` for columns
    /// 0..8, `+8` for 8..16) and one byte shuffle each. Channel `o`'s 4 weights are
    /// broadcast (lane `o` of the quad's vector).
    ///
    /// # Safety
    /// AVX2 and AVX-512 VNNI/VL; `base` as in `run_columns`: the used bytes reach column
    /// `(OW − 1) + 4·⌈⌈KW/2⌉/2⌉ − 1 ≤ W + 2·pad + 2 = wp − 1` of a band row, and the
    /// loads at most 5 bytes further, inside the slack after the last row.
    #[target_feature(enable = "avx2,avx512vnni,avx512vl")]
    #[inline]
    pub(super) unsafe fn columns<const G: usize>(
        &self,
        base: usize,
    ) -> ([__m256i; G], [__m256i; G]) {
        let (xp, w_i32) = (self.x.as_ptr(), self.w.as_ptr().cast::<i32>());
        #[rustfmt::skip]
        let (pe, po) = (
            _mm256_setr_epi8(0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9,
                             0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9),
            _mm256_setr_epi8(1, 2, 3, 4, 3, 4, 5, 6, 5, 6, 7, 8, 7, 8, 9, 10,
                             1, 2, 3, 4, 3, 4, 5, 6, 5, 6, 7, 8, 7, 8, 9, 10),
        );
        let mut even = [_mm256_setzero_si256(); G];
        let mut odd = [_mm256_setzero_si256(); G];
        for (quad, &off) in self.offs.iter().enumerate() {
            let at = base + off as usize;
            debug_assert!(at + 24 <= self.x.len());
            // SAFETY: in bounds (see above); `w` has 8 lanes per quad.
            unsafe {
                let lo = _mm_loadu_si128(xp.add(at).cast());
                let hi = _mm_loadu_si128(xp.add(at + 8).cast());
                let v = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi);
                let (xe, xo) = (_mm256_shuffle_epi8(v, pe), _mm256_shuffle_epi8(v, po));
                for o in 0..G {
                    let w = _mm256_set1_epi32(*w_i32.add(8 * quad + o));
                    even[o] = _mm256_dpbusd_epi32(even[o], xe, w);
                    odd[o] = _mm256_dpbusd_epi32(odd[o], xo, w);
                }
            }
        }
        let mut corr = [0i32; 8];
        // SAFETY: `corr` is 8 i32s (32 bytes).
        unsafe { _mm256_storeu_si256(corr.as_mut_ptr().cast(), self.corr[0]) };
        for o in 0..G {
            let c = _mm256_set1_epi32(corr[o]);
            (even[o], odd[o]) = (_mm256_sub_epi32(even[o], c), _mm256_sub_epi32(odd[o], c));
        }
        (even, odd)
    }
}

/// [`fill_band`] as bytes `x ^ 0x80`, the padding `zp_in + 128`.
#[target_feature(enable = "avx2")]
fn fill_band_u8<'b>(
    x: &[i8],
    l: &Layout,
    zp_in: i32,
    i0: usize,
    rows: usize,
    xbuf: &'b mut [MaybeUninit<u8>; XCAP],
) -> &'b [u8] {
    let (xd, pad, wp) = (l.xd, l.g.pad, l.wp);
    let used = xd.c * rows * wp;
    let padv = (zp_in + 128) as u8 as i8;
    xbuf[..used + SLACK].fill(MaybeUninit::new(padv as u8));
    // SAFETY: the first `used + SLACK ≤ XCAP` bytes were just initialized
    // (`Layout::new` checks the bound).
    let xbuf: &mut [u8] =
        unsafe { core::slice::from_raw_parts_mut(xbuf.as_mut_ptr().cast(), used + SLACK) };
    let iota = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // 16 columns of channel `c`, row `r`, from column `j`, as `x'`; past the row's
    // end the padding.
    let cols16 = |c: usize, r: usize, j: usize| {
        let v = load_partial_i8(&x[(c * xd.h + r) * xd.w + j..], 0);
        let v = _mm_xor_si128(v, _mm_set1_epi8(i8::MIN));
        let keep = _mm_cmpgt_epi8(_mm_set1_epi8((xd.w - j).min(16) as i8), iota);
        _mm_blendv_epi8(_mm_set1_epi8(padv), v, keep)
    };
    let store = |xbuf: &mut [u8], at: usize, v: __m128i| {
        let out = &mut xbuf[at..][..16];
        // SAFETY: `out` is 16 bytes.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), v) };
    };
    // As in `fill_band`: rows in increasing order, spills overwritten or in the slack.
    for plane in 0..xd.c / l.elem() {
        for rr in 0..rows {
            let Some(r) = (i0 * l.g.stride + rr)
                .checked_sub(pad)
                .filter(|&r| r < xd.h)
            else {
                continue;
            };
            let dst = (plane * rows + rr) * wp + pad;
            for j in (0..xd.w).step_by(16) {
                if l.channel_pairs {
                    let (a, b) = (cols16(2 * plane, r, j), cols16(2 * plane + 1, r, j));
                    let at = 2 * (dst + j);
                    store(xbuf, at, _mm_unpacklo_epi8(a, b));
                    store(xbuf, at + 16, _mm_unpackhi_epi8(a, b));
                } else {
                    store(xbuf, dst + j, cols16(plane, r, j));
                }
            }
        }
    }
    // With the slack: `Band::columns` loads 16 bytes of which it uses 11.
    &xbuf[..used + SLACK]
}
