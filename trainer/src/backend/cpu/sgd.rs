//! The optimizers' updates, elementwise in fixed blocks: SGD with momentum and L2 weight
//! decay, and Adam.

use rayon::prelude::*;

const BLOCK: usize = 1 << 14;

/// `v ← μ·v + (g + λ·w)`, `w ← w − lr·v`.
pub(super) fn sgd_update(
    w: &mut [f32],
    v: &mut [f32],
    g: &[f32],
    lr: f32,
    momentum: f32,
    decay: f32,
) {
    debug_assert!(w.len() == v.len() && v.len() == g.len());
    w.par_chunks_mut(BLOCK)
        .zip(v.par_chunks_mut(BLOCK))
        .zip(g.par_chunks(BLOCK))
        .for_each(|((wb, vb), gb)| {
            for ((w, v), &g) in wb.iter_mut().zip(vb).zip(gb) {
                *v = momentum * *v + (g + decay * *w);
                *w -= lr * *v;
            }
        });
}

/// Adam with bias correction (see `Backend::adam_update`).
#[allow(clippy::too_many_arguments)]
pub(super) fn adam_update(
    w: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[f32],
    lr: f32,
    (b1, b2): (f32, f32),
    eps: f32,
    t: u32,
) {
    debug_assert!(w.len() == m.len() && m.len() == v.len() && v.len() == g.len());
    let t = t.max(1) as i32;
    let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
    w.par_chunks_mut(BLOCK)
        .zip(m.par_chunks_mut(BLOCK))
        .zip(v.par_chunks_mut(BLOCK))
        .zip(g.par_chunks(BLOCK))
        .for_each(|(((wb, mb), vb), gb)| {
            for (((w, m), v), &g) in wb.iter_mut().zip(mb).zip(vb).zip(gb) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *w -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
            }
        });
}

#[cfg(test)]
mod tests {
    #[test]
    fn adam_by_hand() {
        // First step: m̂ = g, v̂ = g², so the step is lr·g/(|g| + ε) ≈ lr·sign(g).
        let (mut w, mut m, mut v) = (vec![1.0f32, 1.0], vec![0.0f32; 2], vec![0.0f32; 2]);
        super::adam_update(
            &mut w,
            &mut m,
            &mut v,
            &[0.5, -2.0],
            0.1,
            (0.9, 0.999),
            1e-8,
            1,
        );
        assert!(
            (w[0] - 0.9).abs() < 1e-6 && (w[1] - 1.1).abs() < 1e-6,
            "{w:?}"
        );
        assert!(
            (m[0] - 0.05).abs() < 1e-7 && (v[0] / 0.00025 - 1.0).abs() < 1e-4,
            "{m:?} {v:?}"
        );
        // Second step with g = 0.5 again: m = 0.095, v = 0.00049975;
        // m̂ = 0.095/0.19 = 0.5, v̂ = 0.00049975/0.001999 = 0.25, step = 0.1.
        super::adam_update(
            &mut w,
            &mut m,
            &mut v,
            &[0.5, 0.0],
            0.1,
            (0.9, 0.999),
            1e-8,
            2,
        );
        assert!((w[0] - 0.8).abs() < 1e-5, "{w:?}");
    }

    #[test]
    fn two_steps_by_hand() {
        let (mut w, mut v) = (vec![1.0f32], vec![0.0f32]);
        super::sgd_update(&mut w, &mut v, &[0.5], 0.1, 0.9, 0.1);
        assert_eq!(v[0], 0.6);
        assert!((w[0] - 0.94).abs() < 1e-7);
        super::sgd_update(&mut w, &mut v, &[0.5], 0.1, 0.9, 0.0);
        assert!((v[0] - 1.04).abs() < 1e-6);
        assert!((w[0] - 0.836).abs() < 1e-6);
    }
}
