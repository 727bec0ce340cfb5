//! Kestrel's side of `benches/sparse_vs_sklearn.sh` (sparse coding and dictionary learning
//! against scikit-learn, one thread). Subcommands, each printing one JSON object on stdout:
//!
//! - `prepare --data DIR --out DIR [--n 10000] [--size 9] [--atoms 64] [--lambda 0.5]`:
//!   samples `n` contrast-normalized training patches and `n` held-out patches, learns the
//!   coding benchmark's dictionary (Kestrel, 5 epochs, seed 1) and writes `train.npy`,
//!   `heldout.npy` (`[n, size²]` f32) and `dict.npy` (`D [size², atoms]`, column = atom).
//! - `solve --dir DIR --lambda L [--reference E] [--repeats 5] [--rel 1e-4]`: codes
//!   `train.npy` on `dict.npy` with each solver (ISTA, FISTA, CoD) from zero, picks the
//!   loosest tolerance whose mean energy is within `rel` of the optimum (the smaller of
//!   `E` and Kestrel's own tight CoD solve), and times it (median of `repeats`, including
//!   `Problem::new`: Gram matrix and `L`).
//! - `learn --dir DIR --lambda L --epochs 1,2,4 --atoms 64`: `learn_dictionary` (default
//!   options) on `train.npy` for each epoch count from scratch, timing each call, and
//!   writes `kestrel_dict_e{E}.npy` (`D [size², atoms]`) for the held-out evaluation.

use std::path::{Path, PathBuf};
use std::time::Instant;

use kestrel_trainer::backend::cpu::Cpu;
use kestrel_trainer::backend::Backend;
use kestrel_trainer::checkpoint::write_atomic;
use kestrel_trainer::patches::{Dataset, Part, PatchOptions, DEFAULT_CONTRAST_EPS};
use kestrel_trainer::sparse::{
    self, learn_dictionary, DictOptions, Problem, SolveOptions, SolveStats,
};
use kestrel_trainer::{Error, Result};

/// Tolerances tried, loosest first, until a solver's mean energy is close enough.
const TOLS: [f32; 12] = [
    1e-2, 5e-3, 2e-3, 1e-3, 5e-4, 2e-4, 1e-4, 5e-5, 2e-5, 1e-5, 3e-6, 1e-6,
];
/// Iteration cap of every solve (never reached in practice; reported if it is).
const MAX_ITER: usize = 100_000;

fn main() {
    if let Err(e) = run(std::env::args().skip(1).collect()) {
        eprintln!("sparse_vs_sklearn: {e}");
        std::process::exit(1);
    }
}

fn other(msg: impl Into<String>) -> Error {
    Error::Other(msg.into())
}

/// `--name value` pairs after the subcommand.
struct Args(Vec<(String, String)>);

impl Args {
    fn parse(rest: &[String]) -> Result<Args> {
        let mut v = Vec::new();
        let mut it = rest.iter();
        while let Some(flag) = it.next() {
            let name = flag
                .strip_prefix("--")
                .ok_or_else(|| other(format!("expected a --flag, got {flag:?}")))?;
            let value = it
                .next()
                .ok_or_else(|| other(format!("--{name}: expected a value, got none")))?;
            v.push((name.to_string(), value.clone()));
        }
        Ok(Args(v))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn need(&self, name: &str) -> Result<&str> {
        self.get(name)
            .ok_or_else(|| other(format!("--{name}: required, got nothing")))
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.get(name) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| other(format!("--{name}: expected a number, got {s:?}"))),
        }
    }
}

fn run(argv: Vec<String>) -> Result<()> {
    let (cmd, rest) = argv
        .split_first()
        .ok_or_else(|| other("expected a subcommand (prepare | solve | learn), got none"))?;
    let a = Args::parse(rest)?;
    match cmd.as_str() {
        "prepare" => prepare(&a),
        "solve" => solve(&a),
        "learn" => learn(&a),
        _ => Err(other(format!(
            "expected a subcommand (prepare | solve | learn), got {cmd:?}"
        ))),
    }
}

fn prepare(a: &Args) -> Result<()> {
    let data = PathBuf::from(a.need("data")?);
    let out = PathBuf::from(a.need("out")?);
    let n: usize = a.num("n", 10_000)?;
    let size: usize = a.num("size", 9)?;
    let atoms: usize = a.num("atoms", 64)?;
    let lambda: f32 = a.num("lambda", 0.5)?;
    std::fs::create_dir_all(&out).map_err(|e| other(format!("{}: {e}", out.display())))?;
    let ds = Dataset::open(&data)?;
    let popts = PatchOptions {
        size,
        contrast: Some(DEFAULT_CONTRAST_EPS),
    };
    let k = size * size;
    let train = ds.sample(Part::Train, n, &popts, 1)?;
    let held = ds.sample(Part::HeldOut, n, &popts, 2)?;
    write_npy(&out.join("train.npy"), &train.data, n, k)?;
    write_npy(&out.join("heldout.npy"), &held.data, n, k)?;
    let opts = DictOptions {
        epochs: 5,
        seed: 1,
        ..DictOptions::default()
    };
    let (d, _) = learn_dictionary(&Cpu::new(), &train.data, k, atoms, lambda, &opts)?;
    write_npy(&out.join("dict.npy"), &d, k, atoms)?;
    println!("{{\"n\": {n}, \"k\": {k}, \"atoms\": {atoms}, \"lambda\": {lambda}}}");
    Ok(())
}

/// One cold-start solve; returns (stats, mean energy, seconds including `Problem::new`).
fn solve_once(
    be: &Cpu,
    solver: &str,
    d: &[f32],
    x: &[f32],
    shape: (usize, usize, usize),
    lambda: f32,
    o: &SolveOptions,
) -> Result<(SolveStats, f64, f64)> {
    let (batch, k, n) = shape;
    let xt = be.upload(x)?;
    let mut h = be.zeros(batch * n)?;
    let t = Instant::now();
    let p = Problem::new(be, d, k, n, lambda)?;
    let stats = match solver {
        "ista" => sparse::ista(be, &p, &xt, &mut h, batch, o)?,
        "fista" => sparse::fista(be, &p, &xt, &mut h, batch, o)?,
        "cod" => sparse::cod(be, &p, &xt, &mut h, batch, o)?,
        _ => return Err(other(format!("unknown solver {solver:?}"))),
    };
    let secs = t.elapsed().as_secs_f64();
    let e = sparse::energy(be, &p, &xt, &h, batch)?;
    let mean = e.iter().map(|&v| v as f64).sum::<f64>() / batch.max(1) as f64;
    Ok((stats, mean, secs))
}

fn solve(a: &Args) -> Result<()> {
    let dir = PathBuf::from(a.need("dir")?);
    let lambda: f32 = a.num("lambda", 0.5)?;
    let repeats: usize = a.num("repeats", 5)?;
    let rel: f64 = a.num("rel", 1e-4)?;
    let (x, batch, k) = read_npy(&dir.join("train.npy"))?;
    let (d, dk, n) = read_npy(&dir.join("dict.npy"))?;
    if dk != k {
        return Err(other(format!(
            "dict.npy: expected {k} rows (the patch length), got {dk}"
        )));
    }
    let be = Cpu::new();
    let shape = (batch, k, n);
    let tight = SolveOptions {
        max_iter: MAX_ITER,
        tol: 1e-7,
    };
    let (_, own_ref, _) = solve_once(&be, "cod", &d, &x, shape, lambda, &tight)?;
    let reference = match a.get("reference") {
        Some(_) => own_ref.min(a.num("reference", f64::INFINITY)?),
        None => own_ref,
    };
    let mut rows = Vec::new();
    for solver in ["ista", "fista", "cod"] {
        let mut chosen = None;
        for &tol in &TOLS {
            let o = SolveOptions {
                max_iter: MAX_ITER,
                tol,
            };
            let (stats, e, _) = solve_once(&be, solver, &d, &x, shape, lambda, &o)?;
            if (e - reference) / reference <= rel {
                chosen = Some((o, stats, e));
                break;
            }
        }
        let Some((o, stats, e)) = chosen else {
            rows.push(format!(
                "{{\"solver\": \"{solver}\", \"reached\": false, \"tol\": {}}}",
                TOLS[TOLS.len() - 1]
            ));
            continue;
        };
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats.max(1) {
            times.push(solve_once(&be, solver, &d, &x, shape, lambda, &o)?.2);
        }
        times.sort_by(f64::total_cmp);
        rows.push(format!(
            "{{\"solver\": \"{solver}\", \"reached\": true, \"tol\": {}, \"iterations\": {}, \
             \"converged\": {}, \"energy\": {e}, \"rel_gap\": {}, \"median_s\": {}, \
             \"times_s\": {times:?}}}",
            o.tol,
            stats.iterations,
            stats.converged,
            (e - reference) / reference,
            times[times.len() / 2],
        ));
    }
    println!(
        "{{\"batch\": {batch}, \"k\": {k}, \"atoms\": {n}, \"lambda\": {lambda}, \
         \"kestrel_reference\": {own_ref}, \"reference\": {reference}, \"solvers\": [{}]}}",
        rows.join(", ")
    );
    Ok(())
}

fn learn(a: &Args) -> Result<()> {
    let dir = PathBuf::from(a.need("dir")?);
    let lambda: f32 = a.num("lambda", 0.5)?;
    let atoms: usize = a.num("atoms", 64)?;
    let epochs: Vec<usize> = a
        .need("epochs")?
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| other(format!("--epochs: expected numbers like 1,2,4, got {s:?}")))
        })
        .collect::<Result<_>>()?;
    let (x, _, k) = read_npy(&dir.join("train.npy"))?;
    let be = Cpu::new();
    let mut rows = Vec::new();
    for &e in &epochs {
        let opts = DictOptions {
            epochs: e,
            ..DictOptions::default()
        };
        let t = Instant::now();
        let (d, log) = learn_dictionary(&be, &x, k, atoms, lambda, &opts)?;
        let secs = t.elapsed().as_secs_f64();
        let path = dir.join(format!("kestrel_dict_e{e}.npy"));
        write_npy(&path, &d, k, atoms)?;
        let train_e = log.last().map_or(f32::NAN, |l| l.energy);
        rows.push(format!(
            "{{\"epochs\": {e}, \"seconds\": {secs}, \"train_energy\": {train_e}, \"path\": \"{}\"}}",
            path.display()
        ));
    }
    println!("{{\"runs\": [{}]}}", rows.join(", "));
    Ok(())
}

/// Writes a C-order little-endian f32 `.npy` (format 1.0) of shape `[rows, cols]`, atomically.
fn write_npy(path: &Path, v: &[f32], rows: usize, cols: usize) -> Result<()> {
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + v.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    write_atomic(path, &bytes)
}

/// Reads a 2-D C-order little-endian f32 `.npy` (as [`write_npy`] writes): (values, rows, cols).
fn read_npy(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let bad = |what: String| other(format!("{}: {what}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad(
            "expected the .npy magic \\x93NUMPY, got other bytes".into()
        ));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(format!("expected .npy version 1-3, got {v}"))),
    };
    let header = bytes
        .get(start..start + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated or non-UTF-8 header".into()))?;
    if !header.contains("'descr': '<f4'") || !header.contains("'fortran_order': False") {
        return Err(bad(format!(
            "expected descr '<f4' and fortran_order False, got {header:?}"
        )));
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad(format!("no shape in header {header:?}")))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad(format!("bad shape {shape:?}"))))
        .collect::<Result<_>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad(format!("expected a 2-D array, got shape ({shape})")));
    };
    let body = &bytes[start + hlen..];
    if body.len() != rows * cols * 4 {
        return Err(bad(format!(
            "expected {rows}·{cols}·4 = {} data bytes, got {}",
            rows * cols * 4,
            body.len()
        )));
    }
    let v = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((v, rows, cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_and_bad_files() {
        let dir = std::env::temp_dir().join(format!("kestrel-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.npy");
        let v: Vec<f32> = (0..15).map(|i| i as f32 * 0.5 - 3.0).collect();
        write_npy(&path, &v, 3, 5).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((bytes.len() - v.len() * 4) % 64, 0, "header padded to 64");
        assert_eq!(read_npy(&path).unwrap(), (v.clone(), 3, 5));
        // Truncated data and a wrong dtype are typed errors naming the file.
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        let e = read_npy(&path).unwrap_err().to_string();
        assert!(
            e.contains("a.npy") && e.contains("60 data bytes, got 56"),
            "{e}"
        );
        let mut f8 = bytes.clone();
        let at = f8.windows(3).position(|w| w == b"<f4").unwrap();
        f8[at + 2] = b'8';
        std::fs::write(&path, &f8).unwrap();
        let e = read_npy(&path).unwrap_err().to_string();
        assert!(e.contains("expected descr '<f4'"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn args_are_checked() {
        let a = |s: &[&str]| run(s.iter().map(|s| s.to_string()).collect());
        assert!(a(&[]).unwrap_err().to_string().contains("subcommand"));
        assert!(a(&["fly"]).unwrap_err().to_string().contains("\"fly\""));
        let e = a(&["solve", "--dir"]).unwrap_err().to_string();
        assert!(e.contains("--dir: expected a value"), "{e}");
        let e = a(&["learn", "--dir", "/nonexistent", "--epochs", "1,x"]);
        assert!(e.unwrap_err().to_string().contains("\"x\""));
    }
}
