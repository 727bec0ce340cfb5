//! Times the reference and the compiled kernel variant on fixed layer shapes
//! (`kestrel_runtime::check::bench`) and prints executed instructions per MAC (pooling: per
//! output) under `qemu-system-arm -icount shift=0`, where one instruction takes 1 ns of
//! virtual time. Then the sparse-code encoder steps (`check::bench_encoder`), per dense MAC.
//! SysTick counts the processor clock, so the instructions per tick are
//! measured first on a loop of known length.
#![no_std]
#![no_main]

#[path = "../board.rs"]
mod board;

use core::fmt::Write;

use cortex_m_rt::entry;
use kestrel_runtime::check::{bench, bench_encoder, EncoderShape, WORK_BYTES};

use board::{Clock, Out, BOARD};

/// Runs exactly `2·n + 1` instructions after the `mov` (`subs` + taken `bne` per turn,
/// then one not taken).
#[inline(never)]
fn spin(n: u32) {
    // SAFETY: a register-only countdown loop; touches no memory and no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

/// Instructions per SysTick tick, in 1/1000ths: the difference of two spin loops cancels
/// the call overhead.
fn instructions_per_kilotick(clock: &mut Clock) -> u64 {
    let (short, long) = (100_000u32, 1_100_000u32);
    let a = clock.time(&mut || spin(short)) as u64;
    let b = clock.time(&mut || spin(long)) as u64;
    2 * (long - short) as u64 * 1000 / (b - a)
}

/// `num / den` with two decimals, as `"12.34"`.
struct Fixed2(u64, u64);

impl core::fmt::Display for Fixed2 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let hundredths = (self.0 * 100 + self.1 / 2) / self.1;
        // Formatted into a buffer first, so that the caller's width applies.
        let mut buf = Buf([0; 24], 0);
        write!(buf, "{}.{:02}", hundredths / 100, hundredths % 100)?;
        f.pad(core::str::from_utf8(&buf.0[..buf.1]).map_err(|_| core::fmt::Error)?)
    }
}

/// A small stack string.
struct Buf([u8; 24], usize);

impl Write for Buf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.1 + s.len();
        self.0
            .get_mut(self.1..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.1 = end;
        Ok(())
    }
}

#[entry]
fn main() -> ! {
    static mut WORK: [u8; WORK_BYTES] = [0; WORK_BYTES];
    let work: &'static mut [u8; WORK_BYTES] = WORK;
    let mut out = Out::new();
    let Some(p) = cortex_m::Peripherals::take() else {
        board::exit(false)
    };
    let mut clock = Clock::new(p.SYST);
    let scale = instructions_per_kilotick(&mut clock);
    let impl_ = kestrel_runtime::IMPL;
    let _ = writeln!(
        out,
        "bench on {BOARD}: IMPL {impl_}, {} instructions per SysTick tick",
        Fixed2(scale, 1000)
    );
    let _ = writeln!(
        out,
        "{:<28} {:>9} {:>9} {:>10} {:>10} {:>8}",
        "shape", "MACs", "scratch", "reference", impl_, "per"
    );
    let mut ok = true;
    for shape in bench::Shape::ALL {
        let t = bench::run(shape, work, &mut |f| clock.time(f));
        let (den, per) = if shape.per_output() {
            (t.outputs, "output")
        } else {
            (t.macs, "MAC")
        };
        let instr = |ticks: u32| ticks as u64 * scale;
        let _ = writeln!(
            out,
            "{:<28} {:>9} {:>9} {:>10} {:>10} {:>8}{}",
            shape.name(),
            t.macs,
            t.scratch,
            Fixed2(instr(t.reference), den * 1000),
            Fixed2(instr(t.variant), den * 1000),
            per,
            if t.equal { "" } else { "  OUTPUTS DIFFER" }
        );
        ok &= t.equal;
    }
    // The sparse-code encoder steps (LISTA, FISTA's matrix-vector step), per dense MAC.
    for shape in EncoderShape::ALL {
        let t = bench_encoder(shape, work, &mut |f| clock.time(f));
        let instr = |ticks: u32| ticks as u64 * scale;
        let _ = writeln!(
            out,
            "{:<46} {:>10} {:>10} {:>8}{}",
            shape.name(),
            Fixed2(instr(t.reference), t.macs * 1000),
            Fixed2(instr(t.variant), t.macs * 1000),
            "MAC",
            if t.equal { "" } else { "  OUTPUTS DIFFER" }
        );
        ok &= t.equal;
    }
    board::exit(ok)
}
