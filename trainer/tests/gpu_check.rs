//! `scripts/gpu-check.sh`, the CUDA device check, on its CPU path: `prepare` stages this
//! build's `kestrel` and the data, then the check runs every stage with `DEVICE=cpu QUICK=1`
//! (conformance, lenet against the CPU reference, determinism, the int8 export on the
//! runtime, PSD; the PyTorch rows say they were skipped where torch is missing). On a GPU
//! machine the same script runs with `DEVICE=cuda` (docs/BENCHMARKS.md).

use std::path::Path;
use std::process::Command;

#[test]
fn the_device_check_runs_on_the_cpu() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = std::env::var("KESTREL_DATA")
        .unwrap_or_else(|_| kestrel_trainer::data::DEFAULT_DATA_DIR.into());
    assert!(
        Path::new(&data).is_dir(),
        "no data in {data}: run scripts/install-deps.sh"
    );
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    let script = |args: &[&str], device: Option<&str>| {
        let mut c = Command::new("bash");
        c.arg(root.join("scripts/gpu-check.sh"))
            .args(args)
            .current_dir(&root)
            .env("BUNDLE", &bundle)
            .env("QUICK", "1")
            .env("DATA", &data)
            .env("KESTREL_BIN", env!("CARGO_BIN_EXE_kestrel"));
        if let Some(d) = device {
            c.env("DEVICE", d);
        }
        let out = c.output().expect("bash runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, log) = script(&["prepare"], None);
    assert!(ok, "prepare failed:\n{log}");
    let (ok, log) = script(&[], Some("cpu"));
    println!("{log}");
    assert!(ok, "the check failed on the CPU:\n{log}");
    for row in [
        "| conformance (cpu) | ",
        " 0 failed; worst 0.00 of tolerance",
        "| lenet 1 epochs: test accuracy | ",
        "difference 0.0 points | PASS |",
        "| same seed, same device | identical f32 weights",
        "| int8 export on the runtime | ",
        "| PSD epoch (",
        "\n0 failed\n",
    ] {
        assert!(log.contains(row), "no `{row}` in:\n{log}");
    }
    assert!(
        log.contains("| lenet epoch vs PyTorch eager | PyTorch ")
            || log.contains("| PyTorch peer | skipped: "),
        "no PyTorch row in:\n{log}"
    );
    // Without a prepared bundle the check says what to do.
    std::fs::remove_dir_all(&bundle).unwrap();
    let (ok, log) = script(&[], Some("cpu"));
    assert!(
        !ok && log.contains("run 'scripts/gpu-check.sh prepare'"),
        "{log}"
    );
}
