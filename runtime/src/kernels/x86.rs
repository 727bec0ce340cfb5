//! AVX2 helpers shared by the x86-64 kernel variants (`<op>/x86.rs`): the int8 output stage
//! (bias, requantization, output zero point, clamp) for eight channels at once, and loads
//! and stores of partial vectors that never touch memory outside their slices.
//!
//! Compiled on every x86-64 build; the variants that use it run only through
//! `Kernels::VARIANT`, which a plan uses only where the CPU has AVX2 and F16C (detected at
//! run time with the `std` feature, or guaranteed by the target: `KernelSet::runs_here`),
//! so every `#[target_feature(enable = "avx2")]` function here may be called from them.
//!
//! **AVX-512 VNNI.** Where the target also has `avx512vnni`, `avx512vl` and `avx512bw`
//! (e.g. `-C target-cpu=x86-64-v4 -C target-feature=+avx512vnni`, or `native` on Zen 4 or
//! Ice Lake and later), `conv2d_s8` and `fc_s8` multiply u8 × s8 quads with `vpdpbusd` on
//! 256-bit vectors: inputs as u8 `x + 128`, and `(zp_in + 128)·Σ w` subtracted after.
//! `vpdpbusd` wraps like `vpaddd` (the saturating `vpdpbusds` is not used), so the i32
//! accumulators are the reference's modulo 2^32, and the output stage here is shared.
//! [`crate::IMPL`] stays `"avx2"`: same files, same output stage, no scratch (the quads
//! live on the stack, like the AVX2 kernels' packed weights).

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use kestrel_format::quant::requant_in_range;

/// The output stage of [`crate::kernels::DenseS8::output`] for eight output channels
/// (one per i32 lane), with every per-channel constant prepared once:
///
/// `y = clamp(zp_out + requantize(bias + sum, multiplier, shift), -128, 127)`, where
/// `requantize(acc, m, s) = sat_i32((acc·m + 2^(n−1)) >> n)`, `n = 31 − s ∈ [1, 62]`.
///
/// AVX2 has no 64-bit arithmetic right shift, so the shift runs on an offset that makes the
/// product non-negative: `|acc·m| < 2^62`, hence `acc·m + 2^(n−1) + 2^62 ∈ [0, 2^64)`, and
/// `(v + 2^62) >> n = (v >> n) + 2^(62−n)` exactly (`2^n` divides `2^62`). Subtracting
/// `2^(62−n) − 2^31` then leaves `r + 2^31`, which lies in `[0, 2^32)` exactly when `r`
/// fits an i32. In that case (always, for realistic layers) the low half is the result;
/// otherwise [`Requant8::apply`] returns `None` and the caller takes the scalar reference
/// path, which saturates.
///
/// When every lane has `n ≥ 32` (`shift ≤ −1`, i.e. a real multiplier below 1/2: the
/// usual case) a shorter path is exact: the high half of `acc·m + 2^(n−1)` is
/// `floor(… / 2^32)`, and an arithmetic i32 shift by `n − 32` finishes the division; the
/// result always fits an i32.
#[derive(Clone, Copy)]
pub(crate) struct Requant8 {
    /// Every lane has `n ≥ 32`: [`Requant8::requant`] takes the short path.
    high: bool,
    /// `2^(n−1)` per 64-bit lane (short path).
    round_even: __m256i,
    round_odd: __m256i,
    /// `n − 32` per i32 lane (short path).
    n_high: __m256i,
    bias: __m256i,
    /// Multipliers of lanes 0, 2, 4, 6 (`_mm256_mul_epi32` reads the even i32 lanes).
    mul_even: __m256i,
    /// Multipliers of lanes 1, 3, 5, 7, moved to the even positions.
    mul_odd: __m256i,
    /// `n` per 64-bit lane, for the even and the odd i32 lanes.
    n_even: __m256i,
    n_odd: __m256i,
    /// `2^(n−1) + 2^62`.
    add_even: __m256i,
    add_odd: __m256i,
    /// `2^(62−n) − 2^31` (wrapping).
    sub_even: __m256i,
    sub_odd: __m256i,
    /// `zp_out` in every i16 lane.
    zp_out: __m256i,
}

impl Requant8 {
    /// Constants for channels `o0..o0 + 8` of `bias`, `multiplier` and `shift`; lanes past
    /// the end of the slices get harmless values (their outputs are never stored).
    #[target_feature(enable = "avx2")]
    pub(crate) fn new(
        bias: &[i32],
        multiplier: &[i32],
        shift: &[i32],
        o0: usize,
        zp_out: i32,
    ) -> Self {
        let zp_out = _mm256_set1_epi16(zp_out.clamp(-128, 127) as i16);
        let lanes = o0..o0 + 8;
        let (bias, mul, shift) = match (
            bias.get(lanes.clone()),
            multiplier.get(lanes.clone()),
            shift.get(lanes),
        ) {
            // SAFETY: each slice is 8 i32s (32 bytes); `loadu` needs no alignment.
            (Some(b), Some(m), Some(s)) => unsafe {
                debug_assert!(m.iter().zip(s).all(|(&m, &s)| requant_in_range(m, s)));
                (
                    _mm256_loadu_si256(b.as_ptr().cast()),
                    _mm256_loadu_si256(m.as_ptr().cast()),
                    _mm256_loadu_si256(s.as_ptr().cast()),
                )
            },
            // The last, partial block: missing lanes get harmless values.
            _ => {
                let mut b = [0i32; 8];
                let mut m = [1i32 << 30; 8];
                let mut s = [-1i32; 8]; // n = 32: keeps the short path
                for l in 0..8 {
                    let o = o0 + l;
                    if let (Some(&bl), Some(&ml), Some(&sl)) =
                        (bias.get(o), multiplier.get(o), shift.get(o))
                    {
                        debug_assert!(requant_in_range(ml, sl));
                        (b[l], m[l], s[l]) = (bl, ml, sl);
                    }
                }
                // SAFETY: each array is 8 i32s (32 bytes).
                unsafe {
                    (
                        _mm256_loadu_si256(b.as_ptr().cast()),
                        _mm256_loadu_si256(m.as_ptr().cast()),
                        _mm256_loadu_si256(s.as_ptr().cast()),
                    )
                }
            }
        };
        // n = 31 − shift ∈ [1, 62], as u64 per even / odd i32 lane.
        let n = _mm256_sub_epi32(_mm256_set1_epi32(31), shift);
        let n_even = _mm256_and_si256(n, _mm256_set1_epi64x(0xffff_ffff));
        let n_odd = _mm256_srli_epi64::<32>(n);
        let one = _mm256_set1_epi64x(1);
        let add = |n| {
            let half = _mm256_sllv_epi64(one, _mm256_sub_epi64(n, one)); // 2^(n−1)
            _mm256_add_epi64(half, _mm256_set1_epi64x(1 << 62))
        };
        let sub = |n| {
            let k = _mm256_sllv_epi64(one, _mm256_sub_epi64(_mm256_set1_epi64x(62), n));
            _mm256_sub_epi64(k, _mm256_set1_epi64x(1 << 31)) // 2^(62−n) − 2^31
        };
        let round = |n| _mm256_sllv_epi64(one, _mm256_sub_epi64(n, one));
        let below32 = _mm256_cmpgt_epi32(_mm256_set1_epi32(32), n);
        Requant8 {
            high: _mm256_testz_si256(below32, below32) != 0,
            round_even: round(n_even),
            round_odd: round(n_odd),
            n_high: _mm256_sub_epi32(n, _mm256_set1_epi32(32)),
            bias,
            mul_even: mul,
            mul_odd: _mm256_srli_epi64::<32>(mul),
            n_even,
            n_odd,
            add_even: add(n_even),
            add_odd: add(n_odd),
            sub_even: sub(n_even),
            sub_odd: sub(n_odd),
            zp_out,
        }
    }

    /// `requantize(bias + sum)` per lane, as i32 lanes, and a value whose 64-bit lanes
    /// all have a zero high half (see [`Requant8::in_range`]) exactly when every lane's
    /// result fits an i32, i.e. when the i32 lanes are right.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn requant(&self, sum: __m256i) -> (__m256i, __m256i) {
        let acc = _mm256_add_epi32(sum, self.bias); // wraps, like the reference
        let prod_even = _mm256_mul_epi32(acc, self.mul_even);
        let prod_odd = _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc), self.mul_odd);
        if self.high {
            // High halves of acc·m + 2^(n−1), even lanes moved down, then >> (n − 32).
            let even = _mm256_add_epi64(prod_even, self.round_even);
            let odd = _mm256_add_epi64(prod_odd, self.round_odd);
            let high = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
            return (_mm256_srav_epi32(high, self.n_high), _mm256_setzero_si256());
        }
        // r + 2^31 per 64-bit lane.
        let r_even = _mm256_sub_epi64(
            _mm256_srlv_epi64(_mm256_add_epi64(prod_even, self.add_even), self.n_even),
            self.sub_even,
        );
        let r_odd = _mm256_sub_epi64(
            _mm256_srlv_epi64(_mm256_add_epi64(prod_odd, self.add_odd), self.n_odd),
            self.sub_odd,
        );
        let biased = _mm256_blend_epi32::<0b1010_1010>(r_even, _mm256_slli_epi64::<32>(r_odd));
        let r = _mm256_xor_si256(biased, _mm256_set1_epi32(i32::MIN));
        (r, _mm256_or_si256(r_even, r_odd))
    }

    /// Whether the `flags` of [`Requant8::requant`] (several may be OR-ed together) say
    /// every lane is in range.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn in_range(flags: __m256i) -> bool {
        _mm256_testz_si256(flags, _mm256_set1_epi64x(-1i64 << 32)) != 0
    }

    /// The output codes `clamp(zp_out + r, -128, 127)` of four requantized vectors, as
    /// bytes `[r0[0..4], r1[0..4], r2[0..4], r3[0..4] | r0[4..8], …, r3[4..8]]` (the lane
    /// order of `packs`). Saturating narrowing does the clamps: i32 → i16, `+ zp_out`
    /// (saturating), i16 → i8.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn narrow(&self, r: [__m256i; 4]) -> __m256i {
        let r01 = _mm256_adds_epi16(_mm256_packs_epi32(r[0], r[1]), self.zp_out);
        let r23 = _mm256_adds_epi16(_mm256_packs_epi32(r[2], r[3]), self.zp_out);
        _mm256_packs_epi16(r01, r23)
    }

    /// The output codes of 16 positions of one channel held as even positions (`even`,
    /// lane `t` is position `2t`) and odd ones, requantized, in position order.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn interleave16(&self, even: __m256i, odd: __m256i) -> __m128i {
        let lo = _mm256_unpacklo_epi32(even, odd); // positions 0 1 2 3 | 8 9 10 11
        let hi = _mm256_unpackhi_epi32(even, odd); // positions 4 5 6 7 | 12 13 14 15
        let r16 = _mm256_adds_epi16(_mm256_packs_epi32(lo, hi), self.zp_out); // 0..8 | 8..16
        let r8 = _mm256_packs_epi16(r16, r16);
        _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0b1000>(r8))
    }

    /// The eight output codes (lane `l` in byte `l`) for the accumulators `sum` (bias not
    /// yet added), or `None` if a requantized value leaves the i32 range (the caller then
    /// uses the scalar [`crate::kernels::DenseS8::output`]).
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn apply(&self, sum: __m256i) -> Option<u64> {
        let (r, flags) = self.requant(sum);
        if !Self::in_range(flags) {
            return None;
        }
        let r8 = self.narrow([r; 4]);
        // Bytes 0..4 of each 128-bit half hold lanes 0..4 and 4..8.
        let lo = _mm256_extract_epi32::<0>(r8) as u32 as u64;
        let hi = _mm256_extract_epi32::<4>(r8) as u32 as u64;
        Some(lo | hi << 32)
    }
}

/// Loads `src[..n]` (`n = min(16, src.len())`) into the low bytes of a vector, the rest
/// filled with `fill`.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn load_partial_i8(src: &[i8], fill: i8) -> __m128i {
    if src.len() >= 16 {
        // SAFETY: `src` has at least 16 readable bytes.
        return unsafe { _mm_loadu_si128(src.as_ptr().cast()) };
    }
    let mut tmp = [fill; 16];
    tmp[..src.len()].copy_from_slice(src);
    // SAFETY: `tmp` is 16 bytes.
    unsafe { _mm_loadu_si128(tmp.as_ptr().cast()) }
}

/// Stores the low `dst.len()` (≤ 16) bytes of `v` to `dst`.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn store_partial_i8(dst: &mut [i8], v: __m128i) {
    debug_assert!(dst.len() <= 16);
    if dst.len() == 16 {
        // SAFETY: `dst` has exactly 16 writable bytes.
        unsafe { _mm_storeu_si128(dst.as_mut_ptr().cast(), v) };
        return;
    }
    let mut tmp = [0i8; 16];
    // SAFETY: `tmp` is 16 bytes.
    unsafe { _mm_storeu_si128(tmp.as_mut_ptr().cast(), v) };
    let n = dst.len();
    dst.copy_from_slice(&tmp[..n]);
}

/// `core::array::from_fn` that is always inlined, for the AVX2 kernels: a closure inherits
/// its function's target features, and LLVM does not inline an AVX2 closure into the
/// library's `from_fn` (which has none), so in a build without `-C target-cpu` every element
/// became a call (int8 `lenet`: `pack_weights`' closure alone took 5% of the run). Here the
/// loop lands in the caller, and the closure inlines into it.
#[inline(always)]
pub(crate) fn array<T, const N: usize>(mut f: impl FnMut(usize) -> T) -> [T; N] {
    let mut out: [MaybeUninit<T>; N] = [const { MaybeUninit::uninit() }; N];
    for (i, o) in out.iter_mut().enumerate() {
        o.write(f(i));
    }
    // SAFETY: every element was written, and `[MaybeUninit<T>; N]` has `[T; N]`'s layout;
    // `out` is not dropped (`MaybeUninit` never drops), so nothing is dropped twice.
    unsafe { core::mem::transmute_copy(&out) }
}

/// Columns of an 8 × 8 matrix given by its rows.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) fn transpose8x8(r: [__m256; 8]) -> [__m256; 8] {
    let t: [__m256; 8] = array(|i| {
        let (a, b) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
        if i % 2 == 0 {
            _mm256_unpacklo_ps(a, b)
        } else {
            _mm256_unpackhi_ps(a, b)
        }
    });
    // t0 = r0 r1 interleaved (elements 0,1 | 4,5), t1 = (2,3 | 6,7), t2, t3 for r2, r3, …
    let s: [__m256; 8] = array(|i| {
        let g = i / 4 * 4; // rows 0..4 or 4..8
        let (a, b) = (t[g + (i % 4) / 2], t[g + 2 + (i % 4) / 2]);
        if i % 2 == 0 {
            _mm256_shuffle_ps::<0x44>(a, b)
        } else {
            _mm256_shuffle_ps::<0xee>(a, b)
        }
    });
    // s[0..4]: columns 0, 1, 2, 3 (| 4, 5, 6, 7) of rows 0..4; s[4..8] of rows 4..8.
    array(|c| {
        if c < 4 {
            _mm256_permute2f128_ps::<0x20>(s[c], s[4 + c])
        } else {
            _mm256_permute2f128_ps::<0x31>(s[c - 4], s[c])
        }
    })
}

/// `dst[i] = src[i]` widened to f32 (F16C `vcvtph2ps`, eight at a time; exact, like
/// [`crate::kernels::Widen`]).
pub(crate) fn widen_f16(src: &[half::f16], dst: &mut [f32]) {
    // SAFETY: these helpers run only inside the AVX2 kernel sets, which a plan uses only
    // where the CPU has AVX2 and F16C (`KernelSet::runs_here`).
    unsafe { widen_f16_f16c(src, dst) }
}

/// # Safety
/// The CPU must support F16C.
#[target_feature(enable = "avx2,f16c")]
unsafe fn widen_f16_f16c(src: &[half::f16], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len());
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        // SAFETY: `s` is 8 f16s (16 bytes), `d` 8 f32s.
        unsafe {
            _mm256_storeu_ps(
                d.as_mut_ptr(),
                _mm256_cvtph_ps(_mm_loadu_si128(s.as_ptr().cast())),
            )
        };
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = s.to_f32();
    }
}
