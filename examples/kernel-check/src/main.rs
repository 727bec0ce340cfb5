//! Runs `kestrel_runtime::check` (the variant-vs-reference property check) for every kernel
//! and seeds `0..1000` on the board's real instruction set, prints one line per kernel and
//! every mismatch, and exits non-zero on any failure or when the compiled kernel set
//! (`kestrel_runtime::IMPL`) is not the one this board should run.
#![no_std]
#![no_main]

mod board;

use core::fmt::Write;

use cortex_m_rt::entry;
use kestrel_runtime::check::{self, Kernel, WORK_BYTES};

use board::{Out, BOARD, EXPECT_IMPL};

/// Cases per kernel.
const SEEDS: u64 = 1000;
/// Mismatches printed per kernel (all are counted).
const SHOWN: u32 = 5;

#[entry]
fn main() -> ! {
    static mut WORK: [u8; WORK_BYTES] = [0; WORK_BYTES];
    let work: &'static mut [u8; WORK_BYTES] = WORK;
    let mut out = Out::new();
    let impl_ = kestrel_runtime::IMPL;
    let _ = writeln!(
        out,
        "kernel-check on {BOARD}: IMPL {impl_} (expected {EXPECT_IMPL})"
    );
    let mut ok = impl_ == EXPECT_IMPL;
    for kernel in Kernel::ALL {
        if check::runs_reference(kestrel_runtime::KernelSet::COMPILED, kernel) {
            // The reference against itself proves nothing, and costs emulated minutes.
            let _ = writeln!(
                out,
                "{:<12} reference  no variant on this board: not checked",
                kernel.name()
            );
            continue;
        }
        let mut failed = 0u32;
        for seed in 0..SEEDS {
            if let Err(m) = check::run(kernel, seed, work) {
                if failed < SHOWN {
                    let _ = writeln!(out, "  MISMATCH {m}");
                }
                failed += 1;
            }
        }
        let _ = writeln!(
            out,
            "{:<12} {:<9} {} / {SEEDS} cases bit-exact{}",
            kernel.name(),
            impl_,
            SEEDS - failed as u64,
            if failed == 0 { "" } else { "  FAILED" }
        );
        ok &= failed == 0;
    }
    if impl_ != EXPECT_IMPL {
        let _ = writeln!(
            out,
            "FAILED: IMPL is {impl_}, this board must run {EXPECT_IMPL}"
        );
    }
    let _ = writeln!(out, "kernel-check {}", if ok { "passed" } else { "FAILED" });
    board::exit(ok)
}
