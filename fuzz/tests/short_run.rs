//! The short stable-Rust fuzzing run of the test command: writes the seed corpus (every
//! shipped architecture at every precision, and the PSD encoders) to
//! `target/tmp/fuzz-corpus`, where scripts/test.sh's 32-bit run finds it too, then runs
//! `model-fuzz` on it for 30 seconds (`KESTREL_FUZZ_SECONDS` to change). Any panic, broken promise or hang fails the test.
//! The long runs are in docs/BENCHMARKS.md.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn thirty_seconds_of_mutated_models_find_nothing() {
    let corpus = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-corpus");
    let seeds = Command::new(env!("CARGO_BIN_EXE_fuzz-seeds"))
        .arg(&corpus)
        .output()
        .expect("fuzz-seeds runs");
    assert!(
        seeds.status.success(),
        "fuzz-seeds: {}",
        String::from_utf8_lossy(&seeds.stderr)
    );
    let seconds = std::env::var("KESTREL_FUZZ_SECONDS").unwrap_or_else(|_| "30".into());
    let run = Command::new(env!("CARGO_BIN_EXE_model-fuzz"))
        .args(["--corpus".as_ref(), corpus.as_os_str()])
        .args(["--seconds", &seconds, "--seed", "7"])
        .arg("--save")
        .arg(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures"))
        .output()
        .expect("model-fuzz runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}");
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The run did something: most mutations reach the validator's errors, many still run.
    assert!(stdout.contains(" 0 failures"), "{stdout}");
    assert!(!stdout.contains(" 0 ran;"), "{stdout}");
}
