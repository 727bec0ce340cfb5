//! Losses over `logits [n, classes]`: value (mean over the batch) and gradient w.r.t. logits.

use crate::backend::LossOut;
use crate::config::LossKind;

/// Index of the first largest logit.
fn argmax(z: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = j;
        }
    }
    best
}

/// Softmax + negative log-likelihood, or the multiclass hinge `Σ_{j≠y} max(0, 1 − (z_y − z_j))`.
pub(super) fn loss(
    kind: LossKind,
    classes: usize,
    logits: &[f32],
    labels: &[u8],
    dz: &mut [f32],
) -> LossOut {
    let n = labels.len();
    debug_assert_eq!((logits.len(), dz.len()), (n * classes, n * classes));
    let inv_n = 1.0 / n.max(1) as f32;
    let mut total = 0.0f64;
    let mut correct = 0;
    for ((z, g), &label) in logits
        .chunks_exact(classes)
        .zip(dz.chunks_exact_mut(classes))
        .zip(labels)
    {
        let y = label as usize;
        correct += usize::from(argmax(z) == y);
        match kind {
            LossKind::Nll => {
                // log Σ exp z = mx + log Σ exp(z − mx), stable for any logits.
                let mx = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let mut sum = 0.0f32;
                for (g, &v) in g.iter_mut().zip(z) {
                    *g = (v - mx).exp();
                    sum += *g;
                }
                total += (mx + sum.ln() - z[y]) as f64;
                g.iter_mut().for_each(|g| *g *= inv_n / sum);
                g[y] -= inv_n;
            }
            LossKind::Hinge => {
                let mut active = 0.0f32;
                for (j, (g, &v)) in g.iter_mut().zip(z).enumerate() {
                    let margin = 1.0 - (z[y] - v);
                    *g = 0.0;
                    if j != y && margin > 0.0 {
                        total += margin as f64;
                        *g = inv_n;
                        active += 1.0;
                    }
                }
                g[y] = -active * inv_n;
            }
        }
    }
    LossOut {
        loss: (total / n.max(1) as f64) as f32,
        correct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nll_by_hand() {
        // Equal logits: loss ln 3, gradient (1/3 − [j = y]) / n.
        let z = [0.0, 0.0, 0.0, 1000.0, 0.0, -1000.0];
        let mut g = [0.0; 6];
        let out = loss(LossKind::Nll, 3, &z, &[1, 0], &mut g);
        // The second sample is confidently right: loss ≈ 0 (and no overflow).
        assert!((out.loss - 3f32.ln() / 2.0).abs() < 1e-6, "{}", out.loss);
        assert_eq!(out.correct, 1); // the first sample's tie goes to class 0
        let third = 1.0 / 3.0 / 2.0;
        for (a, e) in g.iter().zip([third, third - 0.5, third, 0.0, 0.0, 0.0]) {
            assert!((a - e).abs() < 1e-6, "{g:?}");
        }
    }

    #[test]
    fn hinge_by_hand() {
        // Label 0, logits [2.0, 1.5, -1.0, 2.5]: margins 0.5, 0 (clipped: 1 − 3 < 0), 1.5.
        let z = [2.0, 1.5, -1.0, 2.5];
        let mut g = [0.0; 4];
        let out = loss(LossKind::Hinge, 4, &z, &[0], &mut g);
        assert!((out.loss - 2.0).abs() < 1e-6);
        assert_eq!(out.correct, 0);
        assert_eq!(g, [-2.0, 1.0, 0.0, 1.0]);
    }
}
