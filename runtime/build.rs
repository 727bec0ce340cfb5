//! Picks the kernel set (`cfg(kestrel_isa = "…")`) for the target being built; the rule is
//! in `select.rs` (shared with `KernelSet::for_target`). The `force-reference` feature
//! forces the portable reference kernels.
use std::env;

include!("select.rs");

fn main() {
    println!(
        "cargo::rustc-check-cfg=cfg(kestrel_isa, values(\"reference\", \"dsp\", \"mve\", \"neon\", \"avx2\"))"
    );
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=select.rs");
    let var = |k: &str| env::var(k).unwrap_or_default();
    let isa = if env::var_os("CARGO_FEATURE_FORCE_REFERENCE").is_some() {
        "reference"
    } else {
        select_kernel_set(
            &var("TARGET"),
            &var("CARGO_CFG_TARGET_ARCH"),
            &var("CARGO_CFG_TARGET_FEATURE"),
            &var("CARGO_ENCODED_RUSTFLAGS"),
        )
    };
    println!("cargo::rustc-cfg=kestrel_isa=\"{isa}\"");
}
