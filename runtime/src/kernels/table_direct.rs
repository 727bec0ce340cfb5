//! Cortex-M firmware without kernel tables (`not(cfg(kestrel_tables))`, see `build.rs`):
//! the plan runs the one kernel set the target compiles ([`KernelSet::COMPILED`]), and the
//! op dispatchers call its functions directly (`kernel!` in `kernels/mod.rs`), so the
//! kernels inline as they would without any table and `.text` does not grow. This
//! [`Kernels`] only stands for that set.

use crate::KernelSet;

/// The one kernel set of this build (no function pointers).
pub(crate) struct Kernels;

impl Kernels {
    /// The set the target compiles.
    pub(crate) const COMPILED: Kernels = Kernels;

    /// `Some` for [`KernelSet::COMPILED`] only.
    pub(crate) fn get(set: KernelSet) -> Option<&'static Kernels> {
        (set == KernelSet::COMPILED).then_some(&Kernels)
    }

    /// The compiled set.
    pub(crate) fn default_table() -> &'static Kernels {
        &Kernels
    }
}
