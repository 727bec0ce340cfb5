//! Generates `include/kestrel.h` from `src/lib.rs` with cbindgen.
//!
//! The header is committed. The build rewrites it only when its content changes (so an
//! unchanged header keeps its timestamp), always writes the fresh one to
//! `$OUT_DIR/kestrel.h`, and under `CI` leaves the source tree alone: there
//! `tests/header.rs` fails on a committed header that is stale.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=include/kestrel.h");
    println!("cargo:rerun-if-env-changed=CI");

    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("capi/cbindgen.toml: {e}"));
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen could not generate kestrel.h: {e}"));
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    fs::write(out.join("kestrel.h"), &fresh).expect("write $OUT_DIR/kestrel.h");

    let committed = dir.join("include/kestrel.h");
    let in_ci = env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    if !in_ci && fs::read(&committed).ok().as_deref() != Some(&fresh[..]) {
        fs::write(&committed, &fresh).expect("write capi/include/kestrel.h");
    }
}
