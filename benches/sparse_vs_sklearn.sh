#!/usr/bin/env bash
# Sparse coding and dictionary learning speed against scikit-learn, one thread, same data:
# 10k contrast-normalized 9×9 Fashion-MNIST patches (+10k held out), 64 atoms, same λ.
# 1. Coding: Kestrel's ISTA/FISTA/CoD (loosest tolerance within 1e-4 relative of the optimum
#    mean energy) vs SparseCoder(transform_algorithm="lasso_cd") and a numpy FISTA; median of
#    REPEATS runs each, ratios to lasso_cd.
# 2. Learning: Kestrel learn_dictionary vs MiniBatchDictionaryLearning, each run from scratch
#    for EPOCHS epochs; held-out mean energy with converged (lasso_cd) codes vs wall time; the
#    ratio of times to reach the lowest held-out energy every method reaches.
#   benches/sparse_vs_sklearn.sh [DATA_DIR]   (LAMBDA=0.5 REPEATS=5 EPOCHS=1,2,4,8 ALGOS=cd)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import sklearn, numpy" 2> /dev/null; then
  echo "skipped: scikit-learn not installed (python3 -c 'import sklearn, numpy' failed)"
  exit 0
fi
DATA=${1:-/usr/share/datasets/fashion-mnist}
LAMBDA=${LAMBDA:-0.5}
REPEATS=${REPEATS:-5}
EPOCHS=${EPOCHS:-1,2,4,8}
ALGOS=${ALGOS:-cd}
OUT=${OUT:-target/sparse-vs-sklearn}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 RAYON_NUM_THREADS=1
mkdir -p "$OUT"
RUSTFLAGS="-C target-cpu=native" cargo build --release -q -p kestrel-benches --bin sparse_vs_sklearn --target-dir target/native
B=target/native/release/sparse_vs_sklearn
PY=benches/sparse/sklearn_side.py
echo "CPU: $(lscpu | grep 'Model name' | cut -d: -f2 | sed 's/^ *//'), one thread"
[ -f "$OUT/dict.npy" ] || $B prepare --data "$DATA" --out "$OUT" --lambda "$LAMBDA" > "$OUT/prepare.json"
python3 $PY solve "$OUT" "$LAMBDA" "$REPEATS" > "$OUT/solve-sklearn.json"
REF=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['reference'])" "$OUT/solve-sklearn.json")
$B solve --dir "$OUT" --lambda "$LAMBDA" --reference "$REF" --repeats "$REPEATS" > "$OUT/solve-kestrel.json"
$B learn --dir "$OUT" --lambda "$LAMBDA" --epochs "$EPOCHS" > "$OUT/learn-kestrel-raw.json"
python3 $PY evaluate "$OUT" "$LAMBDA" "$OUT/learn-kestrel-raw.json" > "$OUT/learn-kestrel.json"
python3 $PY learn "$OUT" "$LAMBDA" "$EPOCHS" "$ALGOS" > "$OUT/learn-sklearn.json"
python3 $PY report "$OUT/solve-sklearn.json" "$OUT/solve-kestrel.json" \
  "$OUT/learn-sklearn.json" "$OUT/learn-kestrel.json"
