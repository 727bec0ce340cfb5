//! Geometry shared by every backend (and by the runtime the models are exported to).

/// A convolution's geometry for one sample (`n` is passed to each op).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Input channels.
    pub in_c: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Output channels (filters).
    pub out_c: usize,
    /// Square kernel side.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on all four sides.
    pub pad: usize,
    /// Output height, `(in_h + 2·pad − kernel) / stride + 1`.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

impl ConvShape {
    /// Floats in one input sample.
    pub fn in_len(&self) -> usize {
        self.in_c * self.in_h * self.in_w
    }
    /// Floats in one output sample.
    pub fn out_len(&self) -> usize {
        self.out_c * self.out_h * self.out_w
    }
    /// Rows of the im2col matrix (`in_c · k · k`), also the weight's row length.
    pub fn patch_len(&self) -> usize {
        self.in_c * self.kernel * self.kernel
    }
    /// Floats in the weight `[out, in, k, k]`.
    pub fn weight_len(&self) -> usize {
        self.out_c * self.patch_len()
    }
}

/// A fully connected layer's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearShape {
    /// Input units (the flattened CHW of a sample).
    pub inputs: usize,
    /// Output units.
    pub outputs: usize,
}

/// A pooling window's geometry (no padding, floor output size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShape {
    /// Channels.
    pub c: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Square window side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Output height, `(in_h − kernel) / stride + 1`.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

impl PoolShape {
    /// Floats in one input sample.
    pub fn in_len(&self) -> usize {
        self.c * self.in_h * self.in_w
    }
    /// Floats in one output sample.
    pub fn out_len(&self) -> usize {
        self.c * self.out_h * self.out_w
    }
}

/// Local contrast normalization's geometry; the `size × size` window is a tensor argument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LcnShape {
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Window side (odd).
    pub size: usize,
    /// Divisor floor.
    pub eps: f32,
}

impl LcnShape {
    /// Floats in one sample.
    pub fn len(&self) -> usize {
        self.c * self.h * self.w
    }
    /// True when a sample has no elements (never, for a validated shape).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Elementwise nonlinearities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `max(0, x)`; gradient 0 at 0.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `|x|`; gradient 0 at 0.
    Abs,
}

/// A loss value and the number of correct argmax predictions in the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossOut {
    /// Mean loss over the batch.
    pub loss: f32,
    /// Samples whose first largest logit is the label.
    pub correct: usize,
}

/// Whether dropout keeps element `index` for `seed` with drop probability `p`.
///
/// Counter-based (SplitMix64 of seed and index), so the mask does not depend on how the
/// work is split across threads or devices: every backend must use this function's exact
/// arithmetic.
pub fn dropout_keep(seed: u64, index: u64, p: f32) -> bool {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // 24 random bits → a uniform f32 in [0, 1), exactly representable.
    let u = (z >> 40) as f32 * (1.0 / 16_777_216.0);
    u >= p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_mask_depends_only_on_seed_and_index() {
        let kept = (0..10_000).filter(|&i| dropout_keep(5, i, 0.5)).count();
        assert!((4_800..5_200).contains(&kept), "{kept}");
        assert!((0..1000).all(|i| dropout_keep(9, i, 0.0)));
        assert_ne!(
            (0..64).map(|i| dropout_keep(1, i, 0.5)).collect::<Vec<_>>(),
            (0..64).map(|i| dropout_keep(2, i, 0.5)).collect::<Vec<_>>()
        );
    }
}
