//! Kernel sets as tables: one entry per kernel that has per-instruction-set variants, one
//! table per set ([`Kernels::REFERENCE`], and [`Kernels::VARIANT`] for the variant files
//! compiled into this build). A plan holds the table of the set it runs
//! ([`crate::Plan::kernel_set`]); the op `dispatch` functions call through it, and
//! `crate::check` proves every table this CPU can run equal to the reference.
//!
//! **Which table runs.** With the `std` feature, [`Kernels::best`] asks the CPU
//! ([`KernelSet::detect`]): one binary runs AVX2 where the CPU has it and the reference
//! elsewhere. Without `std` (firmware) it is the set the target guarantees at compile time,
//! [`KernelSet::COMPILED`], and the calls go through a constant table, so they are direct
//! calls as before.
//!
//! **Safety.** The x86-64 variants, and the aarch64 `SDOT` ones (`*_dot`), are safe
//! functions that enter `#[target_feature]` code: they may only run where the CPU has the
//! set's features. They are reached only through [`Kernels::VARIANT`] and
//! `Kernels::AVX2_VNNI` (x86-64), or `Kernels::NEON_DOT` (aarch64), and [`Kernels::get`]
//! hands a table out only for a set that [`KernelSet::runs_here`] (detected at run time, or
//! guaranteed by the target).

use half::f16;
use kestrel_format::{ConvGeom, QParams};

use super::lcn::{self, reference::Lcn};
#[cfg(feature = "encoders")]
use super::lista::{self, ListaS8};
use super::{avgpool, conv2d, fc, lut, maxpool, quantize, DenseF, DenseS8, Dims};
use crate::KernelSet;

/// f32 convolution: `(x, xd, params, geom, yd, y, scratch)`.
pub(crate) type ConvF32 = fn(&[f32], Dims, DenseF<'_, f32>, ConvGeom, Dims, &mut [f32], &mut [u8]);
/// f16-weight convolution.
pub(crate) type ConvF16 = fn(&[f32], Dims, DenseF<'_, f16>, ConvGeom, Dims, &mut [f32], &mut [u8]);
/// int8 convolution.
pub(crate) type ConvS8 = fn(&[i8], Dims, DenseS8<'_>, ConvGeom, Dims, &mut [i8], &mut [u8]);
/// f32 fully connected: `(x, params, y, scratch)`.
pub(crate) type FcF32 = fn(&[f32], DenseF<'_, f32>, &mut [f32], &mut [u8]);
/// f16-weight fully connected.
pub(crate) type FcF16 = fn(&[f32], DenseF<'_, f16>, &mut [f32], &mut [u8]);
/// int8 fully connected.
pub(crate) type FcS8 = fn(&[i8], DenseS8<'_>, &mut [i8], &mut [u8]);
/// f32 local contrast normalization: `(x, xd, lcn, scratch, y)`.
pub(crate) type LcnF32 = fn(&[f32], Dims, Lcn<'_>, &mut [f32], &mut [f32]);
/// int8 local contrast normalization: `(x, qi, xd, lcn, scratch, qo, y)`.
pub(crate) type LcnS8 = fn(&[i8], QParams, Dims, Lcn<'_>, &mut [f32], QParams, &mut [i8]);
/// Pooling: `(x, xd, k, stride, yd, y, scratch)`.
pub(crate) type Pool<X> = fn(&[X], Dims, usize, usize, Dims, &mut [X], &mut [u8]);
/// A float LISTA step: `(S, b, θ, h_in, h)`.
#[cfg(feature = "encoders")]
pub(crate) type StepF<W> = fn(&[W], &[f32], &[f32], &[f32], &mut [f32]);

/// An int8 LISTA step: `(p, b, h_in, acc, h)`.
#[cfg(feature = "encoders")]
pub(crate) type StepS8 = fn(&ListaS8<'_>, &[i8], &[i8], &mut [i32], &mut [i8]);

/// One kernel set: a function per kernel, each with the signature of its `reference.rs`.
/// A build without a precision's feature has none of that precision's entries (so firmware
/// links none of those kernels), except for the kernel checks, which need them all.
#[derive(Clone, Copy)]
pub(crate) struct Kernels {
    /// The set these functions belong to.
    #[cfg_attr(
        not(any(feature = "std", test, feature = "kernel-check")),
        allow(dead_code)
    )]
    pub set: KernelSet,
    #[cfg(any(feature = "f32", feature = "kernel-check", test))]
    pub conv2d_f32: ConvF32,
    #[cfg(any(feature = "f32", feature = "kernel-check", test))]
    pub conv2d_f16: ConvF16,
    #[cfg(any(feature = "int8", feature = "kernel-check", test))]
    pub conv2d_s8: ConvS8,
    #[cfg(any(feature = "f32", feature = "kernel-check", test))]
    pub fc_f32: FcF32,
    #[cfg(any(feature = "f32", feature = "kernel-check", test))]
    pub fc_f16: FcF16,
    #[cfg(any(feature = "int8", feature = "kernel-check", test))]
    pub fc_s8: FcS8,
    #[cfg(any(feature = "f32", feature = "kernel-check", test))]
    pub maxpool_f32: Pool<f32>,
    #[cfg(any(feature = "int8", feature = "kernel-check", test))]
    pub maxpool_s8: Pool<i8>,
    #[cfg(any(feature = "f32", feature = "kernel-check", test))]
    pub avgpool_f32: Pool<f32>,
    #[cfg(any(feature = "int8", feature = "kernel-check", test))]
    pub avgpool_s8: Pool<i8>,
    #[cfg(any(feature = "f32", feature = "kernel-check", test))]
    pub lcn_f32: LcnF32,
    #[cfg(any(feature = "int8", feature = "kernel-check", test))]
    pub lcn_s8: LcnS8,
    /// int8 256-entry table lookup (tanh, abs), in place: `(table, xy)`.
    #[cfg(any(feature = "int8", feature = "kernel-check", test))]
    pub lut_s8: fn(&[i8], &mut [i8]),
    /// Input stage: pixels to f32, `(p, mean, std, y)`.
    #[cfg(any(feature = "f32", feature = "kernel-check", test))]
    pub pixels_f32: fn(&[u8], f32, f32, &mut [f32]),
    /// Input stage: normalized f32 copied in.
    #[cfg(any(feature = "f32", feature = "kernel-check", test))]
    pub copy_f32: fn(&[f32], &mut [f32]),
    /// Input stage: pixels to int8 codes, `(p, mean, std, q, y)`.
    #[cfg(any(feature = "int8", feature = "kernel-check", test))]
    pub pixels_s8: fn(&[u8], f32, f32, QParams, &mut [i8]),
    /// Input stage: normalized f32 to int8 codes.
    #[cfg(any(feature = "int8", feature = "kernel-check", test))]
    pub quantize_s8: fn(&[f32], QParams, &mut [i8]),
    /// Output stage: int8 codes to f32.
    #[cfg(any(feature = "int8", feature = "kernel-check", test))]
    pub dequantize_s8: fn(&[i8], QParams, &mut [f32]),
    /// `(b, θ, h)`.
    #[cfg(all(
        feature = "encoders",
        any(feature = "f32", feature = "kernel-check", test)
    ))]
    pub lista_first_f32: fn(&[f32], &[f32], &mut [f32]),
    #[cfg(all(
        feature = "encoders",
        any(feature = "f32", feature = "kernel-check", test)
    ))]
    pub lista_step_f32: StepF<f32>,
    #[cfg(all(
        feature = "encoders",
        any(feature = "f32", feature = "kernel-check", test)
    ))]
    pub lista_step_f16: StepF<f16>,
    /// `(p, b, h)`.
    #[cfg(all(
        feature = "encoders",
        any(feature = "int8", feature = "kernel-check", test)
    ))]
    pub lista_first_s8: fn(&ListaS8<'_>, &[i8], &mut [i8]),
    #[cfg(all(
        feature = "encoders",
        any(feature = "int8", feature = "kernel-check", test)
    ))]
    pub lista_step_s8: StepS8,
}

/// The table of the functions in module `$m` of every op folder (`reference`, or `isa`:
/// the variant files this build compiles, which re-export the reference for what they do
/// not speed up).
macro_rules! table {
    ($set:expr, $m:ident) => {
        Kernels {
            set: $set,
            #[cfg(any(feature = "f32", feature = "kernel-check", test))]
            conv2d_f32: conv2d::$m::conv2d_f32,
            #[cfg(any(feature = "f32", feature = "kernel-check", test))]
            conv2d_f16: conv2d::$m::conv2d_f16,
            #[cfg(any(feature = "int8", feature = "kernel-check", test))]
            conv2d_s8: conv2d::$m::conv2d_s8,
            #[cfg(any(feature = "f32", feature = "kernel-check", test))]
            fc_f32: fc::$m::fc_f32,
            #[cfg(any(feature = "f32", feature = "kernel-check", test))]
            fc_f16: fc::$m::fc_f16,
            #[cfg(any(feature = "int8", feature = "kernel-check", test))]
            fc_s8: fc::$m::fc_s8,
            #[cfg(any(feature = "f32", feature = "kernel-check", test))]
            maxpool_f32: maxpool::$m::maxpool_f32,
            #[cfg(any(feature = "int8", feature = "kernel-check", test))]
            maxpool_s8: maxpool::$m::maxpool_s8,
            #[cfg(any(feature = "f32", feature = "kernel-check", test))]
            avgpool_f32: avgpool::$m::avgpool_f32,
            #[cfg(any(feature = "int8", feature = "kernel-check", test))]
            avgpool_s8: avgpool::$m::avgpool_s8,
            #[cfg(any(feature = "f32", feature = "kernel-check", test))]
            lcn_f32: lcn::$m::lcn_f32,
            #[cfg(any(feature = "int8", feature = "kernel-check", test))]
            lcn_s8: lcn::$m::lcn_s8,
            #[cfg(any(feature = "int8", feature = "kernel-check", test))]
            lut_s8: lut::$m::lut_s8,
            #[cfg(any(feature = "f32", feature = "kernel-check", test))]
            pixels_f32: quantize::$m::pixels_f32,
            #[cfg(any(feature = "f32", feature = "kernel-check", test))]
            copy_f32: quantize::$m::copy_f32,
            #[cfg(any(feature = "int8", feature = "kernel-check", test))]
            pixels_s8: quantize::$m::pixels_s8,
            #[cfg(any(feature = "int8", feature = "kernel-check", test))]
            quantize_s8: quantize::$m::quantize_s8,
            #[cfg(any(feature = "int8", feature = "kernel-check", test))]
            dequantize_s8: quantize::$m::dequantize_s8,
            #[cfg(all(
                feature = "encoders",
                any(feature = "f32", feature = "kernel-check", test)
            ))]
            lista_first_f32: lista::$m::lista_first_f32,
            #[cfg(all(
                feature = "encoders",
                any(feature = "f32", feature = "kernel-check", test)
            ))]
            lista_step_f32: lista::$m::lista_step_f32,
            #[cfg(all(
                feature = "encoders",
                any(feature = "f32", feature = "kernel-check", test)
            ))]
            lista_step_f16: lista::$m::lista_step_f16,
            #[cfg(all(
                feature = "encoders",
                any(feature = "int8", feature = "kernel-check", test)
            ))]
            lista_first_s8: lista::$m::lista_first_s8,
            #[cfg(all(
                feature = "encoders",
                any(feature = "int8", feature = "kernel-check", test)
            ))]
            lista_step_s8: lista::$m::lista_step_s8,
        }
    };
}

impl core::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Kernels({})", self.set.name())
    }
}

impl Kernels {
    /// The portable reference kernels: the specification.
    pub(crate) const REFERENCE: Kernels = table!(KernelSet::Reference, reference);

    /// The variant files this build compiles (`avx2` on x86-64, `neon` on aarch64, `dsp` or
    /// `mve` on Cortex-M; the reference elsewhere).
    pub(crate) const VARIANT: Kernels = table!(KernelSet::VARIANT, isa);

    /// The AVX2 set with the AVX-512 VNNI int8 convolution and fully connected kernels.
    #[cfg(kestrel_isa = "avx2")]
    pub(crate) const AVX2_VNNI: Kernels = Kernels {
        set: KernelSet::Avx2Vnni,
        #[cfg(any(feature = "int8", feature = "kernel-check", test))]
        conv2d_s8: conv2d::x86::conv2d_s8_vnni,
        #[cfg(any(feature = "int8", feature = "kernel-check", test))]
        fc_s8: fc::x86::fc_s8_vnni,
        ..Self::VARIANT
    };

    /// The NEON set with the `SDOT` int8 convolution and fully connected kernels.
    #[cfg(kestrel_isa = "neon")]
    pub(crate) const NEON_DOT: Kernels = Kernels {
        set: KernelSet::NeonDot,
        #[cfg(any(feature = "int8", feature = "kernel-check", test))]
        conv2d_s8: conv2d::neon::conv2d_s8_dot,
        #[cfg(any(feature = "int8", feature = "kernel-check", test))]
        fc_s8: fc::neon::fc_s8_dot,
        ..Self::VARIANT
    };

    /// The table of [`KernelSet::COMPILED`], the set the target guarantees.
    pub(crate) const COMPILED: Kernels = match KernelSet::COMPILED {
        KernelSet::Reference => Self::REFERENCE,
        #[cfg(kestrel_isa = "avx2")]
        KernelSet::Avx2Vnni => Self::AVX2_VNNI,
        #[cfg(kestrel_isa = "neon")]
        KernelSet::NeonDot => Self::NEON_DOT,
        _ => Self::VARIANT,
    };

    /// The table of `set`, where this build has it and this CPU runs it. Without `std`
    /// only [`KernelSet::COMPILED`]'s: firmware links one set's kernels.
    pub(crate) fn get(set: KernelSet) -> Option<&'static Kernels> {
        if !set.runs_here() {
            None
        } else if cfg!(not(any(feature = "std", test))) {
            (set == KernelSet::COMPILED).then_some(&Self::COMPILED)
        } else if set == KernelSet::Reference {
            Some(&Self::REFERENCE)
        } else if set == KernelSet::VARIANT {
            Some(&Self::VARIANT)
        } else {
            #[cfg(kestrel_isa = "avx2")]
            if set == KernelSet::Avx2Vnni {
                return Some(&Self::AVX2_VNNI);
            }
            #[cfg(kestrel_isa = "neon")]
            if set == KernelSet::NeonDot {
                return Some(&Self::NEON_DOT);
            }
            None
        }
    }

    /// The fastest table this CPU runs: detected with `std`, else the target's
    /// [`KernelSet::COMPILED`].
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) fn best() -> &'static Kernels {
        Self::get(KernelSet::detect()).unwrap_or(&Self::REFERENCE)
    }

    /// What runs when the caller does not choose: [`Kernels::best`] with `std`; without
    /// it the constant table of the target's set (so firmware makes direct calls).
    #[inline(always)]
    pub(crate) fn default_table() -> &'static Kernels {
        #[cfg(feature = "std")]
        {
            Self::best()
        }
        #[cfg(not(feature = "std"))]
        {
            &Self::COMPILED
        }
    }
}
