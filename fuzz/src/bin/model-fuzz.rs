//! The stable-Rust fuzzer: mutates the seed models one field at a time with a seeded PRNG
//! ([`kestrel_fuzz::mutate`]) and checks every result ([`kestrel_fuzz::check`]), for a
//! number of seconds or executions. Any panic, broken promise or hang (one execution over
//! a second) is a failure: the file is saved and the exit status is 1.
//!
//!     model-fuzz --corpus DIR [--seconds S | --execs N] [--seed X] [--save DIR]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kestrel_fuzz::{check, mutate, Choices, Outcome, SplitMix};

/// Models up to this many operations also run on the reference kernels.
const REFERENCE_OPS: u64 = 200_000;
/// One execution longer than this is a hang.
const HANG: Duration = Duration::from_secs(1);

struct Args {
    corpus: PathBuf,
    seconds: Option<f64>,
    execs: Option<u64>,
    seed: u64,
    save: PathBuf,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        corpus: PathBuf::new(),
        seconds: None,
        execs: None,
        seed: 1,
        save: PathBuf::from("target/fuzz-failures"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--corpus" => a.corpus = PathBuf::from(value()?),
            "--seconds" => {
                a.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?)
            }
            "--execs" => a.execs = Some(value()?.parse().map_err(|e| format!("--execs: {e}"))?),
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--save" => a.save = PathBuf::from(value()?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.corpus.as_os_str().is_empty() {
        return Err(
            "usage: model-fuzz --corpus DIR [--seconds S | --execs N] [--seed X] [--save DIR]"
                .into(),
        );
    }
    if a.seconds.is_none() && a.execs.is_none() {
        a.seconds = Some(60.0);
    }
    Ok(a)
}

fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("model-fuzz: {e}");
            std::process::exit(2);
        }
    };
    let mut seeds: Vec<(String, Vec<u8>)> = match std::fs::read_dir(&a.corpus) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "kmodel"))
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                (
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                    bytes,
                )
            })
            .collect(),
        Err(e) => {
            eprintln!("model-fuzz: {}: {e}", a.corpus.display());
            std::process::exit(2);
        }
    };
    seeds.sort();
    if seeds.is_empty() {
        eprintln!("model-fuzz: no .kmodel seeds in {} (cargo run -p kestrel-fuzz --bin fuzz-seeds -- DIR)", a.corpus.display());
        std::process::exit(2);
    }
    let mut rng = SplitMix(a.seed);
    let start = Instant::now();
    let (mut execs, mut rejected, mut refused, mut ran, mut failures) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut slowest = Duration::ZERO;
    loop {
        if a.execs.is_some_and(|n| execs >= n)
            || a.seconds
                .is_some_and(|s| start.elapsed().as_secs_f64() >= s)
        {
            break;
        }
        let (name, seed) = &seeds[rng.below(seeds.len())];
        let (bytes, what) = mutate(seed, &mut rng);
        let t = Instant::now();
        let result = std::panic::catch_unwind(|| check(&bytes, REFERENCE_OPS));
        let took = t.elapsed();
        slowest = slowest.max(took);
        execs += 1;
        let failure = match result {
            Ok(Ok(Outcome::Rejected)) => {
                rejected += 1;
                None
            }
            Ok(Ok(Outcome::Refused)) => {
                refused += 1;
                None
            }
            Ok(Ok(Outcome::Ran)) if took > HANG => Some(format!("hang: {took:?}")),
            Ok(Ok(Outcome::Ran)) => {
                ran += 1;
                None
            }
            Ok(Err(broken)) => Some(broken),
            Err(_) => Some("panic".to_string()),
        };
        if let Some(why) = failure {
            failures += 1;
            let _ = std::fs::create_dir_all(&a.save);
            let path = a.save.join(format!("failure-{}-{execs}.kmodel", a.seed));
            let _ = std::fs::write(&path, &bytes);
            eprintln!(
                "FAILURE ({why}) mutating {what} of {name}: saved {}",
                path.display()
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "model-fuzz ({}-bit): {execs} executions in {secs:.1} s ({:.0}/s) on {} seeds: {rejected} \
         rejected by the validator, {refused} refused by the planner, {ran} ran; slowest {:.2} ms; \
         {failures} failures",
        usize::BITS,
        execs as f64 / secs.max(1e-9),
        seeds.len(),
        slowest.as_secs_f64() * 1e3
    );
    if failures > 0 {
        std::process::exit(1);
    }
}
