//! SGD with momentum and L2 weight decay, elementwise in fixed blocks.

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

#[cfg(test)]
mod tests {
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
