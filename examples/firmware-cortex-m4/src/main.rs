//! Kestrel test firmware for QEMU's `mps2-an386` (Cortex-M4F, ARMv7E-M with DSP).
//!
//! Runs the bundle embedded by `kestrel-firmware-common`'s build.rs; see that crate for
//! what it prints. `kestrel firmware run --target m4` builds and runs it.
#![no_std]
#![no_main]

use cortex_m_rt::{entry, exception, ExceptionFrame};
use kestrel_firmware_common as fw;

/// SysTick's processor clock is the MPS2 SYSCLK, 25 MHz in QEMU (`hw/arm/mps2.c`): one tick
/// is 40 ns, i.e. 40 instructions under `-icount shift=0`. Each run re-checks it.
const BOARD: fw::Board = fw::Board {
    name: "mps2-an386/cortex-m4",
    tick_hz: 25_000_000,
};

#[entry]
fn main() -> ! {
    // cortex-m-rt turns this into a `&'static mut` owned by `main`.
    static mut ARENA: fw::Arena = fw::Arena::new();
    match cortex_m::Peripherals::take() {
        Some(p) => fw::run(&BOARD, p.SYST, ARENA),
        None => fw::exit(false), // unreachable: nothing took them before
    }
}

#[exception]
fn SysTick() {
    fw::clock::on_wrap();
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    fw::hard_fault(frame)
}
