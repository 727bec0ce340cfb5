#!/usr/bin/env bash
# The whole Kestrel pipeline on Fashion-MNIST: install what is missing, train lenet, export
# int8 (and f32 for comparison), evaluate both on the runtime crate, inspect the int8 model.
# The training report, runs/lenet.html, gains each export's accuracy and agreement.
#   scripts/pipeline.sh [EPOCHS]          (outputs under runs/)
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${1:-15}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
scripts/install-deps.sh
cargo build --release -q -p kestrel-trainer
K=./target/release/kestrel
mkdir -p runs
# Fashion-MNIST's classes are mirror-symmetric: random left-right flips help (opt-in).
$K train --arch lenet --data "$DATA" --epochs "$EPOCHS" --flip --out runs/lenet.ckpt
$K export --checkpoint runs/lenet.ckpt --quant f32 --out runs/lenet-f32.kmodel
$K export --checkpoint runs/lenet.ckpt --quant int8 --out runs/lenet-int8.kmodel
$K inspect --model runs/lenet-int8.kmodel
$K eval --model runs/lenet-f32.kmodel --data "$DATA"
$K eval --model runs/lenet-int8.kmodel --data "$DATA"
# Train wrote it and each export added its model (`kestrel report` rewrites it).
test -s runs/lenet.html || { echo "runs/lenet.html missing" >&2; exit 1; }
echo "report: runs/lenet.html"
