#!/usr/bin/env bash
# Trains the same LeNet-5 for one epoch, batch 64, 55,000 images, in Kestrel and in PyTorch
# (CPU, from PyPI), in one run, and prints the time ratio. Both use lenet.toml's recipe
# (cosine decay; no flips, the default since issue 10); only the training loop is timed. Repeats RUNS times and reports
# medians, because this machine is noisy.
#   benches/train_vs_pytorch.sh [DATA_DIR]      (RUNS=3 THREADS=$(nproc) by default)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-/usr/share/datasets/fashion-mnist}
RUNS=${RUNS:-3}
THREADS=${THREADS:-$(nproc)}
VENV=${VENV:-.venv-bench}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import torch, numpy' 2>/dev/null; then
  echo "installing PyTorch (CPU use) into $VENV ..." >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch numpy
fi
cargo build --release -q -p kestrel-trainer
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
: > "$tmp/k"; : > "$tmp/p"
for r in $(seq "$RUNS"); do
  ./target/release/kestrel train --arch lenet --data "$DATA" --epochs 1 --batch 64 --threads "$THREADS" \
      --out "$tmp/ck" --seed "$r" > "$tmp/klog"
  grep -o 'val err.* \([0-9.]*\)s' "$tmp/klog" | grep -o '[0-9.]*s$' | tr -d s >> "$tmp/k"
  "$VENV/bin/python" benches/pytorch_lenet.py --data "$DATA" --epochs 1 --batch 64 --threads "$THREADS" --schedule cosine > "$tmp/plog"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["epoch_seconds"][0])' "$tmp/plog" >> "$tmp/p"
  echo "run $r: kestrel $(tail -1 "$tmp/k")s  pytorch $(tail -1 "$tmp/p")s" >&2
done
k=$(median < "$tmp/k"); p=$(median < "$tmp/p")
ptv=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["torch"])' "$tmp/plog")
echo "lenet, 1 epoch, batch 64, 55000 images, $THREADS threads, median of $RUNS runs"
echo "kestrel  ${k}s"
echo "pytorch  ${p}s (torch $ptv)"
python3 -c "import sys; k,p=float(sys.argv[1]),float(sys.argv[2]); print(f'ratio kestrel/pytorch = {k/p:.2f}  ({\"kestrel faster\" if k<p else \"pytorch faster\"})')" "$k" "$p"
