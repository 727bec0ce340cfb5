//! Sparse-coding solvers: agreement between ISTA, FISTA and CoD, against scikit-learn's
//! `Lasso` (a committed fixture), warm starts, stopping, and typed errors.

use kestrel_trainer::backend::{cpu::Cpu, Backend};
use kestrel_trainer::sparse::{self, Problem, SolveOptions, SolveStats};
use kestrel_trainer::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Solve = fn(
    &Cpu,
    &Problem<Cpu>,
    &Vec<f32>,
    &mut Vec<f32>,
    usize,
    &SolveOptions,
) -> kestrel_trainer::Result<SolveStats>;

const SOLVERS: [(&str, Solve); 3] = [
    ("ista", sparse::ista::<Cpu>),
    ("fista", sparse::fista::<Cpu>),
    ("cod", sparse::cod::<Cpu>),
];

fn gaussian(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
    (0..len)
        .map(|_| {
            let (u1, u2) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

/// A random unit-norm dictionary `[k, n]`.
fn dictionary(rng: &mut ChaCha8Rng, k: usize, n: usize) -> Vec<f32> {
    let mut d = gaussian(rng, k * n);
    for j in 0..n {
        let norm = (0..k).map(|r| d[r * n + j].powi(2)).sum::<f32>().sqrt();
        (0..k).for_each(|r| d[r * n + j] /= norm);
    }
    d
}

/// `batch` inputs that are sparse combinations of the atoms plus noise.
fn inputs(rng: &mut ChaCha8Rng, d: &[f32], k: usize, n: usize, batch: usize) -> Vec<f32> {
    let mut x = gaussian(rng, batch * k);
    x.iter_mut().for_each(|v| *v *= 0.1);
    for s in 0..batch {
        for _ in 0..3 {
            let (j, a) = (rng.random_range(0..n), 2.0 * rng.random::<f32>() - 1.0);
            (0..k).for_each(|r| x[s * k + r] += 2.0 * a * d[r * n + j]);
        }
    }
    x
}

fn tight() -> SolveOptions {
    SolveOptions {
        max_iter: 20_000,
        tol: 1e-7,
    }
}

#[test]
fn ista_fista_and_cod_reach_the_same_optimum() {
    let be = Cpu::new();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (k, n, batch) = (16, 24, 9);
    let d = dictionary(&mut rng, k, n);
    let p = Problem::new(&be, &d, k, n, 0.2).unwrap();
    let x = be.upload(&inputs(&mut rng, &d, k, n, batch)).unwrap();
    let mut results = Vec::new();
    for (name, solve) in SOLVERS {
        let mut h = be.zeros(batch * n).unwrap();
        let stats = solve(&be, &p, &x, &mut h, batch, &tight()).unwrap();
        assert!(stats.converged, "{name}: {stats:?}");
        let e = sparse::energy(&be, &p, &x, &h, batch).unwrap();
        results.push((name, h, e));
    }
    let (_, h0, e0) = &results[2]; // CoD as the reference
    let nonzero = h0.iter().filter(|v| **v != 0.0).count();
    assert!(
        nonzero > batch && nonzero < batch * n / 2,
        "{nonzero} non-zeros"
    );
    for (name, h, e) in &results {
        for s in 0..batch {
            let rel = (e[s] - e0[s]).abs() / e0[s];
            assert!(
                rel < 1e-4,
                "{name} sample {s}: energy {} vs {}",
                e[s],
                e0[s]
            );
        }
        let dist = h.iter().zip(h0).map(|(a, b)| (a - b).powi(2)).sum::<f32>();
        let norm = h0.iter().map(|a| a * a).sum::<f32>();
        assert!(
            dist.sqrt() < 1e-2 * norm.sqrt(),
            "{name}: codes differ by {dist}"
        );
    }
}

#[test]
fn energy_is_half_squared_residual_plus_l1() {
    let be = Cpu::new();
    // D = [[1, 0], [0, 2]]: atom 0 = (1, 0), atom 1 = (0, 2).
    let p = Problem::new(&be, &[1.0, 0.0, 0.0, 2.0], 2, 2, 0.5).unwrap();
    assert!((p.lipschitz - 4.0 * sparse::LIPSCHITZ_SAFETY).abs() < 1e-4);
    let x = be.upload(&[1.0, 1.0, 0.0, 0.0]).unwrap();
    let h = be.upload(&[0.5, 0.25, 0.0, -1.0]).unwrap();
    let e = sparse::energy(&be, &p, &x, &h, 2).unwrap();
    // Sample 0: residual (0.5, 0.5), ℓ1 0.75; sample 1: residual (0, 2), ℓ1 1.
    assert_eq!(e, vec![0.5 * 0.5 + 0.5 * 0.75, 0.5 * 4.0 + 0.5]);
}

/// The fixture written by `benches/sparse/make_lasso_fixture.py` (scikit-learn's `Lasso`,
/// `alpha = λ / k`, `fit_intercept = False`, `tol = 1e-12`).
#[derive(serde::Deserialize)]
struct LassoFixture {
    k: usize,
    n: usize,
    lambda: f32,
    dictionary: Vec<f32>,
    inputs: Vec<Vec<f32>>,
    codes: Vec<Vec<f32>>,
}

#[test]
fn solvers_agree_with_sklearn_lasso() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/lasso_sklearn.json"
    );
    let f: LassoFixture = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let be = Cpu::new();
    let batch = f.inputs.len();
    let p = Problem::new(&be, &f.dictionary, f.k, f.n, f.lambda).unwrap();
    let x = be.upload(&f.inputs.concat()).unwrap();
    let want = be.upload(&f.codes.concat()).unwrap();
    let e_want = sparse::energy(&be, &p, &x, &want, batch).unwrap();
    for (name, solve) in SOLVERS {
        let mut h = be.zeros(batch * f.n).unwrap();
        assert!(
            solve(&be, &p, &x, &mut h, batch, &tight())
                .unwrap()
                .converged
        );
        let e = sparse::energy(&be, &p, &x, &h, batch).unwrap();
        for s in 0..batch {
            let rel = (e[s] - e_want[s]).abs() / e_want[s];
            assert!(
                rel < 1e-5,
                "{name} sample {s}: {} vs sklearn {}",
                e[s],
                e_want[s]
            );
            for j in 0..f.n {
                let (a, b) = (h[s * f.n + j], f.codes[s][j]);
                assert!(
                    (a - b).abs() < 1e-3,
                    "{name} sample {s} atom {j}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn warm_start_needs_fewer_iterations_than_cold() {
    let be = Cpu::new();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (k, n, batch) = (16, 24, 8);
    let d = dictionary(&mut rng, k, n);
    let p = Problem::new(&be, &d, k, n, 0.2).unwrap();
    let xs = inputs(&mut rng, &d, k, n, batch);
    let x = be.upload(&xs).unwrap();
    // The warm start: the optimum of slightly perturbed inputs.
    let near: Vec<f32> = xs.iter().map(|v| v + 0.01 * v.signum()).collect();
    let near = be.upload(&near).unwrap();
    let o = SolveOptions {
        max_iter: 5000,
        tol: 1e-5,
    };
    for (name, solve) in SOLVERS {
        let mut cold = be.zeros(batch * n).unwrap();
        let c = solve(&be, &p, &x, &mut cold, batch, &o).unwrap();
        let mut warm = be.zeros(batch * n).unwrap();
        solve(&be, &p, &near, &mut warm, batch, &o).unwrap();
        let w = solve(&be, &p, &x, &mut warm, batch, &o).unwrap();
        assert!(c.converged && w.converged, "{name}");
        assert!(
            w.iterations < c.iterations,
            "{name}: warm {} vs cold {} iterations",
            w.iterations,
            c.iterations
        );
    }
}

#[test]
fn tolerance_stops_early_and_the_cap_reports_not_converged() {
    let be = Cpu::new();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (k, n, batch) = (16, 24, 4);
    let d = dictionary(&mut rng, k, n);
    let p = Problem::new(&be, &d, k, n, 0.2).unwrap();
    let x = be.upload(&inputs(&mut rng, &d, k, n, batch)).unwrap();
    for (name, solve) in SOLVERS {
        let run = |tol: f32, max_iter: usize| {
            let mut h = be.zeros(batch * n).unwrap();
            solve(&be, &p, &x, &mut h, batch, &SolveOptions { max_iter, tol }).unwrap()
        };
        let loose = run(1e-2, 10_000);
        let strict = run(1e-6, 10_000);
        assert!(loose.converged && strict.converged, "{name}");
        assert!(
            loose.iterations < strict.iterations,
            "{name}: {loose:?} {strict:?}"
        );
        let capped = run(1e-6, 2);
        assert_eq!(
            capped,
            SolveStats {
                iterations: 2,
                converged: false
            },
            "{name}"
        );
    }
}

#[test]
fn bad_input_gives_typed_errors() {
    let be = Cpu::new();
    let d = [1.0, 0.0, 0.0, 1.0];
    let field = |r: kestrel_trainer::Result<Problem<Cpu>>| match r {
        Err(Error::Sparse { field, .. }) => field,
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("accepted"),
    };
    for lambda in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert_eq!(field(Problem::new(&be, &d, 2, 2, lambda)), "lambda");
    }
    assert_eq!(field(Problem::new(&be, &d, 2, 0, 0.1)), "d");
    assert_eq!(field(Problem::new(&be, &d[..3], 2, 2, 0.1)), "d");
    assert_eq!(
        field(Problem::new(&be, &[1.0, f32::NAN, 0.0, 1.0], 2, 2, 0.1)),
        "d"
    );
    assert_eq!(
        field(Problem::new(&be, &[1.0, 0.0, 1.0, 0.0], 2, 2, 0.1)),
        "atom 1"
    );
    let err = Problem::new(&be, &d[..3], 2, 2, 0.1)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("expected k·n = 2·2 = 4 values, got 3"),
        "{err}"
    );

    let mut p = Problem::new(&be, &d, 2, 2, 0.1).unwrap();
    assert!(matches!(p.set_lambda(-2.0), Err(Error::Sparse { .. })));
    let x = be.upload(&[1.0; 4]).unwrap();
    let o = SolveOptions::default();
    for (name, solve) in SOLVERS {
        let mut short = be.zeros(3).unwrap();
        let e = solve(&be, &p, &x, &mut short, 2, &o).unwrap_err();
        assert!(
            matches!(&e, Error::Sparse { field, .. } if field == "h"),
            "{name}: {e}"
        );
        let mut h = be.zeros(4).unwrap();
        let e = solve(&be, &p, &x, &mut h, 3, &o).unwrap_err();
        assert!(
            matches!(&e, Error::Sparse { field, .. } if field == "x"),
            "{name}: {e}"
        );
        for bad in [
            SolveOptions {
                max_iter: 0,
                tol: 1e-4,
            },
            SolveOptions {
                max_iter: 10,
                tol: f32::NAN,
            },
            SolveOptions {
                max_iter: 10,
                tol: -1.0,
            },
        ] {
            assert!(
                solve(&be, &p, &x, &mut h, 2, &bad).is_err(),
                "{name}: {bad:?}"
            );
        }
    }
    let h = be.zeros(5).unwrap();
    assert!(matches!(
        sparse::energy(&be, &p, &x, &h, 2),
        Err(Error::Sparse { .. })
    ));
}

/// Dictionary learning recovers structure: on inputs made of a few atoms of a hidden
/// dictionary, the mean energy falls epoch after epoch, every learned atom has unit norm,
/// and the same seed gives the same bits.
#[test]
fn dictionary_learning_lowers_the_energy_and_keeps_unit_atoms() {
    let (k, n, count) = (16, 12, 400);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let hidden = dictionary(&mut rng, k, n);
    let x = inputs(&mut rng, &hidden, k, n, count);
    let opts = sparse::DictOptions {
        epochs: 6,
        batch: 50,
        lr: 1.0,
        seed: 3,
        ..Default::default()
    };
    let (d, log) = sparse::learn_dictionary(&Cpu, &x, k, n, 0.1, &opts).unwrap();
    assert_eq!(log.len(), 6);
    let first = log[0].energy;
    let last = log[5].energy;
    assert!(last < 0.8 * first, "energy {first} → {last}: {log:?}");
    for w in log.windows(2) {
        assert!(w[1].energy <= w[0].energy * 1.02, "energy rose: {log:?}");
    }
    for j in 0..n {
        let norm = (0..k).map(|r| d[r * n + j].powi(2)).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "atom {j} norm {norm}");
    }
    let nz = log[5].nonzero_fraction;
    assert!(nz > 0.0 && nz < 0.9, "non-zeros {nz}");
    let (again, _) = sparse::learn_dictionary(&Cpu, &x, k, n, 0.1, &opts).unwrap();
    assert_eq!(d, again, "same seed, same dictionary bits");
    let err = sparse::learn_dictionary(&Cpu, &x, k, 0, 0.1, &opts).unwrap_err();
    assert!(matches!(err, Error::Sparse { .. }), "{err}");
}
