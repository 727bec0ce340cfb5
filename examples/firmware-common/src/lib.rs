//! # kestrel-firmware-common
//!
//! What the Cortex-M test firmware does, whatever the board: validate the embedded model,
//! run it on every embedded image, compare every output byte with the host runtime's, count
//! executed instructions for the whole run and per layer, print it all over semihosting and
//! exit with status 0 only if every output matched.
//!
//! The model, the images, the expected outputs and the arena size come from `build.rs`
//! (`KESTREL_FW_BUNDLE`, written by `kestrel firmware run`). A board crate only adds its
//! memory map, its tick frequency and the exception handlers:
//!
//! ```ignore
//! #[entry]
//! fn main() -> ! {
//!     static mut ARENA: fw::Arena = fw::Arena::new();
//!     let p = cortex_m::Peripherals::take().unwrap();
//!     fw::run(&BOARD, p.SYST, ARENA)
//! }
//! #[exception]
//! fn SysTick() { fw::clock::on_wrap() }
//! ```
//!
//! Output, one record per line (`kestrel firmware run` parses it):
//!
//! ```text
//! kestrel-firmware board=<name> impl=<kernels> images=<n> layers=<l> arena_bytes=<plan> arena_static=<built> model_bytes=<b>
//! calibration instructions=<2n> ticks=<t> tick_hz=<hz> measured=<instructions> ok=<0|1>
//! image <i> prediction=<class> match=<0|1> mismatched_bytes=<k> instructions=<total> input=<quantize> layers=<l0>,<l1>,…
//! fista <i> match=<0|1> mismatched_bytes=<k> iterations=<it> instructions=<n>   (encoder models, per image)
//! done matched=<m>/<n>
//! ```
//! or `error <message>` / `panic <message>` / `hardfault pc=<addr>`.
#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]

pub mod clock;

use core::fmt;

use cortex_m::peripheral::SYST;
use cortex_m_rt::ExceptionFrame;
use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
use cortex_m_semihosting::hprintln;
use kestrel_format::{Aligned16, Model, MAX_LAYERS};
use kestrel_runtime::{Input, Output, Plan};

use clock::Clock;

/// The bundle `build.rs` embedded: model, images, expected outputs and the arena size.
pub mod bundle {
    include!(concat!(env!("OUT_DIR"), "/bundle.rs"));
}

/// Iterations of the calibration loop (2 instructions each).
const CALIBRATION_LOOPS: u32 = 1_000_000;

/// What the firmware needs to know about its board.
#[derive(Debug, Clone, Copy)]
pub struct Board {
    /// QEMU machine and core, for the log.
    pub name: &'static str,
    /// SysTick frequency with `CLKSOURCE = 1` (the processor clock), in Hz.
    pub tick_hz: u32,
}

/// The model's arena ([`bundle::ARENA_BYTES`] bytes, 16-byte aligned, sized at build time)
/// and on-device FISTA's buffers (empty unless the bundle has FISTA codes).
pub struct Arena {
    model: Aligned16<[u8; bundle::ARENA_BYTES]>,
    fista: FistaBuffers,
}

/// FISTA's preprocessed input, codes and scratch, sized by build.rs.
#[cfg_attr(not(feature = "encoders"), allow(dead_code))]
struct FistaBuffers {
    x: [f32; bundle::FISTA_INPUT],
    h: [f32; bundle::FISTA_ATOMS],
    scratch: [f32; bundle::FISTA_SCRATCH],
}

impl Arena {
    /// A zeroed arena (it lands in `.bss`).
    pub const fn new() -> Arena {
        Arena {
            model: Aligned16([0; bundle::ARENA_BYTES]),
            fista: FistaBuffers {
                x: [0.0; bundle::FISTA_INPUT],
                h: [0.0; bundle::FISTA_ATOMS],
                scratch: [0.0; bundle::FISTA_SCRATCH],
            },
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

/// Why a run could not complete.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Error {
    /// The embedded model failed validation.
    Model(kestrel_format::Error),
    /// The runtime refused to plan or run it.
    Runtime(kestrel_runtime::Error),
    /// The device's plan needs a different arena from the one build.rs sized on the host
    /// (`KernelSet::for_target` and the runtime's build.rs disagree: a bug).
    ArenaMismatch {
        /// The device plan's `arena_bytes`.
        needed: usize,
        /// The static arena.
        got: usize,
    },
    /// The bundle has FISTA codes to check but this build lacks the `encoders` feature.
    EncodersNotBuilt,
    /// The calibration loop did not measure its own instruction count: QEMU is not running
    /// with `-icount shift=0`, or `tick_hz` is wrong.
    Clock {
        /// Instructions the loop executes.
        expected: u64,
        /// Instructions the clock measured.
        measured: u64,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Model(e) => write!(f, "model: {e}"),
            Error::Runtime(e) => write!(f, "runtime: {e}"),
            Error::ArenaMismatch { needed, got } => write!(
                f,
                "this build's kernels ({}) plan a {needed}-byte arena; build.rs sized {got}",
                kestrel_runtime::IMPL
            ),
            Error::EncodersNotBuilt => write!(
                f,
                "the bundle has FISTA codes to check: build with the `encoders` feature"
            ),
            Error::Clock { expected, measured } => write!(
                f,
                "calibration loop of {expected} instructions measured {measured}: run QEMU with \
                 -icount shift=0 and check the board's tick_hz"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Runs every embedded image, prints the results and exits QEMU: status 0 if every output
/// byte matched the host's, 1 otherwise.
pub fn run(board: &Board, syst: SYST, arena: &mut Arena) -> ! {
    let clock = Clock::start(syst, board.tick_hz);
    let ok = match run_all(board, &clock, arena) {
        Ok(all_match) => all_match,
        Err(e) => {
            hprintln!("error {}", e);
            false
        }
    };
    exit(ok)
}

/// Exits QEMU through semihosting.
pub fn exit(success: bool) -> ! {
    debug::exit(if success { EXIT_SUCCESS } else { EXIT_FAILURE });
    // Only reached without a semihosting host.
    loop {
        cortex_m::asm::wfi();
    }
}

/// For the board's `HardFault` handler: report where, then exit with failure.
pub fn hard_fault(frame: &ExceptionFrame) -> ! {
    hprintln!("hardfault pc={:#010x} lr={:#010x}", frame.pc(), frame.lr());
    exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("panic {}", info);
    exit(false)
}

fn run_all(board: &Board, clock: &Clock, buffers: &mut Arena) -> Result<bool, Error> {
    let arena = &mut buffers.model.0;
    use bundle::{ARENA_BYTES, EXPECTED, IMAGES, INPUTS, INPUT_LEN, OUTPUT_BYTES};
    let model = Model::from_bytes(bundle::MODEL).map_err(Error::Model)?;
    let plan = Plan::new(&model).map_err(Error::Runtime)?;
    let layers = model.layers().len();
    hprintln!(
        "kestrel-firmware board={} impl={} images={} layers={} arena_bytes={} arena_static={} model_bytes={}",
        board.name,
        kestrel_runtime::IMPL,
        IMAGES,
        layers,
        plan.arena_bytes(),
        ARENA_BYTES,
        model.file_len()
    );
    if plan.arena_bytes() != ARENA_BYTES {
        return Err(Error::ArenaMismatch {
            needed: plan.arena_bytes(),
            got: ARENA_BYTES,
        });
    }

    let expected = 2 * u64::from(CALIBRATION_LOOPS);
    let ticks = clock::calibrate(clock, CALIBRATION_LOOPS);
    let measured = clock.instructions(ticks);
    // Within one tick, plus the call and two clock readings.
    let ok = measured.abs_diff(expected) <= clock.instructions(1) + 100;
    hprintln!(
        "calibration instructions={} ticks={} tick_hz={} measured={} ok={}",
        expected,
        ticks,
        clock.tick_hz(),
        measured,
        u8::from(ok)
    );
    if !ok {
        return Err(Error::Clock { expected, measured });
    }

    let mut matched = 0;
    for i in 0..IMAGES {
        let input = &INPUTS[i * INPUT_LEN..][..INPUT_LEN];
        let want = &EXPECTED[i * OUTPUT_BYTES..][..OUTPUT_BYTES];
        // marks[0]: input quantized; marks[j + 1]: layer j done.
        let mut marks = [0u64; MAX_LAYERS + 1];
        let start = clock.now();
        let out = plan
            .run_observed(arena, Input::Pixels(input), |layer| {
                let t = clock.now();
                match layer {
                    None => marks[0] = t,
                    Some(j) => marks[j + 1] = t,
                }
            })
            .map_err(Error::Runtime)?;
        let end = clock.now();
        let (mismatched, prediction) = compare(out, want);
        matched += usize::from(mismatched == 0);
        let per_layer = LayerCounts {
            clock,
            marks: &marks[..=layers],
        };
        hprintln!(
            "image {} prediction={} match={} mismatched_bytes={} instructions={} input={} layers={}",
            i,
            prediction,
            u8::from(mismatched == 0),
            mismatched,
            clock.instructions(end - start),
            clock.instructions(marks[0] - start),
            per_layer
        );
        if bundle::FISTA_ITERATIONS > 0 {
            let fista_ok = fista(&model, clock, &mut buffers.fista, i)?;
            matched -= usize::from(mismatched == 0 && !fista_ok);
        }
    }
    hprintln!("done matched={}/{}", matched, IMAGES);
    Ok(matched == IMAGES)
}

/// On-device FISTA on image `i` for [`bundle::FISTA_ITERATIONS`] iterations from zero
/// (preprocessing and `Dᵀx/L` included in the count); prints
/// `fista <i> match=<0|1> mismatched_bytes=<k> iterations=<it> instructions=<n>` and returns
/// whether the codes equal the host runtime's byte for byte.
#[cfg(feature = "encoders")]
fn fista(model: &Model<'_>, clock: &Clock, b: &mut FistaBuffers, i: usize) -> Result<bool, Error> {
    use bundle::{FISTA_ATOMS, FISTA_EXPECTED, FISTA_ITERATIONS, INPUTS, INPUT_LEN};
    use kestrel_runtime::sparse::{FistaOptions, Problem};
    let problem = Problem::new(model).map_err(Error::Runtime)?;
    let input = &INPUTS[i * INPUT_LEN..][..INPUT_LEN];
    let opts = FistaOptions {
        max_iter: FISTA_ITERATIONS,
        tol: 0.0,
        target_energy: None,
    };
    let start = clock.now();
    problem.preprocess(input, &mut b.x).map_err(Error::Runtime)?;
    b.h.fill(0.0);
    let stats = problem
        .fista(&b.x, &mut b.h, &opts, &mut b.scratch)
        .map_err(Error::Runtime)?;
    let end = clock.now();
    let want = &FISTA_EXPECTED[i * 4 * FISTA_ATOMS..][..4 * FISTA_ATOMS];
    let bad: usize = b
        .h
        .iter()
        .zip(want.chunks_exact(4))
        .map(|(v, w)| v.to_le_bytes().iter().zip(w).filter(|(a, b)| a != b).count())
        .sum();
    hprintln!(
        "fista {} match={} mismatched_bytes={} iterations={} instructions={}",
        i,
        u8::from(bad == 0),
        bad,
        stats.iterations,
        clock.instructions(end - start)
    );
    Ok(bad == 0)
}

#[cfg(not(feature = "encoders"))]
fn fista(_: &Model<'_>, _: &Clock, _: &mut FistaBuffers, _: usize) -> Result<bool, Error> {
    Err(Error::EncodersNotBuilt)
}

/// Comma-separated instructions of each layer, from consecutive marks.
struct LayerCounts<'a> {
    clock: &'a Clock,
    marks: &'a [u64],
}

impl fmt::Display for LayerCounts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (j, w) in self.marks.windows(2).enumerate() {
            let sep = if j == 0 { "" } else { "," };
            write!(f, "{sep}{}", self.clock.instructions(w[1] - w[0]))?;
        }
        Ok(())
    }
}

/// Output bytes that differ from `want`, and the predicted class (first maximum).
fn compare(out: Output<'_>, want: &[u8]) -> (usize, usize) {
    match out {
        Output::I8(q) => {
            let bad = q
                .iter()
                .zip(want)
                .filter(|&(&a, &b)| a.to_le_bytes()[0] != b)
                .count();
            (
                bad + want.len().abs_diff(q.len()),
                argmax(q.iter().map(|&v| v as f32)),
            )
        }
        Output::F32(y) => {
            let bad = y
                .iter()
                .zip(want.chunks_exact(4))
                .map(|(v, w)| {
                    v.to_le_bytes()
                        .iter()
                        .zip(w)
                        .filter(|(a, b)| a != b)
                        .count()
                })
                .sum::<usize>();
            (
                bad + want.len().abs_diff(4 * y.len()),
                argmax(y.iter().copied()),
            )
        }
    }
}

/// Index of the first largest value (as the trainer's `argmax`).
fn argmax(values: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if i == 0 || v > best.1 {
            best = (i, v);
        }
    }
    best.0
}
