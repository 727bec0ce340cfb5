#!/usr/bin/env python3
"""Writes trainer/tests/fixtures/lasso_sklearn.json: scikit-learn's Lasso optimum for a few
inputs on a random unit-norm dictionary, for trainer/tests/sparse.rs.

Our energy is ½‖x − D h‖² + λ‖h‖₁ with D [k, n]; sklearn's Lasso minimizes
1/(2·n_samples)‖y − X w‖² + α‖w‖₁ with X = D (n_samples = k rows), so α = λ / k.

Usage: python3 benches/sparse/make_lasso_fixture.py [OUT]   (needs scikit-learn; CI does not)
"""
import json
import sys

import numpy as np
import sklearn
from sklearn.linear_model import Lasso

K, N, BATCH, LAMBDA, SEED = 12, 20, 6, 0.15, 7


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "trainer/tests/fixtures/lasso_sklearn.json"
    rng = np.random.default_rng(SEED)
    d = rng.standard_normal((K, N)).astype(np.float32)
    d /= np.linalg.norm(d, axis=0, keepdims=True)
    x = 0.1 * rng.standard_normal((BATCH, K)).astype(np.float32)
    for s in range(BATCH):
        for j in rng.choice(N, 3, replace=False):
            x[s] += rng.uniform(-2, 2) * d[:, j]
    x = x.astype(np.float32)
    codes = []
    for s in range(BATCH):
        m = Lasso(alpha=LAMBDA / K, fit_intercept=False, tol=1e-12, max_iter=1_000_000)
        m.fit(d.astype(np.float64), x[s].astype(np.float64))
        codes.append([float(v) for v in m.coef_])
    fixture = {
        "generator": f"benches/sparse/make_lasso_fixture.py, scikit-learn {sklearn.__version__}, "
        f"Lasso(alpha=lambda/k, fit_intercept=False, tol=1e-12), seed {SEED}",
        "k": K,
        "n": N,
        "lambda": LAMBDA,
        "dictionary": [float(v) for v in d.reshape(-1)],
        "inputs": [[float(v) for v in row] for row in x],
        "codes": codes,
    }
    with open(out, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
