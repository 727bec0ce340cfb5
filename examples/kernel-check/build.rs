//! Puts the board's `memory.x` on the linker path (`cortex-m-rt`'s `link.x` includes it)
//! and tells the firmware which kernel set it must find compiled in.
use std::{env, fs, path::PathBuf};

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    // thumbv7em: Cortex-M4 on QEMU's mps2-an386; thumbv8m.main: Cortex-M55 on mps3-an547.
    let board = if target.starts_with("thumbv8m.main") {
        "mps3-an547"
    } else {
        "mps2-an386"
    };
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let memory = fs::read(format!("memory-{board}.x")).unwrap();
    fs::write(out.join("memory.x"), memory).unwrap();
    println!("cargo::rustc-link-search={}", out.display());
    println!("cargo::rustc-link-arg=-Tlink.x");
    println!("cargo::rerun-if-changed=memory-{board}.x");
    println!("cargo::rustc-env=KERNEL_CHECK_BOARD={board}");
    // The variant the firmware insists on (so a silent fallback to the reference fails).
    println!("cargo::rerun-if-env-changed=KESTREL_EXPECT_IMPL");
    let expect = env::var("KESTREL_EXPECT_IMPL").unwrap_or_else(|_| {
        if env::var_os("CARGO_FEATURE_FORCE_REFERENCE").is_some() {
            "reference".into()
        } else if board == "mps3-an547" {
            "mve".into()
        } else {
            "dsp".into()
        }
    });
    println!("cargo::rustc-env=KESTREL_EXPECT_IMPL={expect}");
}
