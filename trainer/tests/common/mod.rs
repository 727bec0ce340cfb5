//! Helpers shared by the trainer's integration tests (each test binary uses some of them).
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Runs the `kestrel` binary under test: (success, stdout, stderr).
pub fn kestrel(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kestrel"))
        .args(args)
        .output()
        .expect("kestrel runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
