//! Structure-aware fuzzing of model files.
//!
//! [`mutate`] decodes a valid model, changes **one** thing — a field of the metadata (a
//! shape, stride, padding, pool size, quantization scale, zero point, tensor offset,
//! length or type, the layer order, an op's kind, the precision, the class list), an
//! element of a tensor (weights, biases, scales, multipliers, shifts, tables,
//! thresholds) or the header's version — and re-encodes it with a valid CRC, so that the
//! validator, not the checksum, has to catch what is wrong. [`check`] then loads, plans
//! and runs the result with the exact arena and with one byte less, and reports any broken
//! promise as an error; a panic is a failure of its own (the runner catches it, libFuzzer
//! aborts on it).
//!
//! Two drivers share this: `model-fuzz` (stable Rust, random choices from a seeded PRNG,
//! time-boxed; in the test command, on 64 and 32 bits) and the cargo-fuzz target in
//! `fuzz/libfuzzer/fuzz_targets/model.rs` (nightly, coverage-guided: libFuzzer's bytes are the
//! choices). Seeds: `fuzz-seeds` writes every shipped architecture at every precision.

use kestrel_format::{
    encode, header::Header, AlignedBuf, DType, LayerDesc, Model, ModelDesc, Op, Precision, QParams,
    Shape, TensorRef, MAX_LAYERS,
};
use kestrel_runtime::{Error as RunError, Input, KernelSet, Limits, Plan};

/// Where mutation choices come from: a PRNG or libFuzzer's input bytes.
pub trait Choices {
    /// The next choice, any `u32`.
    fn next(&mut self) -> u32;

    /// A choice below `n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() as usize) % n.max(1)
    }
}

/// SplitMix64: a small, fast, seedable PRNG for the stable runner.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl Choices for SplitMix {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as u32
    }
}

/// libFuzzer's input read four bytes a choice (zeros once it runs out).
#[derive(Debug, Clone)]
pub struct Bytes<'b>(pub &'b [u8]);

impl Choices for Bytes<'_> {
    fn next(&mut self) -> u32 {
        let mut v = [0u8; 4];
        let n = self.0.len().min(4);
        v[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u32::from_le_bytes(v)
    }
}

/// Values that find edges: zero, one, powers of two and their neighbours, the extremes of
/// each width, the 32-bit wrap of the report (66,052 × 255 × 255), and the old value moved.
fn interesting_u32(old: u32, c: &mut dyn Choices) -> u32 {
    const V: [u32; 16] = [
        0,
        1,
        2,
        3,
        7,
        16,
        255,
        256,
        1023,
        65_535,
        65_536,
        66_052,
        1 << 24,
        1 << 28,
        i32::MAX as u32,
        u32::MAX,
    ];
    match c.below(6) {
        0 | 1 => V[c.below(V.len())],
        2 => old.wrapping_add(1 + c.below(4) as u32),
        3 => old.wrapping_sub(1 + c.below(4) as u32),
        4 => old.wrapping_mul(2 + c.below(3) as u32),
        _ => c.next() >> c.below(32),
    }
}

fn interesting_u8(old: u8, c: &mut dyn Choices) -> u8 {
    match c.below(3) {
        0 => [0, 1, 2, 3, 4, 127, 128, 254, 255][c.below(9)],
        1 => old.wrapping_add(1 + c.below(3) as u8),
        _ => old.wrapping_sub(1 + c.below(3) as u8),
    }
}

fn interesting_f32(old: f32, c: &mut dyn Choices) -> f32 {
    const V: [f32; 12] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        1e-30,
        1e30,
        f32::MAX,
        65_504.0,
    ];
    match c.below(4) {
        0 | 1 => V[c.below(V.len())],
        2 => old * [2.0, 0.5, -1.0, 1.0001, 1e6, 1e-6][c.below(6)],
        _ => f32::from_bits(c.next()),
    }
}

fn interesting_i32(old: i32, c: &mut dyn Choices) -> i32 {
    const V: [i32; 14] = [
        0,
        1,
        -1,
        30,
        31,
        -31,
        -32,
        62,
        127,
        -128,
        1 << 30,
        i32::MAX,
        i32::MIN,
        (1 << 30) - 1,
    ];
    match c.below(4) {
        0 | 1 => V[c.below(V.len())],
        2 => old.wrapping_add(c.below(5) as i32 - 2),
        _ => c.next() as i32,
    }
}

fn mutate_shape(s: &mut Shape, c: &mut dyn Choices) {
    match c.below(3) {
        0 => s.c = interesting_u32(s.c, c),
        1 => s.h = interesting_u32(s.h, c),
        _ => s.w = interesting_u32(s.w, c),
    }
}

fn mutate_quant(q: &mut Option<QParams>, c: &mut dyn Choices) {
    match (q.as_mut(), c.below(8)) {
        (_, 0) => *q = None,
        (None, _) => {
            *q = Some(QParams {
                scale: interesting_f32(0.05, c),
                zero_point: interesting_i32(0, c),
            })
        }
        (Some(q), k) if k < 5 => q.scale = interesting_f32(q.scale, c),
        (Some(q), _) => q.zero_point = interesting_i32(q.zero_point, c),
    }
}

fn mutate_ref(t: &mut TensorRef, data_len: usize, c: &mut dyn Choices) {
    match c.below(4) {
        0 => {
            t.dtype = [DType::F32, DType::F16, DType::I8, DType::I32][c.below(4)];
        }
        1 => t.len = interesting_u32(t.len, c),
        2 => {
            // Aligned offsets inside (or just past) the data section make overlaps and
            // short tensors, not only out-of-bounds ones.
            let slots = data_len / 16 + 2;
            t.offset = (c.below(slots) * 16) as u32;
        }
        _ => t.offset = interesting_u32(t.offset, c),
    }
}

/// Every tensor reference of an op, mutable, in [`Op::tensors`]' order.
fn refs_mut(op: &mut Op) -> Vec<&mut TensorRef> {
    let mut v: Vec<&mut TensorRef> = Vec::new();
    match op {
        Op::Conv2d {
            weight,
            bias,
            requant,
            ..
        }
        | Op::Linear {
            weight,
            bias,
            requant,
        } => {
            v.push(weight);
            v.push(bias);
            if let Some(r) = requant {
                v.extend([&mut r.weight_scale, &mut r.multiplier, &mut r.shift]);
            }
        }
        Op::Tanh { table } | Op::Abs { table } => v.extend(table.as_mut()),
        Op::Lcn { window, .. } => v.push(window),
        Op::Shrink { theta } => v.push(theta),
        Op::Gain { gain, rescale } => {
            v.push(gain);
            if let Some(r) = rescale {
                v.extend([&mut r.multiplier, &mut r.shift]);
            }
        }
        Op::Lista {
            s, theta, quant, ..
        } => {
            v.extend([s, theta]);
            if let Some(q) = quant {
                v.extend([
                    &mut q.s_scale,
                    &mut q.input.multiplier,
                    &mut q.input.shift,
                    &mut q.output.multiplier,
                    &mut q.output.shift,
                ]);
            }
        }
        Op::Dictionary {
            atoms,
            fista_weight,
            fista_s,
            ..
        } => v.extend([atoms, fista_weight, fista_s]),
        Op::Relu
        | Op::MaxPool2d { .. }
        | Op::AvgPool2d { .. }
        | Op::Flatten
        | Op::PatchNorm { .. } => {}
    }
    v
}

/// An op's scalar parameters (geometry, window, steps, floors).
fn mutate_op_params(op: &mut Op, c: &mut dyn Choices) -> bool {
    match op {
        Op::Conv2d {
            kh,
            kw,
            stride,
            pad,
            ..
        } => {
            let f = [kh, kw, stride, pad];
            let k = c.below(4);
            let [a, b, s, p] = f;
            let x = [a, b, s, p].into_iter().nth(k).expect("four fields");
            *x = interesting_u8(*x, c);
        }
        Op::MaxPool2d { k, stride } | Op::AvgPool2d { k, stride } => {
            let x = if c.below(2) == 0 { k } else { stride };
            *x = interesting_u8(*x, c);
        }
        Op::Lcn { size, eps, .. } => {
            if c.below(2) == 0 {
                *size = interesting_u8(*size, c)
            } else {
                *eps = interesting_f32(*eps, c)
            }
        }
        Op::PatchNorm { contrast } => {
            *contrast = match c.below(3) {
                0 => None,
                _ => Some(interesting_f32(contrast.unwrap_or(0.01), c)),
            }
        }
        Op::Lista { steps, .. } => *steps = interesting_u8(*steps, c),
        Op::Dictionary {
            lambda, lipschitz, ..
        } => {
            let x = if c.below(2) == 0 { lambda } else { lipschitz };
            *x = interesting_f32(*x, c);
        }
        Op::Linear { .. }
        | Op::Relu
        | Op::Tanh { .. }
        | Op::Abs { .. }
        | Op::Flatten
        | Op::Shrink { .. }
        | Op::Gain { .. } => return false,
    }
    true
}

/// One field of the metadata. Returns a short name of what changed.
fn mutate_desc(desc: &mut ModelDesc<'_>, data_len: usize, c: &mut dyn Choices) -> &'static str {
    let n = desc.layers.len();
    match c.below(13) {
        0 => {
            mutate_shape(&mut desc.input.shape, c);
            "input shape"
        }
        1 => {
            if c.below(2) == 0 {
                desc.input.mean = interesting_f32(desc.input.mean, c);
            } else {
                desc.input.std = interesting_f32(desc.input.std, c);
            }
            "normalization"
        }
        2 => {
            mutate_quant(&mut desc.input.quant, c);
            "input quantization"
        }
        3 if n > 0 => {
            let l = &mut desc.layers[c.below(n)];
            if c.below(2) == 0 {
                mutate_shape(&mut l.input, c);
            } else {
                mutate_shape(&mut l.output, c);
            }
            "layer shape"
        }
        4 if n > 0 => {
            mutate_quant(&mut desc.layers[c.below(n)].out_quant, c);
            "output quantization"
        }
        5 | 6 if n > 0 => {
            let l = &mut desc.layers[c.below(n)];
            if mutate_op_params(&mut l.op, c) {
                "op parameter"
            } else {
                "op parameter (none)"
            }
        }
        7 | 8 if n > 0 => {
            let l = &mut desc.layers[c.below(n)];
            let mut refs = refs_mut(&mut l.op);
            if refs.is_empty() {
                return "tensor reference (none)";
            }
            let k = c.below(refs.len());
            mutate_ref(refs[k], data_len, c);
            "tensor reference"
        }
        9 if n > 1 => {
            let (a, b) = (c.below(n), c.below(n));
            desc.layers.swap(a, b);
            "layer order"
        }
        10 if n > 0 => {
            // An op's kind: another layer's op (tensors and all), or a parameterless op.
            let donor = c.below(n + 3);
            let op = match donor.checked_sub(n) {
                None => desc.layers[donor].op,
                Some(0) => Op::Relu,
                Some(1) => Op::Flatten,
                Some(_) => Op::MaxPool2d { k: 2, stride: 2 },
            };
            desc.layers[c.below(n)].op = op;
            "op kind"
        }
        11 if n > 0 => {
            match c.below(3) {
                0 => {
                    desc.layers.remove(c.below(n));
                }
                1 if n < MAX_LAYERS => {
                    let l: LayerDesc = desc.layers[c.below(n)];
                    let _ = desc.layers.insert(c.below(n + 1), l);
                }
                _ => desc.layers.truncate(c.below(n)),
            }
            "layer count"
        }
        _ => match c.below(3) {
            0 => {
                desc.precision = [Precision::F32, Precision::F16, Precision::Int8][c.below(3)];
                "precision"
            }
            1 => {
                if desc.classes.is_empty() || c.below(2) == 0 {
                    let _ = desc.classes.push("x");
                } else {
                    desc.classes.pop();
                }
                "class list"
            }
            _ => "none",
        },
    }
}

/// One element of one tensor, with a value chosen for its type.
fn mutate_data(desc: &ModelDesc<'_>, data: &mut [u8], c: &mut dyn Choices) -> &'static str {
    let tensors: Vec<TensorRef> = desc
        .layers
        .iter()
        .flat_map(|l| l.op.tensors().into_iter().map(|(_, t)| t))
        .filter(|t| t.len > 0)
        .collect();
    if tensors.is_empty() {
        return "tensor element (none)";
    }
    let t = tensors[c.below(tensors.len())];
    let size = t.dtype.size();
    let at = t.offset as usize + c.below(t.len as usize) * size;
    let Some(bytes) = data.get_mut(at..at + size) else {
        return "tensor element (out of range)";
    };
    match t.dtype {
        DType::F32 => {
            let old = f32::from_le_bytes(bytes.try_into().expect("4 bytes"));
            bytes.copy_from_slice(&interesting_f32(old, c).to_le_bytes());
        }
        DType::I32 => {
            let old = i32::from_le_bytes(bytes.try_into().expect("4 bytes"));
            bytes.copy_from_slice(&interesting_i32(old, c).to_le_bytes());
        }
        DType::F16 => {
            let v: u16 = [0x7C00, 0xFC00, 0x7E00, 0x7BFF, 0x0001, 0][c.below(6)];
            bytes.copy_from_slice(&v.to_le_bytes());
        }
        DType::I8 => bytes[0] = [0x80, 0x7F, 0, 0xFF, c.next() as u8][c.below(5)],
    }
    "tensor element"
}

/// A mutated copy of `seed` (a valid model file) and what was mutated.
///
/// # Panics
/// If `seed` is not a valid model: seeds come from `fuzz-seeds`.
pub fn mutate(seed: &[u8], c: &mut dyn Choices) -> (Vec<u8>, &'static str) {
    let buf = AlignedBuf::new(seed);
    let model = Model::from_bytes(&buf).expect("seeds are valid models");
    let header = Header::parse(&buf).expect("a valid header");
    let mut desc = model.desc.clone();
    let mut data = buf[header.data_offset..].to_vec();
    let what = match c.below(8) {
        0..=4 => mutate_desc(&mut desc, data.len(), c),
        5 | 6 => mutate_data(&desc, &mut data, c),
        _ => "version",
    };
    let mut out = match encode(&desc, &data) {
        Ok(b) => b,
        // Metadata postcard cannot encode (none expected): mutate the data instead.
        Err(_) => encode(&model.desc, &data).expect("the seed re-encodes"),
    };
    if what == "version" {
        // The header's version (bytes 4..6); the CRC covers the payload only.
        let v = interesting_u32(1, c) as u16;
        out[4..6].copy_from_slice(&v.to_le_bytes());
    }
    (out, what)
}

/// What [`check`] saw a file do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `Model::from_bytes` refused it.
    Rejected,
    /// It loaded; `Plan::with_limits` refused it (an op this build lacks, or a limit).
    Refused,
    /// It loaded, planned and ran.
    Ran,
}

/// The limits the fuzzers plan with: enough for every shipped model (about 10⁶ operations
/// and 100 kB of arena), small enough that no input takes long.
pub const LIMITS: Limits = Limits {
    max_ops: 20_000_000,
    max_arena_bytes: 16 << 20,
    max_layers: MAX_LAYERS,
};

/// Loads, plans and runs `bytes`; `Err` names a broken promise: a plan that then fails to
/// run with its exact arena, or runs with one byte less, or a reported size that disagrees
/// with itself. Models of at most `reference_ops` operations are also run on the
/// reference kernels, and must give the same output as the fastest set where the model
/// is int8 (bit-exact promise).
pub fn check(bytes: &[u8], reference_ops: u64) -> Result<Outcome, String> {
    let buf = AlignedBuf::new(bytes);
    let Ok(model) = Model::from_bytes(&buf) else {
        return Ok(Outcome::Rejected);
    };
    let Ok(plan) = Plan::with_limits(&model, &LIMITS) else {
        return Ok(Outcome::Refused);
    };
    // Sizing for other targets must not panic either (saturating rules).
    for set in KernelSet::ALL {
        let _ = Plan::arena_bytes_for(&model, set);
    }
    for i in 0..=model.layers().len() {
        let _ = plan.layer_stats(i);
    }
    let input_len = model.input_shape().len();
    let pixels: Vec<u8> = (0..input_len).map(|i| (i * 37 % 256) as u8).collect();
    let arena_bytes = plan.arena_bytes();
    let mut arena = vec![0u128; arena_bytes.div_ceil(16) + 1];
    let arena = &mut bytemuck_bytes(&mut arena)[..arena_bytes];
    let mut out = vec![0f32; model.output_shape().len()];
    plan.run_f32(arena, Input::Pixels(&pixels), &mut out)
        .map_err(|e| format!("planned, but the run with the exact arena failed: {e}"))?;
    if arena_bytes > 0 {
        match plan.run_f32(
            &mut arena[..arena_bytes - 1],
            Input::Pixels(&pixels),
            &mut out,
        ) {
            Err(RunError::ArenaTooSmall { .. }) => {}
            other => return Err(format!("one byte short of the arena gave {other:?}")),
        }
    }
    if plan.ops() <= reference_ops && plan.kernel_set() != KernelSet::Reference {
        let reference = Plan::with_kernels(&model, KernelSet::Reference)
            .map_err(|e| format!("the reference kernels refused a planned model: {e}"))?;
        let mut arena = vec![0u128; reference.arena_bytes().div_ceil(16)];
        let mut ref_out = vec![0f32; out.len()];
        let arena = bytemuck_bytes(&mut arena);
        // `out` still holds the first run's output: the short-arena run fails before
        // writing it.
        reference
            .run_f32(arena, Input::Pixels(&pixels), &mut ref_out)
            .map_err(|e| format!("the reference run failed: {e}"))?;
        if model.precision() == Precision::Int8 && out != ref_out {
            return Err(format!(
                "int8 output differs between {} and the reference",
                plan.kernel_set().name()
            ));
        }
    }
    Ok(Outcome::Ran)
}

/// A `u128` buffer (16-byte aligned) as bytes.
fn bytemuck_bytes(a: &mut [u128]) -> &mut [u8] {
    bytemuck::cast_slice_mut(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_from_bytes_run_out_as_zeros() {
        let mut b = Bytes(&[1, 0, 0, 0, 2]);
        assert_eq!(b.next(), 1);
        assert_eq!(b.next(), 2);
        assert_eq!(b.next(), 0);
    }
}
