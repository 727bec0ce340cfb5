//! Helpers shared by the M-profile variants (`dsp.rs`, `mve.rs`): the output stage of an
//! int8 convolution or linear layer, and 4-byte aligned views of scratch.

use super::DenseS8;

impl DenseS8<'_> {
    /// [`DenseS8::output`], computed in fewer instructions where the shift allows: for
    /// `shift ≤ −2` (`n = 31 − shift ≥ 33`, every realistic layer) the product's low word
    /// cannot change the result, so `(acc·m + 2^(n−1)) >> n` is
    /// `(hi + 2^(n−33)) >> (n−32)` with `hi = (acc·m) >> 32` (one `smull`), and
    /// `|hi| < 2^30` leaves nothing to saturate before the final clamp. Other shifts take
    /// the reference's path. Bit-exact with `output` for every input.
    #[inline(always)]
    pub(crate) fn output_fast(&self, o: usize, sum: i32) -> i8 {
        let shift = self.shift[o];
        if shift > -2 {
            return self.output(o, sum);
        }
        let acc = self.bias[o].wrapping_add(sum);
        let hi = ((acc as i64 * self.multiplier[o] as i64) >> 32) as i32;
        let s = (-1 - shift) as u32; // n − 32, 1..=30
        let r = (hi + (1 << (s - 1))) >> s;
        (r + self.zp_out).clamp(-128, 127) as i8
    }
}

/// One output channel's [`DenseS8::output`] with its parameters loaded once, for kernels
/// that produce several outputs per channel in a row. Bit-exact with `output`.
#[cfg(kestrel_isa = "mve")]
#[derive(Clone, Copy)]
pub(crate) struct Requant {
    /// `bias[o]` less whatever the kernel folds in (e.g. `zp_in·Σ w`).
    bias: i32,
    multiplier: i32,
    /// `n − 32` for the fast path (`shift ≤ −2`), else 0: use `output`.
    s: u32,
    zp_out: i32,
    shift: i32,
}

#[cfg(kestrel_isa = "mve")]
impl Requant {
    /// Channel `o` of `p`, with `minus` subtracted from every accumulator (wrapping).
    #[inline(always)]
    pub(crate) fn new(p: &DenseS8<'_>, o: usize, minus: i32) -> Self {
        let shift = p.shift[o];
        Requant {
            bias: p.bias[o].wrapping_sub(minus),
            multiplier: p.multiplier[o],
            s: if shift <= -2 { (-1 - shift) as u32 } else { 0 },
            zp_out: p.zp_out,
            shift,
        }
    }

    /// The output code of accumulator `sum` (see [`DenseS8::output_fast`]).
    #[inline(always)]
    pub(crate) fn apply(&self, sum: i32) -> i8 {
        let acc = self.bias.wrapping_add(sum);
        if self.s == 0 {
            let r = kestrel_format::quant::requantize(acc, self.multiplier, self.shift);
            return self.zp_out.saturating_add(r).clamp(-128, 127) as i8;
        }
        let hi = ((acc as i64 * self.multiplier as i64) >> 32) as i32;
        let r = (hi + (1 << (self.s - 1))) >> self.s;
        (r + self.zp_out).clamp(-128, 127) as i8
    }
}

#[cfg(kestrel_isa = "dsp")]
/// The first `len` 4-byte aligned `i16`s of `scratch` (which has `len·2 + 3` bytes or more).
pub(crate) fn i16_words(scratch: &mut [u8], len: usize) -> &mut [i16] {
    let skip = scratch.as_ptr().align_offset(4);
    let bytes = &mut scratch[skip..][..len * 2];
    bytemuck::cast_slice_mut(bytes)
}

/// [`kestrel_format::quant::requantize`], in fewer instructions where the shift allows:
/// for `shift ≤ −2` (`n = 31 − shift ≥ 33`) the rounding offset `2^(n−1)` is a multiple of
/// 2^32, so with `acc·m = hi·2^32 + lo` (`0 ≤ lo < 2^32`), `(acc·m + 2^(n−1)) >> n` is
/// `(hi + 2^(n−33)) >> (n−32)`: one `smull`, and `|hi| < 2^30` leaves nothing to saturate.
/// Other shifts take the reference's path. Equal to `requantize` for every input.
#[cfg(feature = "encoders")]
#[inline(always)]
pub(crate) fn requantize_fast(acc: i32, multiplier: i32, shift: i32) -> i32 {
    if shift > -2 {
        return kestrel_format::quant::requantize(acc, multiplier, shift);
    }
    let hi = ((acc as i64 * multiplier as i64) >> 32) as i32;
    let s = (-1 - shift) as u32; // n − 32, 1..=30
    (hi + (1 << (s - 1))) >> s
}

#[cfg(feature = "encoders")]
impl super::lista::ListaS8<'_> {
    /// [`Self::output`] with both requantizations by [`requantize_fast`] and the shrink in
    /// i32 where `θ ≥ 0`; bit-exact with `output` for every input.
    #[inline(always)]
    pub(crate) fn output_fast(&self, i: usize, b: i8, acc: i32) -> i8 {
        let b_acc = requantize_fast(
            b as i32 - self.zp_b,
            self.in_multiplier[i],
            self.in_shift[i],
        );
        let u = b_acc.saturating_add(acc);
        let t = self.theta[i];
        // θ ≥ 0: `shrink1_i64`'s three cases in i32, where none can overflow (u − θ for
        // u > θ ≥ 0, u + θ for u < −θ ≤ 0); θ < 0 takes the reference's i64 path.
        let v = if t >= 0 {
            if u > t {
                u - t
            } else if u < -t {
                u + t
            } else {
                0
            }
        } else {
            crate::kernels::shrink::reference::shrink1_i64(u as i64, t as i64) as i32
        };
        let r = requantize_fast(v, self.out_multiplier[i], self.out_shift[i]);
        self.zp_h.saturating_add(r).clamp(-128, 127) as i8
    }
}
