//! The one check every kernel variant passes: on random shapes, strides, paddings, zero
//! points, multipliers and data, the variant compiled into this build (`avx2`, `neon`,
//! `dsp`, `mve`; see [`crate::IMPL`]) must produce exactly the reference's output, bit for
//! bit, in exactly the output and scratch lengths the plan gives it.
//!
//! `no_std` and heap-free, so that the same cases run everywhere a variant runs: on the host
//! (`runtime/tests/variants.rs`, natively on x86-64 and under `qemu-aarch64`) and on
//! M-profile firmware under `qemu-system-arm`. Case `seed` of a kernel is the same on every
//! machine, so a failure anywhere is replayed anywhere.
//!
//! ```
//! use kestrel_runtime::check::{self, Kernel};
//! let mut work = [0u8; check::WORK_BYTES];
//! for kernel in Kernel::ALL {
//!     for seed in 0..20 {
//!         check::run(kernel, seed, &mut work).unwrap(); // Err(Mismatch) describes the case
//!     }
//! }
//! ```
//!
//! Where [`crate::IMPL`] is `"reference"` the reference is compared with itself: the check
//! still runs, but proves nothing about a variant. Callers should say so.

use core::fmt;

pub mod bench;
#[cfg(feature = "encoders")]
mod encoders;
#[cfg(feature = "encoders")]
pub use encoders::{bench as bench_encoder, EncoderShape};

use kestrel_format::{ConvGeom, Dense, Layer, LayerKind, QParams, Shape};

use crate::kernels::table::Kernels;
use crate::kernels::{avgpool, conv2d, fc, lcn, lut, maxpool, DenseF, DenseS8, Dims, Elem};
use crate::KernelSet;
use half::f16;

/// Work buffer [`run`] and [`bench::run`] need: every case's tensors fit in it. The
/// largest is the bench's f32 fully connected layer, 400 inputs × 120 outputs: 192,000
/// bytes of weights plus its vectors.
pub const WORK_BYTES: usize = 256 * 1024;

/// The kernels that have per-instruction-set variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// int8 convolution.
    Conv2dS8,
    /// int8 fully connected.
    FcS8,
    /// int8 max pooling.
    MaxPoolS8,
    /// int8 average pooling.
    AvgPoolS8,
    /// f32 convolution.
    Conv2dF32,
    /// f32 fully connected.
    FcF32,
    /// f32 max pooling.
    MaxPoolF32,
    /// f32 average pooling.
    AvgPoolF32,
    /// int8 local contrast normalization.
    LcnS8,
    /// f32 local contrast normalization.
    LcnF32,
    /// f32 convolution with f16 weights.
    Conv2dF16,
    /// f32 fully connected with f16 weights.
    FcF16,
    /// int8 256-entry table lookup (tanh, abs).
    LutS8,
    /// int8 LISTA step (`h ← shrink_θ(b + S·h)`), after the first shrink.
    #[cfg(feature = "encoders")]
    ListaS8,
    /// f32 LISTA step, also FISTA's step ([`crate::sparse`]).
    #[cfg(feature = "encoders")]
    ListaF32,
    /// f32 LISTA step with an f16 `S`.
    #[cfg(feature = "encoders")]
    ListaF16,
}

impl Kernel {
    /// Every kernel, int8 first (the encoder kernels last, where built).
    #[cfg(feature = "encoders")]
    pub const ALL: [Kernel; 16] = [
        Kernel::Conv2dS8,
        Kernel::FcS8,
        Kernel::MaxPoolS8,
        Kernel::AvgPoolS8,
        Kernel::Conv2dF32,
        Kernel::FcF32,
        Kernel::MaxPoolF32,
        Kernel::AvgPoolF32,
        Kernel::LcnS8,
        Kernel::LcnF32,
        Kernel::LutS8,
        Kernel::Conv2dF16,
        Kernel::FcF16,
        Kernel::ListaS8,
        Kernel::ListaF32,
        Kernel::ListaF16,
    ];

    /// Every kernel, int8 first.
    #[cfg(not(feature = "encoders"))]
    pub const ALL: [Kernel; 13] = [
        Kernel::Conv2dS8,
        Kernel::FcS8,
        Kernel::MaxPoolS8,
        Kernel::AvgPoolS8,
        Kernel::Conv2dF32,
        Kernel::FcF32,
        Kernel::MaxPoolF32,
        Kernel::AvgPoolF32,
        Kernel::LcnS8,
        Kernel::LcnF32,
        Kernel::LutS8,
        Kernel::Conv2dF16,
        Kernel::FcF16,
    ];

    /// The kernel function's name, e.g. `"conv2d_s8"`.
    pub const fn name(self) -> &'static str {
        match self {
            Kernel::Conv2dS8 => "conv2d_s8",
            Kernel::FcS8 => "fc_s8",
            Kernel::MaxPoolS8 => "maxpool_s8",
            Kernel::AvgPoolS8 => "avgpool_s8",
            Kernel::Conv2dF32 => "conv2d_f32",
            Kernel::FcF32 => "fc_f32",
            Kernel::MaxPoolF32 => "maxpool_f32",
            Kernel::AvgPoolF32 => "avgpool_f32",
            Kernel::LcnS8 => "lcn_s8",
            Kernel::LcnF32 => "lcn_f32",
            Kernel::LutS8 => "lut_s8",
            Kernel::Conv2dF16 => "conv2d_f16",
            Kernel::FcF16 => "fc_f16",
            #[cfg(feature = "encoders")]
            Kernel::ListaS8 => "lista_step_s8",
            #[cfg(feature = "encoders")]
            Kernel::ListaF32 => "lista_step_f32",
            #[cfg(feature = "encoders")]
            Kernel::ListaF16 => "lista_step_f16",
        }
    }

    const fn elem(self) -> Elem {
        match self {
            Kernel::Conv2dS8
            | Kernel::FcS8
            | Kernel::MaxPoolS8
            | Kernel::AvgPoolS8
            | Kernel::LcnS8
            | Kernel::LutS8 => Elem::I8,
            #[cfg(feature = "encoders")]
            Kernel::ListaS8 => Elem::I8,
            _ => Elem::F32,
        }
    }
}

/// One random case: the shapes and quantization a seed produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// Kernel set under test.
    pub set: KernelSet,
    /// Kernel under test.
    pub kernel: Kernel,
    /// The seed that produced it.
    pub seed: u64,
    /// Input `[C, H, W]` (fully connected: `[K, 1, 1]`).
    pub input: Shape,
    /// Output `[OC, OH, OW]`.
    pub output: Shape,
    /// Kernel (pooling window) height and width.
    pub k: (usize, usize),
    /// Stride.
    pub stride: usize,
    /// Zero padding (convolution).
    pub pad: usize,
    /// Input and output zero points (int8 convolution and fully connected).
    pub zp: (i32, i32),
    /// Scratch bytes the variant asked for and got.
    pub scratch: usize,
}

impl Case {
    /// A case without a window (fully connected, element-wise): `k` 1×1, stride 1, no
    /// padding, zero points and scratch 0 until the generator sets them.
    pub(crate) fn flat(ks: &Kernels, kernel: Kernel, seed: u64, xd: Dims, yd: Dims) -> Case {
        Case {
            set: ks.set,
            kernel,
            seed,
            input: shape(xd),
            output: shape(yd),
            k: (1, 1),
            stride: 1,
            pad: 0,
            zp: (0, 0),
            scratch: 0,
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (i, o) = (self.input, self.output);
        write!(
            f,
            "{} seed {}: input [{}, {}, {}] -> output [{}, {}, {}], k {}x{}, stride {}, pad {}, \
             zero points in {} out {}, scratch {} B",
            self.kernel.name(),
            self.seed,
            i.c,
            i.h,
            i.w,
            o.c,
            o.h,
            o.w,
            self.k.0,
            self.k.1,
            self.stride,
            self.pad,
            self.zp.0,
            self.zp.1,
            self.scratch
        )
    }
}

/// The variant's output differs from the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    /// The case.
    pub case: Case,
    /// First differing output element (flat CHW index).
    pub index: usize,
    /// The reference's value: an int8 code, or an f32's bits.
    pub expected: u32,
    /// The variant's value, same encoding.
    pub got: u32,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (e, g) = (self.expected, self.got);
        write!(
            f,
            "{}: {} output {} differs: ",
            self.case,
            self.case.set.name(),
            self.index
        )?;
        match self.case.kernel.elem() {
            Elem::I8 => write!(f, "reference {}, variant {}", e as u8 as i8, g as u8 as i8),
            Elem::F32 => write!(
                f,
                "reference {:e} ({e:#010x}), variant {:e} ({g:#010x})",
                f32::from_bits(e),
                f32::from_bits(g)
            ),
        }
    }
}

/// The kernel sets besides the reference that this build has and this CPU runs: what
/// [`run_on`] can check here.
pub fn sets() -> impl Iterator<Item = KernelSet> {
    KernelSet::ALL
        .into_iter()
        .filter(|&s| s != KernelSet::Reference && Kernels::get(s).is_some())
}

/// The table of `set`.
///
/// # Panics
/// If this build does not have `set` or this CPU cannot run it (see [`sets`]).
fn table(set: KernelSet) -> &'static Kernels {
    match Kernels::get(set) {
        Some(k) => k,
        None => panic!("check: kernel set {} is not available here", set.name()),
    }
}

/// Whether `set`'s `kernel` *is* the reference (its variant file re-exports it): the check
/// then compares the reference with itself, and callers should say so.
pub fn runs_reference(set: KernelSet, kernel: Kernel) -> bool {
    let ks = table(set);
    let r = &Kernels::REFERENCE;
    // A re-export is the same function, so the same address; a variant is another.
    macro_rules! same {
        ($op:ident, $f:ident) => {
            ks.$f as *const () == r.$f as *const ()
        };
    }
    match kernel {
        Kernel::Conv2dS8 => same!(conv2d, conv2d_s8),
        Kernel::FcS8 => same!(fc, fc_s8),
        Kernel::MaxPoolS8 => same!(maxpool, maxpool_s8),
        Kernel::AvgPoolS8 => same!(avgpool, avgpool_s8),
        Kernel::Conv2dF32 => same!(conv2d, conv2d_f32),
        Kernel::FcF32 => same!(fc, fc_f32),
        Kernel::MaxPoolF32 => same!(maxpool, maxpool_f32),
        Kernel::AvgPoolF32 => same!(avgpool, avgpool_f32),
        Kernel::LcnS8 => same!(lcn, lcn_s8),
        Kernel::LcnF32 => same!(lcn, lcn_f32),
        Kernel::LutS8 => same!(lut, lut_s8),
        Kernel::Conv2dF16 => same!(conv2d, conv2d_f16),
        Kernel::FcF16 => same!(fc, fc_f16),
        #[cfg(feature = "encoders")]
        Kernel::ListaS8 => same!(lista, lista_step_s8),
        #[cfg(feature = "encoders")]
        Kernel::ListaF32 => same!(lista, lista_step_f32),
        #[cfg(feature = "encoders")]
        Kernel::ListaF16 => same!(lista, lista_step_f16),
    }
}

/// Runs case `seed` of `kernel` through the reference and the fastest set this build runs
/// here ([`KernelSet::detect`]) and compares their outputs bit for bit: [`run_on`].
pub fn run(kernel: Kernel, seed: u64, work: &mut [u8]) -> Result<Case, Mismatch> {
    run_on(KernelSet::detect(), kernel, seed, work)
}

/// Runs case `seed` of `kernel` through the reference and `set`'s variant and compares
/// their outputs bit for bit. The case depends on `kernel` and `seed` only, so every set
/// sees the same cases.
///
/// # Panics
/// If `work` is shorter than [`WORK_BYTES`] or `set` is not available here ([`sets`]); and
/// wherever the variant itself panics (an out-of-bounds access to its output or scratch is
/// a failed check too).
pub fn run_on(
    set: KernelSet,
    kernel: Kernel,
    seed: u64,
    work: &mut [u8],
) -> Result<Case, Mismatch> {
    assert!(
        work.len() >= WORK_BYTES,
        "check::run needs WORK_BYTES of work"
    );
    let ks = table(set);
    let mut rng = Rng::new(seed ^ (kernel as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut work = Carve::new(work);
    match kernel {
        Kernel::Conv2dS8 | Kernel::Conv2dF32 | Kernel::Conv2dF16 => {
            conv(ks, kernel, seed, &mut rng, &mut work)
        }
        Kernel::FcS8 | Kernel::FcF32 | Kernel::FcF16 => {
            linear(ks, kernel, seed, &mut rng, &mut work)
        }
        Kernel::LcnS8 | Kernel::LcnF32 => lcn(ks, kernel, seed, &mut rng, &mut work),
        Kernel::LutS8 => lut(ks, seed, &mut rng, &mut work),
        #[cfg(feature = "encoders")]
        Kernel::ListaS8 => encoders::lista_s8(ks, seed, &mut rng, &mut work),
        #[cfg(feature = "encoders")]
        Kernel::ListaF32 => encoders::lista_float::<f32>(ks, kernel, seed, &mut rng, &mut work),
        #[cfg(feature = "encoders")]
        Kernel::ListaF16 => {
            encoders::lista_float::<half::f16>(ks, kernel, seed, &mut rng, &mut work)
        }
        _ => pool(ks, kernel, seed, &mut rng, &mut work),
    }
}

fn conv(
    ks: &Kernels,
    kernel: Kernel,
    seed: u64,
    rng: &mut Rng,
    work: &mut Carve<'_>,
) -> Result<Case, Mismatch> {
    let elem = kernel.elem();
    // Mostly small random shapes; every fourth case a LeNet-sized input channel count
    // (conv1's 1, `lenet5` conv2's 6, `lenet` conv2's 12).
    let c = if rng.below(4) == 0 {
        [1, 6, 12][rng.below(3)]
    } else {
        1 + rng.below(8)
    };
    let (kh, kw) = if rng.below(3) == 0 {
        let k = [1, 3, 5][rng.below(3)];
        (k, k)
    } else {
        (1 + rng.below(5), 1 + rng.below(5))
    };
    let pad = rng.below(kh.min(kw).min(3));
    // Every third case strided: 2, 3 or 4.
    let stride = if rng.below(3) == 0 {
        2 + rng.below(3)
    } else {
        1
    };
    // Every fourth case a few rows as wide as LeNet's (16–35 more columns than the kernel),
    // so that SIMD blocks of 16 output columns run too.
    let wide = rng.below(4) == 0;
    let h = (kh.saturating_sub(2 * pad)).max(1) + rng.below(if wide { 4 } else { 12 });
    let w = (kw.saturating_sub(2 * pad)).max(1)
        + if wide {
            16 + rng.below(20)
        } else {
            rng.below(12)
        };
    let oc = 1 + rng.below(20);
    let geom = ConvGeom {
        kh,
        kw,
        stride,
        pad,
    };
    let (oh, ow) = (
        (h + 2 * pad - kh) / stride + 1,
        (w + 2 * pad - kw) / stride + 1,
    );
    let (xd, yd) = (
        Dims { c, h, w },
        Dims {
            c: oc,
            h: oh,
            w: ow,
        },
    );
    let n_w = oc * c * kh * kw;
    let mut case = Case {
        set: ks.set,
        kernel,
        seed,
        input: shape(xd),
        output: shape(yd),
        k: (kh, kw),
        stride,
        pad,
        zp: (0, 0),
        scratch: 0,
    };
    let kind = |params| LayerKind::Conv2d { geom, params };
    match elem {
        Elem::I8 => {
            let q = S8Params::random(rng, work, oc, n_w, xd.len());
            case.zp = (q.zp_in, q.zp_out);
            let layer = q.layer(kind(q.dense()), xd, yd);
            case.scratch = conv2d::scratch_len_for(ks.set, &layer, elem);
            let x = work.i8s(xd.len(), |_| q.x(rng));
            let (p, (want, got, scratch)) = (q.args(), work.outputs_i8(yd.len(), case.scratch));
            conv2d::reference::conv2d_s8(x, xd, p, geom, yd, want, &mut []);
            (ks.conv2d_s8)(x, xd, p, geom, yd, got, scratch);
            compare_i8(case, want, got)
        }
        Elem::F32 if kernel == Kernel::Conv2dF16 => {
            conv_float::<f16>(ks, case, rng, work, (xd, geom, yd))
        }
        Elem::F32 => conv_float::<f32>(ks, case, rng, work, (xd, geom, yd)),
    }
}

fn linear(
    ks: &Kernels,
    kernel: Kernel,
    seed: u64,
    rng: &mut Rng,
    work: &mut Carve<'_>,
) -> Result<Case, Mismatch> {
    let elem = kernel.elem();
    // Input lengths around SIMD block sizes and LeNet's (400, 120, 84).
    let k = match rng.below(4) {
        0 => [400, 120, 84, 256, 64][rng.below(5)],
        1 => 1 + rng.below(16),
        _ => 1 + rng.below(600),
    };
    let out = 1 + rng.below(40);
    // f32 weights `[out, k]` stay ≤ 80 kB, inside WORK_BYTES (about 1 case in 10,000
    // drew k ≈ 600, out = 40: 96 kB of weights alone).
    let out = match elem {
        Elem::F32 => out.min(20_000 / k),
        Elem::I8 => out,
    };
    let (xd, yd) = (Dims { c: k, h: 1, w: 1 }, Dims { c: out, h: 1, w: 1 });
    let mut case = Case::flat(ks, kernel, seed, xd, yd);
    let kind = |params| LayerKind::Linear { params };
    match elem {
        Elem::I8 => {
            let q = S8Params::random(rng, work, out, out * k, k);
            case.zp = (q.zp_in, q.zp_out);
            let layer = q.layer(kind(q.dense()), xd, yd);
            case.scratch = fc::scratch_len_for(ks.set, &layer, elem);
            let x = work.i8s(k, |_| q.x(rng));
            let (p, (want, got, scratch)) = (q.args(), work.outputs_i8(out, case.scratch));
            fc::reference::fc_s8(x, p, want, &mut []);
            (ks.fc_s8)(x, p, got, scratch);
            compare_i8(case, want, got)
        }
        Elem::F32 if kernel == Kernel::FcF16 => linear_float::<f16>(ks, case, rng, work, k, out),
        Elem::F32 => linear_float::<f32>(ks, case, rng, work, k, out),
    }
}

/// The weight type of a float layer's case: f32, or f16 widened by the kernels.
pub(super) trait FloatWeight: bytemuck::Pod {
    fn from_f32(v: f32) -> Self;
    /// The layer's parameters as the model format holds them.
    fn dense<'w>(weight: &'w [Self], bias: &'w [f32]) -> Dense<'w>;
    /// The reference's convolution and `ks`'s.
    fn convs(ks: &Kernels) -> [ConvFloat<Self>; 2];
    /// The reference's fully connected layer and `ks`'s.
    fn fcs(ks: &Kernels) -> [FcFloat<Self>; 2];
}

type ConvFloat<W> = fn(&[f32], Dims, DenseF<'_, W>, ConvGeom, Dims, &mut [f32], &mut [u8]);
type FcFloat<W> = fn(&[f32], DenseF<'_, W>, &mut [f32], &mut [u8]);

impl FloatWeight for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }
    fn dense<'w>(weight: &'w [f32], bias: &'w [f32]) -> Dense<'w> {
        Dense::F32 { weight, bias }
    }
    fn convs(ks: &Kernels) -> [ConvFloat<f32>; 2] {
        [conv2d::reference::conv2d_f32, ks.conv2d_f32]
    }
    fn fcs(ks: &Kernels) -> [FcFloat<f32>; 2] {
        [fc::reference::fc_f32, ks.fc_f32]
    }
}

impl FloatWeight for f16 {
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
    fn dense<'w>(weight: &'w [f16], bias: &'w [f32]) -> Dense<'w> {
        Dense::F16 { weight, bias }
    }
    fn convs(ks: &Kernels) -> [ConvFloat<f16>; 2] {
        [conv2d::reference::conv2d_f16, ks.conv2d_f16]
    }
    fn fcs(ks: &Kernels) -> [FcFloat<f16>; 2] {
        [fc::reference::fc_f16, ks.fc_f16]
    }
}

/// A float convolution case with `W` weights: random weights, biases and input.
fn conv_float<W: FloatWeight>(
    ks: &Kernels,
    mut case: Case,
    rng: &mut Rng,
    work: &mut Carve<'_>,
    (xd, geom, yd): (Dims, ConvGeom, Dims),
) -> Result<Case, Mismatch> {
    let weight: &[W] = work.typed(yd.c * xd.c * geom.kh * geom.kw, |_| W::from_f32(rng.f32()));
    let bias = work.f32s(yd.c, |_| rng.f32());
    let params = W::dense(weight, bias);
    let layer = float_layer(LayerKind::Conv2d { geom, params }, xd, yd);
    case.scratch = conv2d::scratch_len_for(ks.set, &layer, Elem::F32);
    let x = work.f32s(xd.len(), |_| rng.f32());
    let (want, got, scratch) = work.outputs_f32(yd.len(), case.scratch);
    let p = DenseF { weight, bias };
    let [reference, variant] = W::convs(ks);
    reference(x, xd, p, geom, yd, want, &mut []);
    variant(x, xd, p, geom, yd, got, scratch);
    compare_f32(case, want, got)
}

/// A float fully connected case with `W` weights, `k` inputs and `out` outputs.
fn linear_float<W: FloatWeight>(
    ks: &Kernels,
    mut case: Case,
    rng: &mut Rng,
    work: &mut Carve<'_>,
    k: usize,
    out: usize,
) -> Result<Case, Mismatch> {
    let weight: &[W] = work.typed(out * k, |_| W::from_f32(rng.f32()));
    let bias = work.f32s(out, |_| rng.f32());
    let (xd, yd) = (Dims { c: k, h: 1, w: 1 }, Dims { c: out, h: 1, w: 1 });
    let params = W::dense(weight, bias);
    let layer = float_layer(LayerKind::Linear { params }, xd, yd);
    case.scratch = fc::scratch_len_for(ks.set, &layer, Elem::F32);
    let x = work.f32s(k, |_| rng.f32());
    let (want, got, scratch) = work.outputs_f32(out, case.scratch);
    let p = DenseF { weight, bias };
    let [reference, variant] = W::fcs(ks);
    reference(x, p, want, &mut []);
    variant(x, p, got, scratch);
    compare_f32(case, want, got)
}

/// Local contrast normalization: random maps (`jarrett`'s 8×28×28 and 16×10×10 among
/// them), odd windows 1 to 9 of positive weights (not normalized: the kernel must not
/// assume they sum to 1), floors `eps` from tiny to larger than every deviation.
fn lcn(
    ks: &Kernels,
    kernel: Kernel,
    seed: u64,
    rng: &mut Rng,
    work: &mut Carve<'_>,
) -> Result<Case, Mismatch> {
    let elem = kernel.elem();
    let (c, h, w) = match rng.below(4) {
        0 => [(8, 28, 28), (16, 10, 10)][rng.below(2)],
        _ => (1 + rng.below(12), 1 + rng.below(20), 1 + rng.below(30)),
    };
    let size = 1 + 2 * rng.below(5);
    let xd = Dims { c, h, w };
    let window = work.f32s(size * size, |_| rng.f32().abs() + 0.01);
    let eps = [1e-6, 0.1, 1.0, 100.0][rng.below(4)];
    let lcn = lcn::reference::Lcn { size, eps, window };
    let scratch_len = 2 * h * w;
    let case = Case {
        set: ks.set,
        kernel,
        seed,
        input: shape(xd),
        output: shape(xd),
        k: (size, size),
        stride: 1,
        pad: size / 2,
        zp: (0, 0),
        scratch: scratch_len * 4,
    };
    let (s_want, s_got, _) = work.outputs_f32(scratch_len, 0);
    match elem {
        Elem::I8 => {
            let q = |rng: &mut Rng| QParams {
                scale: 0.001 + rng.f32().abs() * 0.1,
                zero_point: rng.int(-128, 127),
            };
            let (qi, qo) = (q(rng), q(rng));
            let case = Case {
                zp: (qi.zero_point, qo.zero_point),
                ..case
            };
            let extremes = rng.below(4) == 0;
            let x = work.i8s(xd.len(), |_| rng.code(extremes));
            let (want, got, _) = work.outputs_i8(xd.len(), 0);
            lcn::reference::lcn_s8(x, qi, xd, lcn, s_want, qo, want);
            (ks.lcn_s8)(x, qi, xd, lcn, s_got, qo, got);
            compare_i8(case, want, got)
        }
        Elem::F32 => {
            let x = work.f32s(xd.len(), |_| rng.f32());
            let (want, got, _) = work.outputs_f32(xd.len(), 0);
            lcn::reference::lcn_f32(x, xd, lcn, s_want, want);
            (ks.lcn_f32)(x, xd, lcn, s_got, got);
            compare_f32(case, want, got)
        }
    }
}

/// A random 256-entry table over random codes, lengths around the 32- and 16-code vectors
/// (and LeNet-sized maps).
fn lut(ks: &Kernels, seed: u64, rng: &mut Rng, work: &mut Carve<'_>) -> Result<Case, Mismatch> {
    let n = match rng.below(4) {
        0 => [6272, 1600, 784, 32, 16][rng.below(5)],
        _ => rng.below(200),
    };
    let xd = Dims { c: n, h: 1, w: 1 };
    let case = Case::flat(ks, Kernel::LutS8, seed, xd, xd);
    let table = work.i8s(256, |_| rng.next_u64() as i8);
    let x = work.i8s(n, |_| rng.next_u64() as i8);
    let (want, got, _) = work.outputs_i8(n, 0);
    want.copy_from_slice(x);
    got.copy_from_slice(x);
    lut::reference::lut_s8(table, want);
    (ks.lut_s8)(table, got);
    compare_i8(case, want, got)
}

fn pool(
    ks: &Kernels,
    kernel: Kernel,
    seed: u64,
    rng: &mut Rng,
    work: &mut Carve<'_>,
) -> Result<Case, Mismatch> {
    let elem = kernel.elem();
    // Mostly LeNet's 2 × 2, stride 2, and small windows; one case in eight a large window
    // (up to 16 × 16, beyond the NEON int8 average's limit) at a stride up to 6.
    let (k, stride) = match rng.below(8) {
        0 => (5 + rng.below(12), 1 + rng.below(6)),
        1..4 => (2, 2),
        _ => (1 + rng.below(4), 1 + rng.below(4)),
    };
    let c = 1 + rng.below(12);
    // Rows wide enough that large strides still give a block of 8 outputs or more.
    let (h, w) = (k + rng.below(20), k + rng.below(20 + 8 * stride));
    let (xd, yd) = (
        Dims { c, h, w },
        Dims {
            c,
            h: (h - k) / stride + 1,
            w: (w - k) / stride + 1,
        },
    );
    let mut case = Case {
        set: ks.set,
        kernel,
        seed,
        input: shape(xd),
        output: shape(yd),
        k: (k, k),
        stride,
        pad: 0,
        zp: (0, 0),
        scratch: 0,
    };
    let q = QParams {
        scale: 1.0,
        zero_point: 0,
    };
    let kind = if matches!(kernel, Kernel::MaxPoolS8 | Kernel::MaxPoolF32) {
        LayerKind::MaxPool2d { k, stride }
    } else {
        LayerKind::AvgPool2d { k, stride }
    };
    let layer = Layer {
        kind,
        input: shape(xd),
        output: shape(yd),
        in_quant: (elem == Elem::I8).then_some(q),
        out_quant: (elem == Elem::I8).then_some(q),
    };
    let max = matches!(kind, LayerKind::MaxPool2d { .. });
    case.scratch = if max {
        maxpool::scratch_len(&layer, elem)
    } else {
        avgpool::scratch_len(&layer, elem)
    };
    match elem {
        Elem::I8 => {
            let extremes = rng.below(4) == 0;
            let x = work.i8s(xd.len(), |_| rng.code(extremes));
            let (want, got, scratch) = work.outputs_i8(yd.len(), case.scratch);
            if max {
                maxpool::reference::maxpool_s8(x, xd, k, stride, yd, want, &mut []);
                (ks.maxpool_s8)(x, xd, k, stride, yd, got, scratch);
            } else {
                avgpool::reference::avgpool_s8(x, xd, k, stride, yd, want, &mut []);
                (ks.avgpool_s8)(x, xd, k, stride, yd, got, scratch);
            }
            compare_i8(case, want, got)
        }
        Elem::F32 => {
            let x = work.f32s(xd.len(), |_| rng.f32());
            let (want, got, scratch) = work.outputs_f32(yd.len(), case.scratch);
            if max {
                maxpool::reference::maxpool_f32(x, xd, k, stride, yd, want, &mut []);
                (ks.maxpool_f32)(x, xd, k, stride, yd, got, scratch);
            } else {
                avgpool::reference::avgpool_f32(x, xd, k, stride, yd, want, &mut []);
                (ks.avgpool_f32)(x, xd, k, stride, yd, got, scratch);
            }
            compare_f32(case, want, got)
        }
    }
}

/// Random int8 convolution / linear parameters, drawn over the whole legal ranges: weights
/// in `[-127, 127]` (sometimes all at the extremes), any zero points, multipliers in
/// `[2^30, 2^31)`, shifts from `-31` to `30` (mostly the realistic `-14..=0`).
///
/// One case in four is *exact* instead: requantization is the identity (multiplier `2^30`,
/// shift 1), weights in `[-2, 2]`, inputs within 3 of the zero point and small biases, so
/// that the output code is the accumulator itself and an accumulator off by one (a wrong
/// zero-point correction, a lost tap) changes the output; the scaled cases hide such
/// errors in the requantization's rounding.
struct S8Params<'w> {
    weight: &'w [i8],
    bias: &'w [i32],
    multiplier: &'w [i32],
    shift: &'w [i32],
    zp_in: i32,
    zp_out: i32,
    extremes: bool,
    exact: bool,
}

impl<'w> S8Params<'w> {
    fn random(rng: &mut Rng, work: &mut Carve<'w>, oc: usize, n_w: usize, taps: usize) -> Self {
        let exact = rng.below(4) == 0;
        let extremes = !exact && rng.below(3) == 0;
        let weight = work.i8s(n_w, |_| {
            if exact {
                rng.int(-2, 2) as i8
            } else {
                rng.code(extremes).max(-127)
            }
        });
        // Biases of the size a trained layer has (|acc| ≲ taps · 127 · 128), sometimes huge.
        let span = if exact {
            20
        } else if rng.below(8) == 0 {
            i32::MAX / 2
        } else {
            (taps as i32).saturating_mul(4096)
        };
        let bias = work.i32s(oc, |_| rng.int(-span, span));
        let multiplier = work.i32s(oc, |_| {
            if exact {
                1 << 30
            } else {
                rng.int(1 << 30, i32::MAX)
            }
        });
        let shift = work.i32s(oc, |_| {
            if exact {
                1
            } else if rng.below(8) == 0 {
                rng.int(-31, 30)
            } else {
                rng.int(-14, 0)
            }
        });
        let zp_in = if rng.below(4) == 0 {
            [-128, 127, 0][rng.below(3)]
        } else {
            rng.int(-128, 127)
        };
        let zp_out = if exact {
            rng.int(-20, 20)
        } else {
            rng.int(-128, 127)
        };
        S8Params {
            weight,
            bias,
            multiplier,
            shift,
            zp_in,
            zp_out,
            extremes,
            exact,
        }
    }

    /// An input code: uniform, only `-128`/`127` when this case tests extremes, or within 3
    /// of the zero point when it is exact.
    fn x(&self, rng: &mut Rng) -> i8 {
        if self.exact {
            (self.zp_in + rng.int(-3, 3)).clamp(-128, 127) as i8
        } else {
            rng.code(self.extremes)
        }
    }

    fn dense(&self) -> Dense<'w> {
        Dense::I8 {
            weight: self.weight,
            bias: self.bias,
            weight_scale: &[],
            multiplier: self.multiplier,
            shift: self.shift,
        }
    }

    fn args(&self) -> DenseS8<'w> {
        DenseS8 {
            weight: self.weight,
            bias: self.bias,
            multiplier: self.multiplier,
            shift: self.shift,
            zp_in: self.zp_in,
            zp_out: self.zp_out,
        }
    }

    fn layer<'l>(&self, kind: LayerKind<'l>, xd: Dims, yd: Dims) -> Layer<'l> {
        let q = |zero_point| {
            Some(QParams {
                scale: 1.0,
                zero_point,
            })
        };
        Layer {
            kind,
            input: shape(xd),
            output: shape(yd),
            in_quant: q(self.zp_in),
            out_quant: q(self.zp_out),
        }
    }
}

fn float_layer(kind: LayerKind<'_>, xd: Dims, yd: Dims) -> Layer<'_> {
    Layer {
        kind,
        input: shape(xd),
        output: shape(yd),
        in_quant: None,
        out_quant: None,
    }
}

fn shape(d: Dims) -> Shape {
    Shape::new(d.c as u32, d.h as u32, d.w as u32)
}

fn compare_i8(case: Case, want: &[i8], got: &[i8]) -> Result<Case, Mismatch> {
    match want.iter().zip(got).position(|(a, b)| a != b) {
        None => Ok(case),
        Some(index) => Err(Mismatch {
            case,
            index,
            expected: want[index] as u8 as u32,
            got: got[index] as u8 as u32,
        }),
    }
}

fn compare_f32(case: Case, want: &[f32], got: &[f32]) -> Result<Case, Mismatch> {
    match want
        .iter()
        .zip(got)
        .position(|(a, b)| a.to_bits() != b.to_bits())
    {
        None => Ok(case),
        Some(index) => Err(Mismatch {
            case,
            index,
            expected: want[index].to_bits(),
            got: got[index].to_bits(),
        }),
    }
}

/// Hands out 16-byte aligned, exactly sized typed slices of the work buffer.
struct Carve<'w> {
    rest: &'w mut [u8],
}

impl<'w> Carve<'w> {
    fn new(work: &'w mut [u8]) -> Self {
        let skip = work.as_ptr().align_offset(16).min(work.len());
        Carve {
            rest: &mut work[skip..],
        }
    }

    /// `n` bytes, then skip to the next 16-byte boundary.
    fn bytes(&mut self, n: usize) -> &'w mut [u8] {
        let rest = core::mem::take(&mut self.rest);
        assert!(n <= rest.len(), "check: case exceeds WORK_BYTES");
        let (head, tail) = rest.split_at_mut(n);
        let pad = n.next_multiple_of(16).min(n + tail.len()) - n;
        self.rest = &mut tail[pad..];
        head
    }

    fn typed<T: bytemuck::Pod>(&mut self, n: usize, mut f: impl FnMut(usize) -> T) -> &'w mut [T] {
        let t: &mut [T] = bytemuck::cast_slice_mut(self.bytes(n * core::mem::size_of::<T>()));
        for (i, v) in t.iter_mut().enumerate() {
            *v = f(i);
        }
        t
    }

    fn i8s(&mut self, n: usize, f: impl FnMut(usize) -> i8) -> &'w [i8] {
        self.typed(n, f)
    }

    fn i32s(&mut self, n: usize, f: impl FnMut(usize) -> i32) -> &'w [i32] {
        self.typed(n, f)
    }

    fn f32s(&mut self, n: usize, f: impl FnMut(usize) -> f32) -> &'w [f32] {
        self.typed(n, f)
    }

    /// The reference's and the variant's outputs (pre-filled with different values, so an
    /// element neither writes is a mismatch) and the variant's scratch (filled with junk).
    #[allow(clippy::type_complexity)]
    fn outputs<T: bytemuck::Pod>(
        &mut self,
        n: usize,
        scratch: usize,
        fill: (T, T),
    ) -> (&'w mut [T], &'w mut [T], &'w mut [u8]) {
        let want = self.typed(n, |_| fill.0);
        let got = self.typed(n, |_| fill.1);
        let scratch = self.typed(scratch, |i| i as u8 ^ 0xa5);
        (want, got, scratch)
    }

    fn outputs_i8(
        &mut self,
        n: usize,
        scratch: usize,
    ) -> (&'w mut [i8], &'w mut [i8], &'w mut [u8]) {
        self.outputs(n, scratch, (0x55, -0x56))
    }

    fn outputs_f32(
        &mut self,
        n: usize,
        scratch: usize,
    ) -> (&'w mut [f32], &'w mut [f32], &'w mut [u8]) {
        self.outputs(n, scratch, (f32::NAN, -f32::NAN))
    }
}

/// SplitMix64: a small, seeded generator, the same on every target.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n ≥ 1`).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn int(&mut self, lo: i32, hi: i32) -> i32 {
        (lo as i64 + (self.next_u64() % (hi as i64 - lo as i64 + 1) as u64) as i64) as i32
    }

    /// Uniform in `[-1, 1)`.
    fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// An int8 code: uniform, or only `-128` / `127` when `extremes`.
    fn code(&mut self, extremes: bool) -> i8 {
        match (extremes, self.next_u64() & 1) {
            (true, 0) => -128,
            (true, _) => 127,
            (false, _) => self.next_u64() as i8,
        }
    }
}
