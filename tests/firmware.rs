//! Acceptance (issue 3, line 1): the Cortex-M4 and Cortex-M55 firmware, built around an
//! exported `lenet` and run under `qemu-system-arm -icount shift=0` by `kestrel firmware
//! run`'s library function, produces outputs bit-identical to the host runtime's, with the
//! kernel set intended for each core and plausible instruction counts and footprint.
//!
//! Needs `qemu-system-arm` and the `thumbv7em-none-eabihf` / `thumbv8m.main-none-eabihf`
//! Rust targets (`scripts/install-deps.sh`); without them the tests fail with the fix.

use std::path::PathBuf;

use kestrel_tests::{data_dir, tempfile_dir, trained_lenet};
use kestrel_trainer::backend::cpu::Cpu;
use kestrel_trainer::checkpoint::write_atomic;
use kestrel_trainer::export::{export, Quant};
use kestrel_trainer::firmware::{self, FirmwareOptions, FirmwareReport, Target};

/// `lenet`'s multiply-accumulates per inference (LeNet-5 widened to 12 and 24 maps).
const LENET_MACS: u64 = 1_038_120;

/// The exported model's file.
fn model_file(quant: Quant) -> PathBuf {
    let bytes = export(Cpu::new(), trained_lenet(), quant, None).expect("export");
    let path = tempfile_dir().join(format!("lenet-{quant:?}.kmodel"));
    write_atomic(&path, &bytes).expect("model written");
    path
}

/// Builds and runs the firmware (`firmware::run` takes turns within the process) and
/// checks the report.
fn run(target: Target, quant: Quant, n: usize) -> FirmwareReport {
    let model = model_file(quant);
    let opts = FirmwareOptions::new(target, model.clone(), data_dir(), n);
    let r = firmware::run(&opts).unwrap_or_else(|e| panic!("kestrel firmware run: {e}"));
    println!("{}", r.table());

    assert!(
        r.outputs_match_host,
        "{} output bytes differ from the host runtime's; predictions {:?}, host {:?}",
        r.mismatched_bytes, r.predictions, r.host_predictions
    );
    assert_eq!(r.images, n);
    assert_eq!(r.mismatched_bytes, 0);
    assert_eq!(r.predictions, r.host_predictions);
    // A silent fallback to another kernel set would show here.
    let kernels = match target {
        Target::M4 => "dsp",
        Target::M55 => "mve",
    };
    assert_eq!(r.kernels, kernels, "kernel set compiled for {target:?}");

    assert_eq!(r.macs, LENET_MACS);
    assert_eq!(r.instructions_per_image.len(), n);
    // Input quantization plus the layers is the whole run, up to the clock readings'
    // resolution (one 40-instruction tick per reading).
    let parts = r.input_instructions + r.layers.iter().map(|l| l.instructions).sum::<u64>();
    assert!(
        parts.abs_diff(r.instructions) <= 40 * (r.layers.len() as u64 + 2),
        "layers sum to {parts}, the whole run took {}",
        r.instructions
    );
    // Every MAC needs at least a fraction of an instruction (MVE: 16 int8 MACs in one), and
    // today's kernels stay far below 200.
    assert!(
        (0.05..200.0).contains(&r.instructions_per_mac),
        "{} instructions per MAC",
        r.instructions_per_mac
    );
    for l in r.layers.iter().filter(|l| l.macs > 0) {
        assert!(l.instructions >= l.macs / 16, "layer {}: {l:?}", l.index);
    }

    let model_len = std::fs::metadata(&model).expect("model file").len();
    assert_eq!(r.model_bytes as u64, model_len);
    assert!(r.rodata_bytes >= model_len, "the model is embedded");
    assert!(r.arena_bytes > 0 && r.arena_bytes <= r.arena_static_bytes);
    assert!(
        r.runtime_text_bytes > 0 && r.runtime_text_bytes < r.text_bytes,
        "runtime .text {} of {}",
        r.runtime_text_bytes,
        r.text_bytes
    );
    r
}

#[test]
fn int8_lenet_on_cortex_m4_matches_host() {
    run(Target::M4, Quant::Int8, 4);
}

#[test]
fn int8_lenet_on_cortex_m55_matches_host() {
    run(Target::M55, Quant::Int8, 4);
}

#[test]
fn f32_lenet_on_cortex_m4_matches_host() {
    let r = run(Target::M4, Quant::F32, 2);
    assert_eq!(r.precision, "f32");
}
