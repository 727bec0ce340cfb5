//! libFuzzer target: the input's first four bytes pick a seed model, the rest are the
//! mutation choices ([`kestrel_fuzz::Bytes`]); [`kestrel_fuzz::check`] must not panic and
//! must find every promise kept. Seeds: `KESTREL_FUZZ_SEEDS` or `target/fuzz-corpus` of the
//! repository (written by `fuzz-seeds`).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use kestrel_fuzz::{check, mutate, Bytes, Choices};
use libfuzzer_sys::fuzz_target;

fn seeds() -> &'static [Vec<u8>] {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let dir = std::env::var_os("KESTREL_FUZZ_SEEDS").map_or_else(
            || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/fuzz-corpus")),
            PathBuf::from,
        );
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("seed models in {}: {e} (run fuzz-seeds)", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "kmodel"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no .kmodel seeds in {}", dir.display());
        files.iter().map(|p| std::fs::read(p).expect("seed readable")).collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let seeds = seeds();
    let mut choices = Bytes(data);
    let seed = &seeds[choices.below(seeds.len())];
    let (bytes, what) = mutate(seed, &mut choices);
    if let Err(broken) = check(&bytes, 200_000) {
        panic!("mutating {what}: {broken}");
    }
});
