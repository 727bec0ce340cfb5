//! Picks which kernel variants are compiled (`cfg(kestrel_isa = "…")`) for the target being
//! built. On x86-64 the AVX2 variants are always compiled: which set runs is decided when a
//! plan is made (run-time detection with the `std` feature, else what the target guarantees,
//! `KernelSet::COMPILED`); likewise every aarch64 build has the NEON files, whose `SDOT`
//! entries run as the `neon-dotprod` set. On Cortex-M the rule is in `select.rs` (shared
//! with `KernelSet::for_target`). The `force-reference` feature compiles only the portable
//! reference kernels.
use std::env;

include!("select.rs");

fn main() {
    println!(
        "cargo::rustc-check-cfg=cfg(kestrel_isa, values(\"reference\", \"dsp\", \"mve\", \"neon\", \"avx2\"))"
    );
    println!("cargo::rustc-check-cfg=cfg(kestrel_tables)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=select.rs");
    let var = |k: &str| env::var(k).unwrap_or_default();
    let isa = if env::var_os("CARGO_FEATURE_FORCE_REFERENCE").is_some() {
        "reference"
    } else if var("CARGO_CFG_TARGET_ARCH") == "x86_64" {
        "avx2"
    } else if var("CARGO_CFG_TARGET_ARCH") == "aarch64" {
        // Every aarch64 build has the NEON files, `SDOT` entries included: which set runs
        // is decided when a plan is made (`KernelSet::detect`, or `KernelSet::COMPILED`).
        "neon"
    } else {
        select_kernel_set(
            &var("TARGET"),
            &var("CARGO_CFG_TARGET_ARCH"),
            &var("CARGO_CFG_TARGET_FEATURE"),
            &var("CARGO_ENCODED_RUSTFLAGS"),
        )
    };
    println!("cargo::rustc-cfg=kestrel_isa=\"{isa}\"");
    // Kernel tables (`src/kernels/table.rs`): on hosts, whose kernel set is picked when a
    // plan is made, and for the kernel checks. Cortex-M firmware without them calls its
    // one set's kernels directly (no function pointers: they inline as before).
    let arch = var("CARGO_CFG_TARGET_ARCH");
    if env::var_os("CARGO_FEATURE_STD").is_some()
        || env::var_os("CARGO_FEATURE_KERNEL_CHECK").is_some()
        || arch == "x86_64"
        || arch == "aarch64"
    {
        println!("cargo::rustc-cfg=kestrel_tables");
    }
}
