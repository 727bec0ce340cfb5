//! What both binaries need from the board: semihosting output and exit, a panic handler
//! that fails the run, and SysTick as a clock.

#![allow(dead_code)] // each binary uses part of it
use core::fmt::Write;

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_semihosting::{debug, hio};

/// The QEMU machine this build is for (`mps2-an386` or `mps3-an547`).
pub const BOARD: &str = env!("KERNEL_CHECK_BOARD");

/// The kernel set this firmware must find compiled in.
pub const EXPECT_IMPL: &str = env!("KESTREL_EXPECT_IMPL");

/// Semihosting stdout (the host's, under `-semihosting-config target=native`).
pub struct Out(Option<hio::HostStream>);

impl Out {
    pub fn new() -> Self {
        Out(hio::hstdout().ok())
    }
}

impl Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        match &mut self.0 {
            Some(h) => h.write_all(s.as_bytes()).map_err(|_| core::fmt::Error),
            None => Ok(()),
        }
    }
}

/// Ends the QEMU run with the given status.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(Out::new(), "panic: {info}");
    exit(false)
}

/// SysTick on the processor clock, free running over its full 24 bits.
pub struct Clock(SYST);

impl Clock {
    pub fn new(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00ff_ffff);
        syst.clear_current();
        syst.enable_counter();
        Clock(syst)
    }

    /// Ticks `f` took (less than 2^24 of them, or the count wraps).
    pub fn time(&mut self, f: &mut dyn FnMut()) -> u32 {
        self.0.clear_current();
        let start = SYST::get_current();
        f();
        let end = SYST::get_current();
        start.wrapping_sub(end) & 0x00ff_ffff
    }
}
