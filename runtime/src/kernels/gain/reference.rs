//! Scalar reference per-channel gain, in place on `xy` `[C, H, W]`: the specification.

use kestrel_format::quant::requantize;

/// f32: `y = g[c]·x`.
pub(crate) fn gain_f32(xy: &mut [f32], gain: &[f32]) {
    let hw = xy.len() / gain.len().max(1);
    for (plane, &g) in xy.chunks_exact_mut(hw.max(1)).zip(gain) {
        for v in plane {
            *v *= g;
        }
    }
}

/// int8: `y = clamp(zp_out + requantize(q − zp_in, multiplier[c], shift[c]), −128, 127)`.
pub(crate) fn gain_s8(
    xy: &mut [i8],
    zp_in: i32,
    (multiplier, shift): (&[i32], &[i32]),
    zp_out: i32,
) {
    let hw = xy.len() / multiplier.len().max(1);
    for (c, plane) in xy.chunks_exact_mut(hw.max(1)).enumerate() {
        for q in plane {
            let r = requantize(*q as i32 - zp_in, multiplier[c], shift[c]);
            *q = zp_out.saturating_add(r).clamp(-128, 127) as i8;
        }
    }
}
