//! Fixed-point arithmetic shared by the exporter (which picks multipliers) and the runtime
//! (which applies them). One copy, so both sides round the same way.

/// Largest activation element count a model may declare per tensor (2^28).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// Splits a positive real multiplier into `(multiplier, shift)` with
/// `real ≈ multiplier · 2^(shift − 31)` and `multiplier ∈ [2^30, 2^31)`.
///
/// Returns `None` when `real` is not finite and positive or needs a shift outside
/// `[-31, 30]` (reals below about 2^-32 or at least 2^30).
///
/// ```
/// use kestrel_format::quant::{quantize_multiplier, requantize};
/// let (m, s) = quantize_multiplier(0.0123).unwrap();
/// assert_eq!(requantize(1000, m, s), 12); // 12.3 rounds to 12
/// ```
pub fn quantize_multiplier(real: f64) -> Option<(i32, i32)> {
    if !(real.is_finite() && real > 0.0) {
        return None;
    }
    // Normalize into [0.5, 1): multiplying by two is exact in binary floating point.
    let mut m = real;
    let mut shift = 0i32;
    while m >= 1.0 {
        m /= 2.0;
        shift += 1;
    }
    while m < 0.5 {
        m *= 2.0;
        shift -= 1;
    }
    // m in [0.5, 1) → q in [2^30, 2^31]; floor(x + 0.5) rounds half up for positive x.
    let mut q = (m * (1u64 << 31) as f64 + 0.5) as i64;
    if q == 1i64 << 31 {
        q /= 2;
        shift += 1;
    }
    if !(-31..=30).contains(&shift) {
        return None;
    }
    Some((q as i32, shift))
}

/// Below this, a rescaling of int8 code differences (`|d| ≤ 255`) maps every input to 0
/// (`255·r < 0.25`), exactly as the smallest multiplier the format holds (2⁻³²) does: the
/// exporter stores such a rescaling as that smallest one, and the validator accepts any
/// multiplier below it where the real one is below it too.
pub const NEGLIGIBLE_CODE_SCALE: f32 = 1.0 / 1024.0;

/// True when `(multiplier, shift)` is in the range [`requantize`] is defined for.
pub const fn requant_in_range(multiplier: i32, shift: i32) -> bool {
    multiplier >= (1 << 30) && shift >= -31 && shift <= 30
}

/// Scales an int32 accumulator by `multiplier · 2^(shift − 31)` with a single rounding,
/// **round half up** (towards +∞): `(acc·multiplier + 2^(n−1)) >> n`, `n = 31 − shift`,
/// computed exactly in 64 bits and saturated to `i32`.
///
/// Defined for `multiplier ∈ [2^30, 2^31)` and `shift ∈ [-31, 30]` (checked by the model
/// validator, so the runtime only `debug_assert!`s it).
#[inline(always)]
pub fn requantize(acc: i32, multiplier: i32, shift: i32) -> i32 {
    debug_assert!(requant_in_range(multiplier, shift));
    let n = (31 - shift) as u32; // 1..=62
    let prod = acc as i64 * multiplier as i64; // |prod| < 2^62
    let r = (prod + (1i64 << (n - 1))) >> n;
    if r > i32::MAX as i64 {
        i32::MAX
    } else if r < i32::MIN as i64 {
        i32::MIN
    } else {
        r as i32
    }
}

/// Rounds a real to the nearest int8 code of `(scale, zero_point)`, half away from zero,
/// saturating. Used for quantizing model inputs and LCN outputs.
#[inline]
pub fn quantize_f32(x: f32, scale: f32, zero_point: i32) -> i8 {
    // Beyond ±512 every code saturates anyway (|zero_point| ≤ 128); clamping first keeps the
    // integer steps below from overflowing for huge or infinite inputs (NaN stays NaN → 0).
    let v = (x / scale).clamp(-512.0, 512.0);
    // Round half away from zero without libm: `v − trunc(v)` is exact, so no double rounding.
    let t = v as i32 as f32; // saturating truncation; NaN → 0
    let frac = v - t;
    let r = if frac >= 0.5 {
        t as i32 + 1
    } else if frac <= -0.5 {
        t as i32 - 1
    } else {
        t as i32
    };
    let q = r.saturating_add(zero_point);
    q.clamp(-128, 127) as i8
}

/// `scale · (q − zero_point)`.
#[inline(always)]
pub fn dequantize(q: i8, scale: f32, zero_point: i32) -> f32 {
    scale * (q as i32 - zero_point) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplier_round_trips() {
        for &r in &[
            1e-9,
            3.3e-5,
            0.0123,
            0.5,
            0.75,
            0.999_999_999_9,
            1.0,
            3.0,
            12345.0,
        ] {
            let (m, s) = quantize_multiplier(r).unwrap();
            assert!(requant_in_range(m, s), "{r}: {m} {s}");
            let back = m as f64 * 2f64.powi(s - 31);
            assert!((back - r).abs() <= r * 1e-9, "{r} -> {back}");
        }
        assert_eq!(quantize_multiplier(0.0), None);
        assert_eq!(quantize_multiplier(f64::NAN), None);
        assert_eq!(quantize_multiplier(1e-12), None);
        assert_eq!(quantize_multiplier(2f64.powi(31)), None);
    }

    #[test]
    fn requantize_rounds_half_up() {
        let (m, s) = quantize_multiplier(0.5).unwrap();
        assert_eq!(requantize(3, m, s), 2); // 1.5 -> 2
        assert_eq!(requantize(-3, m, s), -1); // -1.5 -> -1
        assert_eq!(requantize(5, m, s), 3);
        assert_eq!(requantize(-5, m, s), -2);
        let (m, s) = quantize_multiplier(1.0).unwrap();
        assert_eq!(requantize(i32::MAX, m, s), i32::MAX);
        let (m, s) = quantize_multiplier(2f64.powi(29)).unwrap();
        assert_eq!(requantize(i32::MIN, m, s), i32::MIN);
    }

    #[test]
    fn quantize_rounds_and_saturates() {
        assert_eq!(quantize_f32(0.25, 0.5, 0), 1); // 0.5 -> 1
        assert_eq!(quantize_f32(-0.25, 0.5, 0), -1);
        assert_eq!(quantize_f32(1e9, 0.5, 3), 127);
        assert_eq!(quantize_f32(-1e9, 0.5, 3), -128);
        assert_eq!(quantize_f32(f32::NAN, 0.5, 3), 3);
        // Past i32 range and infinities saturate (they used to overflow the rounding step).
        assert_eq!(quantize_f32(3e9, 1.0, 0), 127);
        assert_eq!(quantize_f32(-3e9, 1.0, -128), -128);
        assert_eq!(quantize_f32(f32::INFINITY, 0.5, 0), 127);
        assert_eq!(quantize_f32(f32::NEG_INFINITY, 0.5, 0), -128);
        assert_eq!(quantize_f32(1e30, 1e-30, 0), 127);
        assert_eq!(dequantize(5, 0.5, 3), 1.0);
        // Just below one half must not round up (a naive `v + 0.5` does in f32).
        assert_eq!(quantize_f32(0.499_999_97, 1.0, 0), 0);
        assert_eq!(quantize_f32(-0.499_999_97, 1.0, 0), 0);
        assert_eq!(quantize_f32(2.5, 1.0, 0), 3);
        assert_eq!(quantize_f32(-2.5, 1.0, 0), -3);
    }
}
