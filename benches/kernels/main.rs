//! Kernel speed on the host: the reference and the kernel set this CPU runs, on the fixed
//! layer shapes of `kestrel_runtime::check::bench` (the ones the Cortex-M kernel-check
//! bench times too; `--only` picks those whose name contains a string), one thread. Prints the median of `--runs` timings of each (ns per MAC,
//! pooling per output) and the ratio, and fails if a variant's output differs.
//!
//! ```sh
//! cargo run --release -p kestrel-benches --bin kernel_speed -- --runs 201
//! ```

use std::time::Instant;

use kestrel_runtime::check::{bench, WORK_BYTES};
use kestrel_runtime::KernelSet;

const USAGE: &str = "usage: kernel_speed [--runs N] [--only SUBSTRING-OF-A-SHAPE-NAME]";

fn main() -> Result<(), String> {
    let (mut runs, mut only) = (101, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(USAGE)?;
        match flag.as_str() {
            "--runs" => {
                runs = value
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| format!("--runs wants a positive integer, got {value:?}"))?
            }
            "--only" => only = Some(value),
            _ => return Err(USAGE.into()),
        }
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("model name"))?;
            Some(line.split_once(':')?.1.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    println!(
        "kernels: reference vs {} on {cpu}, median of {runs} runs each",
        KernelSet::detect().name()
    );
    println!(
        "{:<36} {:>12} {:>12} {:>8}",
        "shape", "reference", "variant", "ratio"
    );
    let mut work = vec![0u8; WORK_BYTES];
    for shape in bench::Shape::ALL {
        if only
            .as_ref()
            .is_some_and(|o| !shape.name().contains(o.as_str()))
        {
            continue;
        }
        // Nanoseconds of each call, the reference's first.
        let mut ns = [Vec::new(), Vec::new()];
        let mut per = 1;
        for _ in 0..runs {
            let mut k = 0;
            let t = bench::run(shape, &mut work, &mut |f| {
                let start = Instant::now();
                f();
                let took = start.elapsed().as_nanos() as u32;
                ns[k].push(took);
                k += 1;
                took
            });
            if !t.equal {
                return Err(format!("{}: the variant's output differs", shape.name()));
            }
            per = if shape.per_output() {
                t.outputs
            } else {
                t.macs
            };
        }
        let [r, v] = ns.map(|mut ns| {
            ns.sort_unstable();
            ns[ns.len() / 2] as f64 / per as f64
        });
        let unit = if shape.per_output() { "/out" } else { "/MAC" };
        println!(
            "{:<36} {r:>8.3} ns{unit} {v:>8.3} ns{unit} {:>7.1}×",
            shape.name(),
            r / v
        );
    }
    Ok(())
}
