//! Local contrast normalization (Jarrett et al., ICCV 2009), one sample per rayon task.
//!
//! For a sample `x [C, H, W]` and a normalized window `w [S, S]`, `r = S / 2`, zero padding:
//! ```text
//! a[j,k]  = Σ_i x[i,j,k] / C                       channel mean        [H, W]
//! m       = W ⋆ a        (m[j,k] = Σ_pq w[p,q]·a[j+p−r, k+q−r])        [H, W]
//! v[i]    = x[i] − m                               subtractive step    [C, H, W]
//! q[j,k]  = Σ_i v[i,j,k]² / C                                          [H, W]
//! s       = sqrt(W ⋆ q)                            local std           [H, W]
//! c       = mean_{j,k} s                           (summed in f64)     scalar
//! d[j,k]  = max(max(c, s[j,k]), eps)               (ties go to c, then to max(c, s))
//! y[i]    = v[i] / d                               divisive step       [C, H, W]
//! ```
//! The backward pass recomputes these from `x` and applies the chain rule in reverse;
//! `W ⋆ᵀ` is the adjoint (scatter) of the window sum, and `ds/d(s²)` is taken as 0 where
//! `s = 0` (where the max never routes a gradient to `s` unless `c = s = 0` too).

use rayon::prelude::*;

use crate::backend::LcnShape;

/// Output columns `k` whose tap `q` reads an in-image column `k + q − r`: `[lo, hi)`.
fn tap_cols(q: usize, r: usize, w: usize) -> (usize, usize) {
    (r.saturating_sub(q), (w + r).saturating_sub(q).min(w))
}

/// `dst = W ⋆ src` on one `h × w` plane (zero outside). Each output sums its taps in
/// row-major window order; the loop over `k` runs along rows so it vectorizes.
fn window_sum(src: &[f32], h: usize, w: usize, win: &[f32], size: usize, dst: &mut [f32]) {
    let r = size / 2;
    dst.fill(0.0);
    for (j, out) in dst.chunks_exact_mut(w).enumerate() {
        for p in r.saturating_sub(j)..size.min(h + r - j) {
            let row = &src[(j + p - r) * w..][..w];
            for q in 0..size {
                let (lo, hi) = tap_cols(q, r, w);
                if lo >= hi {
                    continue;
                }
                let tap = win[p * size + q];
                let inp = &row[lo + q - r..hi + q - r];
                out[lo..hi]
                    .iter_mut()
                    .zip(inp)
                    .for_each(|(o, x)| *o += tap * x);
            }
        }
    }
}

/// `dst = W ⋆ᵀ src`, the adjoint of [`window_sum`]: each `src[j,k]` scattered back.
fn window_sum_adjoint(src: &[f32], h: usize, w: usize, win: &[f32], size: usize, dst: &mut [f32]) {
    let r = size / 2;
    dst.fill(0.0);
    for (j, g) in src.chunks_exact(w).enumerate() {
        for p in r.saturating_sub(j)..size.min(h + r - j) {
            let row = &mut dst[(j + p - r) * w..][..w];
            for q in 0..size {
                let (lo, hi) = tap_cols(q, r, w);
                if lo >= hi {
                    continue;
                }
                let tap = win[p * size + q];
                row[lo + q - r..hi + q - r]
                    .iter_mut()
                    .zip(&g[lo..hi])
                    .for_each(|(d, g)| *d += tap * g);
            }
        }
    }
}

/// Per-sample intermediates, reused across the samples of one rayon task.
struct Scratch {
    /// Channel mean, later reused for gradients `[H, W]`.
    a: Vec<f32>,
    /// Local mean `m` `[H, W]`.
    m: Vec<f32>,
    /// `q`, then `dq` `[H, W]`.
    q: Vec<f32>,
    /// Local std `s` `[H, W]`.
    s: Vec<f32>,
    /// Divisor `d` `[H, W]`.
    d: Vec<f32>,
    /// `v = x − m` `[C, H, W]`.
    v: Vec<f32>,
}

impl Scratch {
    fn new(sh: &LcnShape) -> Scratch {
        let hw = sh.h * sh.w;
        let z = || vec![0.0f32; hw];
        Scratch {
            a: z(),
            m: z(),
            q: z(),
            s: z(),
            d: z(),
            v: vec![0.0; sh.len()],
        }
    }
}

/// Computes `v`, `s`, `c` and `d` of one sample into `t`; returns `c`.
fn forward_parts(sh: &LcnShape, win: &[f32], x: &[f32], t: &mut Scratch) -> f32 {
    let (hw, cf) = (sh.h * sh.w, sh.c as f32);
    t.a.fill(0.0);
    for xc in x.chunks_exact(hw) {
        t.a.iter_mut().zip(xc).for_each(|(a, x)| *a += x);
    }
    t.a.iter_mut().for_each(|a| *a /= cf);
    window_sum(&t.a, sh.h, sh.w, win, sh.size, &mut t.m);
    t.q.fill(0.0);
    for (vc, xc) in t.v.chunks_exact_mut(hw).zip(x.chunks_exact(hw)) {
        for (((v, x), m), q) in vc.iter_mut().zip(xc).zip(&t.m).zip(t.q.iter_mut()) {
            *v = x - m;
            *q += *v * *v;
        }
    }
    t.q.iter_mut().for_each(|q| *q /= cf);
    window_sum(&t.q, sh.h, sh.w, win, sh.size, &mut t.s);
    t.s.iter_mut().for_each(|s| *s = s.max(0.0).sqrt());
    // Summed in f64: `c` feeds every output, so its rounding should not wander with `x`.
    let c = (t.s.iter().map(|&s| s as f64).sum::<f64>() / hw as f64) as f32;
    for (d, &s) in t.d.iter_mut().zip(&t.s) {
        *d = c.max(s).max(sh.eps);
    }
    c
}

/// `y [n, C, H, W] = lcn(x)` with `window [size, size]`.
pub(super) fn lcn_fwd(sh: &LcnShape, n: usize, win: &[f32], x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(
        (x.len(), y.len(), win.len()),
        (n * sh.len(), n * sh.len(), sh.size * sh.size)
    );
    let hw = sh.h * sh.w;
    y.par_chunks_mut(sh.len())
        .zip(x.par_chunks(sh.len()))
        .for_each_init(
            || Scratch::new(sh),
            |t, (ys, xs)| {
                forward_parts(sh, win, xs, t);
                for (yc, vc) in ys.chunks_exact_mut(hw).zip(t.v.chunks_exact(hw)) {
                    yc.iter_mut()
                        .zip(vc)
                        .zip(&t.d)
                        .for_each(|((y, v), d)| *y = v / d);
                }
            },
        );
}

/// The exact gradient of [`lcn_fwd`]: `dx` from `dy`, recomputing the forward from `x`.
pub(super) fn lcn_bwd(sh: &LcnShape, n: usize, win: &[f32], x: &[f32], dy: &[f32], dx: &mut [f32]) {
    debug_assert_eq!(
        (x.len(), dy.len(), dx.len()),
        (n * sh.len(), n * sh.len(), n * sh.len())
    );
    let (hw, cf) = (sh.h * sh.w, sh.c as f32);
    dx.par_chunks_mut(sh.len())
        .zip(x.par_chunks(sh.len()))
        .zip(dy.par_chunks(sh.len()))
        .for_each_init(
            || (Scratch::new(sh), vec![0.0f32; hw]),
            |(t, g), ((dxs, xs), dys)| {
                let c = forward_parts(sh, win, xs, t);
                // g = ∂L/∂d = −Σ_i dy·v / d²
                g.fill(0.0);
                for (dyc, vc) in dys.chunks_exact(hw).zip(t.v.chunks_exact(hw)) {
                    g.iter_mut()
                        .zip(dyc)
                        .zip(vc)
                        .for_each(|((g, dy), v)| *g -= dy * v);
                }
                // Route through d = max(max(c, s), eps): to s where s won, to c where c won.
                let mut dc = 0.0f32;
                for ((g, &d), &s) in g.iter_mut().zip(&t.d).zip(&t.s) {
                    let gd = *g / (d * d);
                    let inner = c.max(s);
                    *g = 0.0;
                    if inner >= sh.eps {
                        if c >= s {
                            dc += gd;
                        } else {
                            *g = gd;
                        }
                    }
                }
                // c = mean(s); s = sqrt(W ⋆ q) → ∂L/∂(W ⋆ q) = ∂L/∂s / 2s (0 where s = 0).
                let dc_each = dc / hw as f32;
                for (g, &s) in g.iter_mut().zip(&t.s) {
                    *g = if s > 0.0 {
                        (*g + dc_each) / (2.0 * s)
                    } else {
                        0.0
                    };
                }
                window_sum_adjoint(g, sh.h, sh.w, win, sh.size, &mut t.q); // t.q = ∂L/∂q
                                                                           // dv = dy / d + 2·v·dq / C, stored in dxs; t.a accumulates ∂L/∂m = −Σ_i dv.
                t.a.fill(0.0);
                for ((dxc, dyc), vc) in dxs
                    .chunks_exact_mut(hw)
                    .zip(dys.chunks_exact(hw))
                    .zip(t.v.chunks_exact(hw))
                {
                    for (j, (dxv, (&dyv, &v))) in dxc.iter_mut().zip(dyc.iter().zip(vc)).enumerate()
                    {
                        *dxv = dyv / t.d[j] + 2.0 * v * t.q[j] / cf;
                        t.a[j] -= *dxv;
                    }
                }
                // m = W ⋆ a, a = Σ_i x / C → dx += (W ⋆ᵀ dm) / C.
                window_sum_adjoint(&t.a, sh.h, sh.w, win, sh.size, &mut t.m);
                for dxc in dxs.chunks_exact_mut(hw) {
                    dxc.iter_mut().zip(&t.m).for_each(|(dx, da)| *dx += da / cf);
                }
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formula as written, in f64 with explicit bounds checks.
    fn naive(sh: &LcnShape, win: &[f32], x: &[f32]) -> Vec<f32> {
        let xd: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        naive64(sh, win, &xd).iter().map(|&v| v as f32).collect()
    }

    fn naive64(sh: &LcnShape, win: &[f32], xd: &[f64]) -> Vec<f64> {
        let (c, h, w, size) = (sh.c, sh.h, sh.w, sh.size);
        let r = (size / 2) as isize;
        let at = |img: &[f64], i: usize, j: isize, k: isize| -> f64 {
            if j < 0 || k < 0 || j >= h as isize || k >= w as isize {
                0.0
            } else {
                img[(i * h + j as usize) * w + k as usize]
            }
        };
        let local = |img: &[f64], j: usize, k: usize| -> f64 {
            let mut acc = 0.0;
            for i in 0..c {
                for p in 0..size {
                    for q in 0..size {
                        acc += win[p * size + q] as f64
                            * at(
                                img,
                                i,
                                j as isize + p as isize - r,
                                k as isize + q as isize - r,
                            );
                    }
                }
            }
            acc / c as f64
        };
        let mut v = vec![0.0; c * h * w];
        for j in 0..h {
            for k in 0..w {
                let m = local(xd, j, k);
                for i in 0..c {
                    v[(i * h + j) * w + k] = xd[(i * h + j) * w + k] - m;
                }
            }
        }
        let v2: Vec<f64> = v.iter().map(|a| a * a).collect();
        let s: Vec<f64> = (0..h * w)
            .map(|jk| local(&v2, jk / w, jk % w).sqrt())
            .collect();
        let cmean = s.iter().sum::<f64>() / (h * w) as f64;
        (0..c * h * w)
            .map(|idx| v[idx] / cmean.max(s[idx % (h * w)]).max(sh.eps as f64))
            .collect()
    }

    fn window(size: usize) -> Vec<f32> {
        let r = (size / 2) as f32;
        let raw: Vec<f32> = (0..size * size)
            .map(|i| (-((i / size) as f32 - r).powi(2) - ((i % size) as f32 - r).powi(2)).exp())
            .collect();
        let sum: f32 = raw.iter().sum();
        raw.iter().map(|v| v / sum).collect()
    }

    #[test]
    fn forward_matches_the_formula() {
        for (c, h, w, size) in [(1, 6, 7, 3), (3, 9, 9, 5), (8, 10, 10, 5), (2, 4, 11, 9)] {
            let sh = LcnShape {
                c,
                h,
                w,
                size,
                eps: 1e-4,
            };
            let n = 2;
            let x: Vec<f32> = (0..n * sh.len())
                .map(|i| ((i * 7919 % 1013) as f32 / 500.0 - 1.0).powi(3))
                .collect();
            let win = window(size);
            let mut y = vec![0.0; x.len()];
            lcn_fwd(&sh, n, &win, &x, &mut y);
            for (s, ys) in y.chunks(sh.len()).enumerate() {
                let want = naive(&sh, &win, &x[s * sh.len()..][..sh.len()]);
                for (a, e) in ys.iter().zip(&want) {
                    assert!(
                        (a - e).abs() <= 1e-5 * (1.0 + e.abs()),
                        "{sh:?}: {a} vs {e}"
                    );
                }
            }
        }
    }

    /// The backward pass against f64 central differences of [`naive`] (tiny step, so
    /// essentially free of rounding and truncation error), at Jarrett's first-stage shape.
    #[test]
    fn backward_matches_f64_differences_of_the_formula() {
        for (c, h, w, size, eps, sigma_scale) in [
            (8, 28, 28, 5, 1e-4, 1.0),
            (3, 9, 7, 3, 1e-4, 0.3),
            (2, 8, 8, 5, 0.8, 1.0),
        ] {
            let sh = LcnShape { c, h, w, size, eps };
            let mut seed = 0x2545_F491_4F6C_DD1Du64;
            let mut uniform = || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            };
            let x: Vec<f32> = (0..sh.len()).map(|_| sigma_scale * uniform()).collect();
            let r: Vec<f32> = (0..sh.len()).map(|_| uniform()).collect();
            let win = window(size);
            let mut dx = vec![0.0; x.len()];
            lcn_bwd(&sh, 1, &win, &x, &r, &mut dx);
            let objective = |x: &[f64]| -> f64 {
                naive64(&sh, &win, x)
                    .iter()
                    .zip(&r)
                    .map(|(y, &r)| y * r as f64)
                    .sum()
            };
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let scale = (dx.iter().map(|g| (g * g) as f64).sum::<f64>() / dx.len() as f64).sqrt();
            for i in (0..x.len()).step_by(x.len() / 97 + 1) {
                let hstep = 1e-6;
                let (mut xp, mut xm) = (x64.clone(), x64.clone());
                xp[i] += hstep;
                xm[i] -= hstep;
                let numeric = (objective(&xp) - objective(&xm)) / (2.0 * hstep);
                let err = (dx[i] as f64 - numeric).abs() / (numeric.abs().max(1e-2 * scale));
                assert!(
                    err < 1e-3,
                    "{sh:?} x[{i}]: analytic {} numeric {numeric} (err {err:.1e})",
                    dx[i]
                );
            }
        }
    }

    #[test]
    fn constant_input_gives_zero_and_a_finite_gradient() {
        let sh = LcnShape {
            c: 2,
            h: 5,
            w: 5,
            size: 3,
            eps: 1e-4,
        };
        let x = vec![0.0; sh.len()];
        let win = window(3);
        let mut y = vec![1.0; x.len()];
        lcn_fwd(&sh, 1, &win, &x, &mut y);
        assert!(y.iter().all(|&v| v == 0.0));
        let mut dx = vec![0.0; x.len()];
        lcn_bwd(&sh, 1, &win, &x, &vec![1.0; x.len()], &mut dx);
        assert!(dx.iter().all(|v| v.is_finite()));
    }
}
