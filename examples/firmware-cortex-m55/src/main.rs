//! Kestrel test firmware for QEMU's `mps3-an547` (Cortex-M55, Armv8.1-M with Helium).
//!
//! Runs the bundle embedded by `kestrel-firmware-common`'s build.rs; see that crate for
//! what it prints. `kestrel firmware run --target m55` builds and runs it.
#![no_std]
#![no_main]

use cortex_m_rt::{entry, exception, ExceptionFrame};
use kestrel_firmware_common as fw;

/// SysTick's processor clock is the AN547 SYSCLK, 32 MHz in QEMU (`hw/arm/mps2-tz.c`): one tick
/// is 31.25 ns, i.e. 31.25 instructions under `-icount shift=0`. Each run re-checks it.
const BOARD: fw::Board = fw::Board {
    name: "mps3-an547/cortex-m55",
    tick_hz: 32_000_000,
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
