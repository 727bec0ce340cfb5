#!/usr/bin/env python3
"""scikit-learn's side of benches/sparse_vs_sklearn.sh, and its report.

Energy, for every method: E(x, h) = ½‖x − D h‖² + λ‖h‖₁ per patch, D [k, n] (column = atom),
averaged over the patches, evaluated here in float64.

scikit-learn's scalings (1.9): `SparseCoder(transform_alpha=a, transform_algorithm="lasso_cd")`
calls `sparse_encode(..., alpha=a)`, which fits `Lasso(alpha=a / n_features, tol=1e-8)`;
Lasso minimizes 1/(2·n_features)‖x − D h‖² + (a / n_features)‖h‖₁ = E / n_features with
λ = a, so `transform_alpha = λ` (not λ/k). `MiniBatchDictionaryLearning(alpha=a)` minimizes
Σ ½‖x − D h‖² + a‖h‖₁ with atoms of norm ≤ 1, so `alpha = λ` too.

Usage (the shell script runs these):
  sklearn_side.py solve DIR LAMBDA REPEATS           -> JSON on stdout
  sklearn_side.py learn DIR LAMBDA EPOCHS ALGOS      -> JSON (MiniBatchDictionaryLearning)
  sklearn_side.py evaluate DIR LAMBDA KESTREL_JSON   -> JSON (held-out energy of Kestrel's D)
  sklearn_side.py report SOLVE_SK SOLVE_KESTREL LEARN_SK LEARN_KESTREL
"""
import json
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.decomposition import MiniBatchDictionaryLearning, SparseCoder, sparse_encode


def energy(x, d, h, lam):
    """Mean of ½‖x − D h‖² + λ‖h‖₁ in float64; x [m, k], d [k, n], h [m, n]."""
    x, d, h = (np.asarray(a, dtype=np.float64) for a in (x, d, h))
    r = x - h @ d.T
    return float(np.mean(0.5 * np.sum(r * r, axis=1) + lam * np.sum(np.abs(h), axis=1)))


def converged_energy(x, d, lam):
    """Held-out energy with converged codes: lasso_cd (tol 1e-8) in float64."""
    x64, d64 = np.asarray(x, np.float64), np.asarray(d, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = sparse_encode(x64, d64.T, algorithm="lasso_cd", alpha=lam, max_iter=100_000)
    return energy(x64, d64, h, lam)


def solve(dirname, lam, repeats):
    x = np.load(f"{dirname}/train.npy")
    d = np.load(f"{dirname}/dict.npy")
    ref = converged_energy(x, d, lam)
    # lasso_cd's fixed tol=1e-8 (duality gap) is out of float32's reach: on float32 data
    # many patches run to transform_max_iter (ConvergenceWarning) and it is ~10x slower, so
    # the baseline is float64 (sklearn's default dtype); float32 is reported beside it.
    cd = {}
    for dtype in (np.float64, np.float32):
        coder = SparseCoder(
            dictionary=d.T.astype(dtype), transform_algorithm="lasso_cd", transform_alpha=lam,
            transform_max_iter=1000,
        )
        xd, times, h = x.astype(dtype), [], None
        for _ in range(repeats if dtype is np.float64 else 1):
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                h = coder.transform(xd)
            times.append(time.perf_counter() - t)
        cd[np.dtype(dtype).name] = {"energy": energy(x, d, h, lam),
                                    "median_s": statistics.median(times), "times_s": times}
    # numpy FISTA on the Gram matrix (float32, as the patches), for scale.
    fista_times, fista_e, fista_it = [], None, None
    gram, c = d.T @ d, x @ d
    lip = 1.01 * float(np.linalg.eigvalsh(gram.astype(np.float64))[-1])
    for _ in range(repeats):
        t = time.perf_counter()
        hh = np.zeros((x.shape[0], d.shape[1]), np.float32)
        y, tk = hh.copy(), 1.0
        for it in range(1, 5001):
            z = y - (y @ gram - c) / lip
            new = np.sign(z) * np.maximum(np.abs(z) - lam / lip, 0)
            tn = (1 + (1 + 4 * tk * tk) ** 0.5) / 2
            y = new + ((tk - 1) / tn) * (new - hh)
            hh, tk = new, tn
            if it % 5 == 0 and (energy(x, d, hh, lam) - ref) / ref <= 1e-4:
                break
        fista_times.append(time.perf_counter() - t)
        fista_e, fista_it = energy(x, d, hh, lam), it
    return {
        "reference": ref,
        "lasso_cd": cd["float64"],
        "lasso_cd_f32": cd["float32"],
        "numpy_fista": {"energy": fista_e, "iterations": fista_it,
                        "median_s": statistics.median(fista_times), "times_s": fista_times},
    }


def learn(dirname, lam, epochs, algos):
    x = np.load(f"{dirname}/train.npy")
    held = np.load(f"{dirname}/heldout.npy")
    runs = []
    for algo in algos:
        for e in epochs:
            m = MiniBatchDictionaryLearning(
                n_components=64, alpha=lam, batch_size=256, max_iter=e, fit_algorithm=algo,
                tol=0.0, max_no_improvement=None, random_state=0, shuffle=True,
            )
            # float64, like the coding baseline: on float32 lasso_cd's tol=1e-8 is out of
            # reach and its inner solves run to max_iter.
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m.fit(x.astype(np.float64))
            secs = time.perf_counter() - t
            d = m.components_.T  # [k, n]
            runs.append({"algo": algo, "epochs": e, "seconds": secs,
                         "heldout_energy": converged_energy(held, d, lam),
                         "n_steps": int(m.n_steps_)})
    return {"runs": runs}


def evaluate(dirname, lam, kestrel_json):
    held = np.load(f"{dirname}/heldout.npy")
    runs = json.load(open(kestrel_json))["runs"]
    for r in runs:
        r["heldout_energy"] = converged_energy(held, np.load(r["path"]), lam)
    return {"runs": runs}


def report(sk_solve, ke_solve, sk_learn, ke_learn):
    sk, ke = json.load(open(sk_solve)), json.load(open(ke_solve))
    ref = min(sk["reference"], ke["kestrel_reference"])
    base = sk["lasso_cd"]["median_s"]
    print(f"Sparse coding: {ke['batch']} patches of {ke['k']} values, {ke['atoms']} atoms, "
          f"lambda {ke['lambda']}, one thread; optimum (mean energy) {ref:.6f}")
    print(f"{'solver':<28} {'setting':>12} {'iters':>6} {'mean energy':>12} {'rel gap':>10} "
          f"{'median s':>9} {'vs lasso_cd':>11}")
    rows = [("sklearn SparseCoder lasso_cd", "f64 tol 1e-8", "-", sk["lasso_cd"]["energy"],
             sk["lasso_cd"]["median_s"]),
            ("  same on float32 (1 run)", "f32 tol 1e-8", "-", sk["lasso_cd_f32"]["energy"],
             sk["lasso_cd_f32"]["median_s"])]
    nf = sk["numpy_fista"]
    rows.append(("numpy FISTA (f32, Gram)", "gap<=1e-4", nf["iterations"], nf["energy"],
                 nf["median_s"]))
    for s in ke["solvers"]:
        if s["reached"]:
            rows.append((f"kestrel {s['solver']}", f"tol {s['tol']:g}", s["iterations"],
                         s["energy"], s["median_s"]))
        else:
            print(f"kestrel {s['solver']}: did not reach 1e-4 of the optimum by tol {s['tol']:g}")
    for name, setting, it, e, t in rows:
        print(f"{name:<28} {setting:>12} {it!s:>6} {e:12.6f} {(e - ref) / ref:10.2e} "
              f"{t:9.4f} {base / t:10.2f}x")
    best = min((r for r in rows if r[0].startswith("kestrel")), key=lambda r: r[4], default=None)
    if best:
        ok = (best[3] - ref) / ref <= 1e-4
        print(f"fastest Kestrel solver: {best[0]}, {base / best[4]:.2f}x faster than lasso_cd"
              f" ({'within' if ok else 'NOT within'} 1e-4 of the optimum)")

    skl, kel = json.load(open(sk_learn))["runs"], json.load(open(ke_learn))["runs"]
    print("\nDictionary learning: held-out mean energy (converged lasso_cd codes) vs wall time")
    print(f"{'method':<34} {'epochs':>6} {'seconds':>9} {'held-out E':>11}")
    curves = {}
    for r in kel:
        curves.setdefault("kestrel learn_dictionary (cod)", []).append(r)
    for r in skl:
        curves.setdefault(f"sklearn MiniBatchDL ({r['algo']})", []).append(r)
    for name, rs in curves.items():
        for r in rs:
            print(f"{name:<34} {r['epochs']:>6} {r['seconds']:9.3f} {r['heldout_energy']:11.5f}")
    # The lowest energy every curve reaches, then each curve's first time at or below it.
    target = max(min(r["heldout_energy"] for r in rs) for rs in curves.values())
    print(f"\ntarget held-out energy (the lowest every method reaches): {target:.5f}")
    first = {}
    for name, rs in curves.items():
        hit = [r["seconds"] for r in rs if r["heldout_energy"] <= target]
        first[name] = min(hit)
        print(f"{name:<34} reaches it in {first[name]:8.3f} s")
    k = first.pop("kestrel learn_dictionary (cod)")
    for name, t in first.items():
        print(f"time ratio {name} / kestrel: {t / k:.2f}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "solve":
        out = solve(args[0], float(args[1]), int(args[2]))
    elif cmd == "learn":
        out = learn(args[0], float(args[1]), [int(e) for e in args[2].split(",")],
                    args[3].split(","))
    elif cmd == "evaluate":
        out = evaluate(args[0], float(args[1]), args[2])
    elif cmd == "report":
        return report(*args)
    else:
        sys.exit(f"unknown subcommand {cmd!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
