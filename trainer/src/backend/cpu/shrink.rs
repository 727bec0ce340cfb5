//! Soft thresholding, per-channel gains and the ℓ1 subgradient: the elementwise pieces of
//! ISTA/FISTA and of the PSD encoders. Channel sums (the threshold's and the gain's
//! gradients) are fixed-block partials added in block order.

use rayon::prelude::*;

use crate::backend::Thresh;

/// Elements per parallel block.
const BLOCK: usize = 1 << 14;

/// `sign(x)·max(|x| − θ, 0)`; 0 when `|x| ≤ θ`.
#[inline]
pub(crate) fn shrink(x: f32, theta: f32) -> f32 {
    if x > theta {
        x - theta
    } else if x < -theta {
        x + theta
    } else {
        0.0
    }
}

/// `θ` of element `i`.
#[inline]
fn theta_at(t: Thresh<'_, [f32]>, i: usize) -> f32 {
    match t {
        Thresh::Scalar(v) => v,
        Thresh::PerChannel { theta, inner } => theta[(i / inner) % theta.len()],
    }
}

/// Channel of element `i` for a per-channel tensor of `channels` entries.
#[inline]
fn channel(i: usize, inner: usize, channels: usize) -> usize {
    (i / inner) % channels
}

/// `y = shrink(x, θ)`.
pub(super) fn shrink_fwd(theta: Thresh<'_, [f32]>, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    y.par_chunks_mut(BLOCK)
        .zip(x.par_chunks(BLOCK))
        .enumerate()
        .for_each(|(b, (yb, xb))| {
            for (j, (y, &x)) in yb.iter_mut().zip(xb).enumerate() {
                *y = shrink(x, theta_at(theta, b * BLOCK + j));
            }
        });
}

/// Sums `f(i)` per channel over fixed blocks of `len` elements, partials in block order.
fn channel_sums(
    len: usize,
    inner: usize,
    channels: usize,
    f: impl Fn(usize) -> f64 + Sync,
    out: &mut [f32],
) {
    let blocks = len.div_ceil(BLOCK);
    let mut parts = vec![0f64; blocks * channels];
    parts
        .par_chunks_mut(channels)
        .enumerate()
        .for_each(|(b, part)| {
            for i in b * BLOCK..((b + 1) * BLOCK).min(len) {
                part[channel(i, inner, channels)] += f(i);
            }
        });
    let mut sums = vec![0f64; channels];
    for part in parts.chunks_exact(channels) {
        sums.iter_mut().zip(part).for_each(|(s, p)| *s += p);
    }
    out.iter_mut().zip(&sums).for_each(|(o, &s)| *o = s as f32);
}

/// `dx = dy·[|x| > θ]`; `dθ[c] = −Σ sign(x)·dy` over the passed elements of channel `c`.
pub(super) fn shrink_bwd(
    theta: Thresh<'_, [f32]>,
    x: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dtheta: Option<&mut [f32]>,
) {
    debug_assert!(x.len() == dy.len() && dy.len() == dx.len());
    let pass = |i: usize| x[i].abs() > theta_at(theta, i);
    dx.par_chunks_mut(BLOCK).enumerate().for_each(|(b, dxb)| {
        for (j, d) in dxb.iter_mut().enumerate() {
            let i = b * BLOCK + j;
            *d = if pass(i) { dy[i] } else { 0.0 };
        }
    });
    if let (Some(dt), Thresh::PerChannel { theta: t, inner }) = (dtheta, theta) {
        debug_assert_eq!(dt.len(), t.len());
        let f = |i: usize| {
            if pass(i) {
                -(x[i].signum() as f64) * dy[i] as f64
            } else {
                0.0
            }
        };
        channel_sums(x.len(), inner, t.len(), f, dt);
    }
}

/// `y = g[c]·x`.
pub(super) fn scale_fwd(inner: usize, g: &[f32], x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    y.par_chunks_mut(BLOCK)
        .zip(x.par_chunks(BLOCK))
        .enumerate()
        .for_each(|(b, (yb, xb))| {
            for (j, (y, &x)) in yb.iter_mut().zip(xb).enumerate() {
                *y = g[channel(b * BLOCK + j, inner, g.len())] * x;
            }
        });
}

/// `dx = g[c]·dy`; `dg[c] = Σ x·dy` over channel `c`.
pub(super) fn scale_bwd(
    inner: usize,
    g: &[f32],
    x: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    dg: Option<&mut [f32]>,
) {
    scale_fwd(inner, g, dy, dx);
    if let Some(dg) = dg {
        debug_assert_eq!(dg.len(), g.len());
        channel_sums(x.len(), inner, g.len(), |i| x[i] as f64 * dy[i] as f64, dg);
    }
}

/// `y += α·sign(x)`, `sign(0) = 0`.
pub(super) fn add_sign(alpha: f32, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    y.par_chunks_mut(BLOCK)
        .zip(x.par_chunks(BLOCK))
        .for_each(|(yb, xb)| {
            for (y, &x) in yb.iter_mut().zip(xb) {
                if x != 0.0 {
                    *y += alpha * x.signum();
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_and_its_gradients_by_hand() {
        let x = [3.0, -0.5, -2.0, 0.25, 1.0, -1.0];
        let mut y = [0.0; 6];
        shrink_fwd(Thresh::Scalar(1.0), &x, &mut y);
        assert_eq!(y, [2.0, 0.0, -1.0, 0.0, 0.0, 0.0]); // |x| = θ is cut
                                                        // Per channel of [n = 1, c = 3, inner = 2]: θ = (0, 1, 2).
        let theta = [0.0, 1.0, 2.0];
        let t = Thresh::PerChannel {
            theta: &theta[..],
            inner: 2,
        };
        shrink_fwd(t, &x, &mut y);
        assert_eq!(y, [3.0, -0.5, -1.0, 0.0, 0.0, 0.0]);
        let dy = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (mut dx, mut dt) = ([0.0; 6], [0.0; 3]);
        shrink_bwd(t, &x, &dy, &mut dx, Some(&mut dt));
        assert_eq!(dx, [1.0, 2.0, 3.0, 0.0, 0.0, 0.0]);
        assert_eq!(dt, [-1.0 + 2.0, 3.0, 0.0]);
    }

    #[test]
    fn gain_and_sign() {
        let (g, x) = ([2.0, -1.0], [1.0, 2.0, 3.0, 4.0]);
        let mut y = [0.0; 4];
        scale_fwd(1, &g, &x, &mut y); // [n = 2, c = 2]
        assert_eq!(y, [2.0, -2.0, 6.0, -4.0]);
        let (mut dx, mut dg) = ([0.0; 4], [0.0; 2]);
        scale_bwd(1, &g, &x, &[1.0; 4], &mut dx, Some(&mut dg));
        assert_eq!((dx, dg), ([2.0, -1.0, 2.0, -1.0], [4.0, 6.0]));
        let mut z = [1.0; 3];
        add_sign(0.5, &[-2.0, 0.0, 3.0], &mut z);
        assert_eq!(z, [0.5, 1.0, 1.5]);
    }

    #[test]
    fn channel_sums_span_blocks_in_order() {
        // More than one block, so partials are combined.
        let len = 3 * BLOCK + 17;
        let mut out = [0.0f32; 3];
        channel_sums(len, 5, 3, |_| 1.0, &mut out);
        let want: Vec<f32> = (0..3)
            .map(|c| (0..len).filter(|i| (i / 5) % 3 == c).count() as f32)
            .collect();
        assert_eq!(out[..], want[..]);
    }
}
