//! Executed-instruction counter: SysTick under `qemu-system-arm -icount shift=0`.
//!
//! **Why SysTick.** With `-icount shift=0` QEMU advances its virtual clock by exactly 1 ns
//! per executed guest instruction, and every emulated timer runs on that clock. SysTick,
//! clocked from the processor clock (`CLKSOURCE = 1`), is architectural on both boards, so
//! one driver serves both. QEMU 7.2 does not model the DWT: on both boards `DEMCR`,
//! `DWT_CTRL` and `DWT_CYCCNT` read as zero and ignore writes (checked by setting `TRCENA`
//! and `CYCCNTENA` and reading `CYCCNT` around a loop), so there is no cycle counter to use.
//!
//! **Scaling.** A tick is `10⁹ / tick_hz` ns, hence that many instructions: 40 at the
//! MPS2's 25 MHz SYSCLK (AN386), 31.25 at the MPS3 AN547's 32 MHz. The board crates state
//! `tick_hz`, and every run re-checks it with [`calibrate`]: a loop of exactly `2·n`
//! instructions (`subs; bne`) must measure `2·n` within one tick.
//!
//! **Resolution.** One tick (40 or 31.25 instructions) per reading, and each reading costs
//! about 20 instructions of its own, which land in whatever interval contains them. A
//! layer's count is therefore within ±2 ticks + 20 instructions of its own; a whole-model
//! count is within the same absolute error, far below 0.1% for `lenet`.
//!
//! SysTick's counter has 24 bits (0.5–0.7 s of virtual time, 500–670 million
//! instructions), so [`on_wrap`], called from the `SysTick` exception, extends it to 64
//! bits; the exception's own instructions (a handful per 2²⁴ ticks) are counted too.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;

/// The 24-bit reload value: SysTick counts `RELOAD..=0`, `RELOAD + 1` ticks per wrap.
const RELOAD: u32 = 0x00FF_FFFF;

static WRAPS: AtomicU32 = AtomicU32::new(0);

/// A free-running tick counter and its frequency.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    tick_hz: u32,
}

impl Clock {
    /// Starts SysTick from the processor clock, wrapping every `2²⁴` ticks with an
    /// exception (the board's `SysTick` handler must call [`on_wrap`]).
    pub fn start(mut syst: SYST, tick_hz: u32) -> Clock {
        syst.disable_counter();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(RELOAD);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        Clock { tick_hz }
    }

    /// Ticks since [`Clock::start`].
    #[inline(always)]
    pub fn now(&self) -> u64 {
        loop {
            let wraps = WRAPS.load(Ordering::Acquire);
            let current = SYST::get_current();
            if WRAPS.load(Ordering::Acquire) == wraps {
                return (u64::from(wraps) << 24) | u64::from(RELOAD - current);
            }
        }
    }

    /// Instructions executed in `ticks` ticks (1 ns of virtual time per instruction).
    pub fn instructions(&self, ticks: u64) -> u64 {
        ticks.saturating_mul(1_000_000_000) / u64::from(self.tick_hz)
    }

    /// The counter's frequency.
    pub fn tick_hz(&self) -> u32 {
        self.tick_hz
    }
}

/// Counts one SysTick wrap; call it from the `SysTick` exception handler.
pub fn on_wrap() {
    WRAPS.fetch_add(1, Ordering::AcqRel);
}

/// Runs a loop of exactly `2·n` instructions and returns the ticks it took.
pub fn calibrate(clock: &Clock, n: u32) -> u64 {
    let t0 = clock.now();
    spin(n);
    clock.now() - t0
}

/// `n` iterations of `subs; bne`: `2·n` instructions (the final, untaken `bne` counts too).
#[inline(never)]
fn spin(n: u32) {
    // SAFETY: only decrements a register; touches no memory and no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {0}, {0}, #1",
            "bne 2b",
            inout(reg) n.max(1) => _,
            options(nomem, nostack),
        );
    }
}
