//! Which kernels a build runs: chosen at compile time from the target (see `build.rs`).

/// A set of kernel variants, one per instruction set. Every build compiles exactly one,
/// [`KernelSet::COMPILED`]; the others matter to a host that prepares firmware for a
/// device, since their scratch needs (and so the arena) differ:
/// [`crate::Plan::arena_bytes_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KernelSet {
    /// The portable, scalar kernels (`kernels/<op>/reference.rs`): the specification.
    Reference,
    /// ARMv7E-M / Armv8-M DSP extension (Cortex-M4, M7, M33): `dsp.rs`.
    Dsp,
    /// Armv8.1-M Helium (Cortex-M55, M85): `mve.rs`.
    Mve,
    /// aarch64 Advanced SIMD, with the dot-product instructions where the target has them:
    /// `neon.rs`.
    Neon,
    /// x86-64 AVX2 (with AVX-512 VNNI paths where the target has it): `x86.rs`.
    Avx2,
}

impl KernelSet {
    /// Every kernel set.
    pub const ALL: [KernelSet; 5] = [
        KernelSet::Reference,
        KernelSet::Dsp,
        KernelSet::Mve,
        KernelSet::Neon,
        KernelSet::Avx2,
    ];

    /// The set this build runs.
    #[cfg(kestrel_isa = "reference")]
    pub const COMPILED: KernelSet = KernelSet::Reference;
    /// The set this build runs.
    #[cfg(kestrel_isa = "dsp")]
    pub const COMPILED: KernelSet = KernelSet::Dsp;
    /// The set this build runs.
    #[cfg(kestrel_isa = "mve")]
    pub const COMPILED: KernelSet = KernelSet::Mve;
    /// The set this build runs.
    #[cfg(kestrel_isa = "neon")]
    pub const COMPILED: KernelSet = KernelSet::Neon;
    /// The set this build runs.
    #[cfg(kestrel_isa = "avx2")]
    pub const COMPILED: KernelSet = KernelSet::Avx2;

    /// Its name, as [`crate::IMPL`] spells it: `"reference"`, `"dsp"`, `"mve"`, `"neon"`,
    /// `"avx2"`.
    pub const fn name(self) -> &'static str {
        match self {
            KernelSet::Reference => "reference",
            KernelSet::Dsp => "dsp",
            KernelSet::Mve => "mve",
            KernelSet::Neon => "neon",
            KernelSet::Avx2 => "avx2",
        }
    }

    /// The set a build of `target` with these settings compiles (without the
    /// `force-reference` feature): for a host build script that prepares firmware, with
    /// cargo's `TARGET`, `CARGO_CFG_TARGET_ARCH`, `CARGO_CFG_TARGET_FEATURE` and
    /// `CARGO_ENCODED_RUSTFLAGS`. The same rule as this crate's own `build.rs`.
    ///
    /// ```
    /// use kestrel_runtime::KernelSet;
    /// let m55 = KernelSet::for_target("thumbv8m.main-none-eabihf", "arm", "", "-Ctarget-cpu=cortex-m55");
    /// assert_eq!(m55, KernelSet::Mve);
    /// assert_eq!(KernelSet::for_target("thumbv7em-none-eabihf", "arm", "", ""), KernelSet::Dsp);
    /// assert_eq!(KernelSet::for_target("x86_64-unknown-linux-gnu", "x86_64", "sse2", ""), KernelSet::Reference);
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
