//! A fingerprint of everything that decides what the shared `lenet` fixture
//! (`trained_lenet`) trains to: the trainer's and the format's sources, the built-in
//! architectures and the locked dependencies. `trained_lenet` caches its checkpoint under
//! this fingerprint, so the test binaries that need it train it once per source state
//! instead of once per process, and never reuse one trained by other code.

use std::path::{Path, PathBuf};

const INPUTS: [&str; 4] = [
    "../trainer/src",
    "../formats/src",
    "../examples/archs",
    "../Cargo.lock",
];

fn main() {
    let mut files = Vec::new();
    for input in INPUTS {
        println!("cargo:rerun-if-changed={input}");
        collect(Path::new(input), &mut files);
    }
    files.sort();
    // FNV-1a over each file's path and contents.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in &files {
        let contents = std::fs::read(file).expect("read a fingerprinted file");
        for byte in file.to_string_lossy().bytes().chain(contents) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=KESTREL_FIXTURE_KEY={hash:016x}");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rustc-env=KESTREL_FIXTURE_DIR={out}");
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read a fingerprinted directory") {
            collect(&entry.expect("directory entry").path(), files);
        }
    } else {
        files.push(path.to_path_buf());
    }
}
