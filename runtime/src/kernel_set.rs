//! Which kernels a build has and which one a plan runs.
//!
//! A build compiles the portable reference kernels and the variants of its architecture
//! (`build.rs`): AVX2 on x86-64, NEON on aarch64, DSP or Helium on Cortex-M. Which of them a
//! [`crate::Plan`] runs is chosen when it is made: with the `std` feature, by asking the CPU
//! ([`KernelSet::detect`]), so one x86-64 binary runs AVX2 wherever the CPU has it; without
//! it (firmware), the set the target guarantees at compile time, [`KernelSet::COMPILED`].

/// A set of kernel variants, one per instruction set. Sets other than the ones this build
/// runs matter to a host that prepares firmware for a device, since their scratch needs
/// (and so the arena) differ: [`crate::Plan::arena_bytes_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KernelSet {
    /// The portable, scalar kernels (`kernels/<op>/reference.rs`): the specification.
    Reference,
    /// ARMv7E-M / Armv8-M DSP extension (Cortex-M4, M7, M33): `dsp.rs`.
    Dsp,
    /// Armv8.1-M Helium (Cortex-M55, M85): `mve.rs`.
    Mve,
    /// aarch64 Advanced SIMD: `neon.rs`.
    Neon,
    /// aarch64 Advanced SIMD with the dot-product extension (Armv8.2-A `dotprod`: Cortex-A55,
    /// A76 and later, Apple M1 and later): the NEON set, with int8 convolution and fully
    /// connected layers on `SDOT`.
    NeonDot,
    /// x86-64 AVX2 and F16C: `x86.rs`.
    Avx2,
    /// x86-64 AVX2 with AVX-512 VNNI (and VL, BW): the AVX2 set, with int8 convolution and
    /// fully connected layers on `vpdpbusd` (Ice Lake and later, Zen 4 and later).
    Avx2Vnni,
}

impl KernelSet {
    /// Every kernel set.
    pub const ALL: [KernelSet; 7] = [
        KernelSet::Reference,
        KernelSet::Dsp,
        KernelSet::Mve,
        KernelSet::Neon,
        KernelSet::NeonDot,
        KernelSet::Avx2,
        KernelSet::Avx2Vnni,
    ];

    /// The set a plan runs without run-time detection: the fastest one the target
    /// guarantees at compile time (on x86-64, `"avx2"` only where the target has AVX2 and
    /// F16C, e.g. `-C target-cpu=x86-64-v3`, and `"avx2-vnni"` where it also has
    /// `avx512vnni`, `avx512vl` and `avx512bw`; on aarch64 `"neon-dotprod"` where the target
    /// has `dotprod`, e.g. `-C target-cpu=cortex-a76`).
    pub const COMPILED: KernelSet = if cfg!(all(kestrel_isa = "neon", target_feature = "dotprod")) {
        KernelSet::NeonDot
    } else if cfg!(all(
        kestrel_isa = "avx2",
        target_feature = "avx2",
        target_feature = "f16c",
        target_feature = "avx512vnni",
        target_feature = "avx512vl",
        target_feature = "avx512bw"
    )) {
        KernelSet::Avx2Vnni
    } else if cfg!(all(
        kestrel_isa = "avx2",
        target_feature = "avx2",
        target_feature = "f16c"
    )) {
        KernelSet::Avx2
    } else if cfg!(kestrel_isa = "avx2") {
        KernelSet::Reference
    } else {
        KernelSet::VARIANT
    };

    /// The variant files this build compiles (besides the reference): what the plan runs
    /// where the CPU allows.
    pub(crate) const VARIANT: KernelSet = if cfg!(kestrel_isa = "avx2") {
        KernelSet::Avx2
    } else if cfg!(kestrel_isa = "neon") {
        KernelSet::Neon
    } else if cfg!(kestrel_isa = "dsp") {
        KernelSet::Dsp
    } else if cfg!(kestrel_isa = "mve") {
        KernelSet::Mve
    } else {
        KernelSet::Reference
    };

    /// Whether this build has `self`'s kernels and this CPU runs them: the reference
    /// always; a variant where the target guarantees it (up to [`KernelSet::COMPILED`])
    /// or, with the `std` feature, where the CPU reports its features (x86-64: AVX2 and
    /// F16C; for `avx2-vnni` also AVX-512 VNNI, VL and BW; aarch64: `dotprod` for
    /// `neon-dotprod`).
    pub fn runs_here(self) -> bool {
        if self == KernelSet::Reference || self == KernelSet::COMPILED {
            return true;
        }
        // A target with the VNNI set has the AVX2 one.
        if self == KernelSet::Avx2 && KernelSet::COMPILED == KernelSet::Avx2Vnni {
            return true;
        }
        // NEON is baseline on aarch64 (a target with `dotprod` has it too).
        if self == KernelSet::Neon && cfg!(kestrel_isa = "neon") {
            return true;
        }
        // Otherwise only the files this build compiles, if the CPU says so (NEON is
        // baseline on aarch64, so `VARIANT` is `COMPILED` there).
        let built = self == KernelSet::VARIANT
            || (cfg!(kestrel_isa = "avx2") && self == KernelSet::Avx2Vnni)
            || (cfg!(kestrel_isa = "neon") && self == KernelSet::NeonDot);
        if !built {
            return false;
        }
        #[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
        {
            use std::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("f16c");
            match self {
                KernelSet::Avx2 => return avx2,
                KernelSet::Avx2Vnni => {
                    return avx2 && has!("avx512vnni") && has!("avx512vl") && has!("avx512bw")
                }
                _ => {}
            }
        }
        #[cfg(all(any(feature = "std", test), target_arch = "aarch64"))]
        if self == KernelSet::NeonDot {
            return std::arch::is_aarch64_feature_detected!("dotprod");
        }
        false
    }

    /// The fastest set this build has and this CPU runs (with `std`: asked of the CPU;
    /// without: [`KernelSet::COMPILED`]).
    pub fn detect() -> KernelSet {
        [KernelSet::Avx2Vnni, KernelSet::NeonDot, KernelSet::VARIANT]
            .into_iter()
            .find(|s| s.runs_here())
            .unwrap_or(KernelSet::COMPILED)
    }

    /// Its name, as [`crate::IMPL`] spells it: `"reference"`, `"dsp"`, `"mve"`, `"neon"`,
    /// `"neon-dotprod"`, `"avx2"`, `"avx2-vnni"`.
    pub const fn name(self) -> &'static str {
        match self {
            KernelSet::Reference => "reference",
            KernelSet::Dsp => "dsp",
            KernelSet::Mve => "mve",
            KernelSet::Neon => "neon",
            KernelSet::NeonDot => "neon-dotprod",
            KernelSet::Avx2 => "avx2",
            KernelSet::Avx2Vnni => "avx2-vnni",
        }
    }

    /// The set a build of `target` with these settings runs without run-time detection
    /// ([`KernelSet::COMPILED`], without the `force-reference` feature): for a host build
    /// script that prepares firmware, with
    /// cargo's `TARGET`, `CARGO_CFG_TARGET_ARCH`, `CARGO_CFG_TARGET_FEATURE` and
    /// `CARGO_ENCODED_RUSTFLAGS`. The same rule as this crate's own `build.rs`.
    ///
    /// ```
    /// use kestrel_runtime::KernelSet;
    /// let m55 = KernelSet::for_target("thumbv8m.main-none-eabihf", "arm", "", "-Ctarget-cpu=cortex-m55");
    /// assert_eq!(m55, KernelSet::Mve);
    /// assert_eq!(KernelSet::for_target("thumbv7em-none-eabihf", "arm", "", ""), KernelSet::Dsp);
    /// assert_eq!(KernelSet::for_target("x86_64-unknown-linux-gnu", "x86_64", "sse2", ""), KernelSet::Reference);
    /// let a76 = KernelSet::for_target("aarch64-unknown-linux-gnu", "aarch64", "neon,dotprod", "");
    /// assert_eq!(a76, KernelSet::NeonDot);
    /// assert_eq!(KernelSet::for_target("aarch64-unknown-linux-gnu", "aarch64", "neon", ""), KernelSet::Neon);
    /// ```
    pub fn for_target(
        target: &str,
        arch: &str,
        target_features: &str,
        encoded_rustflags: &str,
    ) -> KernelSet {
        let name = select_kernel_set(target, arch, target_features, encoded_rustflags);
        KernelSet::from_name(name).unwrap_or(KernelSet::Reference)
    }

    /// The set named `name` (see [`KernelSet::name`]).
    pub fn from_name(name: &str) -> Option<KernelSet> {
        KernelSet::ALL.into_iter().find(|s| s.name() == name)
    }
}

include!("../select.rs");
