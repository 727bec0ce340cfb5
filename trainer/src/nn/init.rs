//! Initialization: weights scaled so each feature has similar variance across layers, and
//! the LCN window.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::shape::Op;
use crate::backend::Activation;

/// A standard normal sample (Box–Muller in f64), from two draws of `rng`.
pub fn normal(rng: &mut ChaCha8Rng) -> f32 {
    // 1 − u ∈ (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// The weight standard deviation for layer `index` of `ops`: He, `√(2 / fan_in)`, when the
/// next layer that changes values (skipping pooling, dropout and flatten, which commute
/// with or preserve a ReLU's input statistics) is a ReLU; LeCun, `√(1 / fan_in)`, otherwise.
pub fn weight_std(ops: &[Op], index: usize) -> f32 {
    let Some(fan_in) = ops[index].fan_in() else {
        return 0.0;
    };
    let next = ops[index + 1..].iter().find(|op| {
        !matches!(
            op,
            Op::MaxPool2d(_) | Op::AvgPool2d(_) | Op::Dropout { .. } | Op::Flatten
        )
    });
    let gain = if matches!(next, Some(Op::Act(Activation::Relu))) {
        2.0
    } else {
        1.0
    };
    (gain / fan_in as f32).sqrt()
}

/// The `size × size` Gaussian window of std `sigma` centred at `(size / 2, size / 2)`,
/// row-major and normalized to sum to 1 (stored in model files as is).
pub fn lcn_window(size: usize, sigma: f32) -> Vec<f32> {
    let r = (size / 2) as f64;
    let two_var = 2.0 * (sigma as f64).powi(2);
    let raw: Vec<f64> = (0..size * size)
        .map(|i| {
            let (p, q) = ((i / size) as f64 - r, (i % size) as f64 - r);
            (-(p * p + q * q) / two_var).exp()
        })
        .collect();
    let sum: f64 = raw.iter().sum();
    raw.iter().map(|v| (v / sum) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn window_is_normalized_symmetric_and_peaked() {
        let w = lcn_window(5, 1.0);
        assert_eq!(w.len(), 25);
        assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(w[12], w.iter().cloned().fold(0.0, f32::max));
        assert_eq!(w[0], w[24]);
        assert_eq!(w[1], w[5]);
        assert_eq!(lcn_window(1, 2.0), vec![1.0]);
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let xs: Vec<f64> = (0..100_000).map(|_| normal(&mut rng) as f64).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
    }
}
