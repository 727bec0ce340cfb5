//! Scalar reference soft threshold, in place on `xy` `[C, H, W]` with one threshold per
//! channel `θ [C]`: the specification.

/// `sign(v)·max(|v| − θ, 0)` in f32, written so that every variant can match it bit for
/// bit: `v − θ` above `θ`, `v + θ` below `−θ`, `+0.0` in between (and for NaN).
#[inline(always)]
pub(crate) fn shrink1_f32(v: f32, theta: f32) -> f32 {
    if v > theta {
        v - theta
    } else if v < -theta {
        v + theta
    } else {
        0.0
    }
}

/// `sign(d)·max(|d| − θ, 0)` on integers (`θ ≥ 0`), in i64 so that no `d` overflows.
#[inline(always)]
pub(crate) fn shrink1_i64(d: i64, theta: i64) -> i64 {
    if d > theta {
        d - theta
    } else if d < -theta {
        d + theta
    } else {
        0
    }
}

/// f32 activations, f32 thresholds.
pub(crate) fn shrink_f32(xy: &mut [f32], theta: &[f32]) {
    let hw = xy.len() / theta.len().max(1);
    for (plane, &t) in xy.chunks_exact_mut(hw.max(1)).zip(theta) {
        for v in plane {
            *v = shrink1_f32(*v, t);
        }
    }
}

/// int8 codes with zero point `zp` (output quantization = input quantization), i32
/// thresholds in code steps: `q ← zp + shrink(q − zp, θ[c])`. The result lies between
/// `zp` and `q`, so it is a code again.
pub(crate) fn shrink_s8(xy: &mut [i8], zp: i32, theta: &[i32]) {
    let hw = xy.len() / theta.len().max(1);
    for (plane, &t) in xy.chunks_exact_mut(hw.max(1)).zip(theta) {
        for q in plane {
            let y = zp as i64 + shrink1_i64(*q as i64 - zp as i64, t as i64);
            *q = y.clamp(-128, 127) as i8;
        }
    }
}
