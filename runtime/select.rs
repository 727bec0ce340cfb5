// Which kernel set a target gets. Shared, with `include!`, by `build.rs` (which sets
// `cfg(kestrel_isa)` from it) and by `KernelSet::for_target` (which a host build script
// uses to size a device's arena), so the two can never disagree. No std, no alloc.
//
// | kernel set | when |
// |---|---|
// | `avx2-vnni` | x86-64 with `avx2`, `f16c`, `avx512vnni`, `avx512vl` and `avx512bw` |
// | `avx2` | x86-64 with `avx2` and `f16c` (e.g. `-C target-cpu=x86-64-v3`) |
// | `neon-dotprod` | aarch64 with `dotprod` (e.g. `-C target-cpu=cortex-a76`, or `+dotprod`) |
// | `neon` | aarch64 (NEON is baseline) |
// | `mve` | Armv8.1-M with Helium: `-C target-cpu=cortex-m55` or `cortex-m85`, or `+mve` |
// | `dsp` | ARMv7E-M (`thumbv7em-*`: Cortex-M4/M7), or Armv8-M Mainline with `cortex-m33`/`cortex-m35p` or `+dsp` |
// | `reference` | everything else |
//
// Stable Rust does not report Arm M-profile features (`dsp`, `mve`) in `cfg(target_feature)`,
// so they are read from the target name and the `-C target-cpu` / `-C target-feature` flags.

/// The kernel set's name for a build of `target` (cargo's `TARGET`), `arch`
/// (`CARGO_CFG_TARGET_ARCH`), `target_features` (`CARGO_CFG_TARGET_FEATURE`, comma
/// separated) and `encoded_rustflags` (`CARGO_ENCODED_RUSTFLAGS`, `\x1f` separated).
pub fn select_kernel_set(
    target: &str,
    arch: &str,
    target_features: &str,
    encoded_rustflags: &str,
) -> &'static str {
    let has = |f: &str| target_features.split(',').any(|x| x == f);
    let (mut cpu, mut plus_mve, mut plus_dsp) = ("", false, false);
    let mut after_c = false;
    for flag in encoded_rustflags.split('\x1f') {
        let opt = if after_c {
            Some(flag)
        } else {
            flag.strip_prefix("-C").filter(|rest| !rest.is_empty())
        };
        after_c = flag == "-C" || flag == "--codegen";
        let Some(opt) = opt else { continue };
        if let Some(c) = opt.strip_prefix("target-cpu=") {
            cpu = c;
        } else if let Some(fs) = opt.strip_prefix("target-feature=") {
            for f in fs.split(',') {
                plus_mve |= f == "+mve" || f == "+mve.fp";
                plus_dsp |= f == "+dsp";
            }
        }
    }
    match arch {
        "x86_64"
            if has("avx2")
                && has("f16c")
                && has("avx512vnni")
                && has("avx512vl")
                && has("avx512bw") =>
        {
            "avx2-vnni"
        }
        "x86_64" if has("avx2") && has("f16c") => "avx2",
        "aarch64" if has("dotprod") => "neon-dotprod",
        "aarch64" => "neon",
        "arm" if matches!(cpu, "cortex-m55" | "cortex-m85") || plus_mve => "mve",
        "arm" if target.starts_with("thumbv7em") => "dsp",
        "arm"
            if target.starts_with("thumbv8m.main")
                && (matches!(cpu, "cortex-m33" | "cortex-m35p") || plus_dsp) =>
        {
            "dsp"
        }
        _ => "reference",
    }
}
