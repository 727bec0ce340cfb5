//! Picks the kernel set (`cfg(kestrel_isa = "…")`) for the target being built.
//!
//! no_std has no run-time CPU detection, so the choice is made here, once, from the target
//! and its compile-time features:
//!
//! | `kestrel_isa` | when |
//! |---|---|
//! | `avx2` | x86-64 with `target_feature = "avx2"` (e.g. `-C target-cpu=native` on a recent CPU) |
//! | `neon` | aarch64 (NEON is baseline; `dotprod` is used where the target has it) |
//! | `mve` | Armv8.1-M with Helium: `-C target-cpu=cortex-m55` or `cortex-m85`, or `+mve` |
//! | `dsp` | ARMv7E-M (`thumbv7em-*`: Cortex-M4/M7), or Armv8-M Mainline with `cortex-m33`/`cortex-m35p` or `+dsp` |
//! | `reference` | everything else, and any build with the `force-reference` feature |
//!
//! Stable Rust does not report Arm M-profile features (`dsp`, `mve`) in `cfg(target_feature)`,
//! so they are read from the target name and the `-C target-cpu` / `-C target-feature` flags.
use std::env;

fn main() {
    println!(
        "cargo::rustc-check-cfg=cfg(kestrel_isa, values(\"reference\", \"dsp\", \"mve\", \"neon\", \"avx2\"))"
    );
    println!("cargo::rerun-if-changed=build.rs");
    let isa = isa();
    println!("cargo::rustc-cfg=kestrel_isa=\"{isa}\"");
    println!("cargo::rustc-env=KESTREL_ISA={isa}");
}

fn isa() -> &'static str {
    if env::var_os("CARGO_FEATURE_FORCE_REFERENCE").is_some() {
        return "reference";
    }
    let target = env::var("TARGET").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let has = |f: &str| features.split(',').any(|x| x == f);
    // `-C target-cpu=…` and `-C target-feature=…`, however they were passed.
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').collect();
    let cpu = flags
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            f.strip_prefix("-Ctarget-cpu=")
                .or_else(|| f.strip_prefix("target-cpu="))
                .or_else(|| {
                    (*f == "-C")
                        .then(|| flags.get(i + 1)?.strip_prefix("target-cpu="))
                        .flatten()
                })
        })
        .next_back()
        .unwrap_or("");
    let plus = |f: &str| {
        flags
            .iter()
            .any(|x| x.contains("target-feature=") && x.contains(&format!("+{f}")))
    };
    match arch.as_str() {
        "x86_64" if has("avx2") => "avx2",
        "aarch64" => "neon",
        "arm" if matches!(cpu, "cortex-m55" | "cortex-m85") || plus("mve") => "mve",
        "arm" if target.starts_with("thumbv7em") => "dsp",
        "arm"
            if target.starts_with("thumbv8m.main")
                && (matches!(cpu, "cortex-m33" | "cortex-m35p") || plus("dsp")) =>
        {
            "dsp"
        }
        _ => "reference",
    }
}
