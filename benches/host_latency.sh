#!/usr/bin/env bash
# Host latency, one thread, batch 1: Kestrel's runtime on int8 and f32 `lenet` against tract
# (crates.io, optimized plan, built for the native CPU) and onnxruntime (PyPI, one thread,
# sequential) running the ONNX export of the same network on the same test images, in one
# run; prints the medians and the ratio (faster peer) / (Kestrel int8).
#
# First it checks that the ONNX export computes the trainer's forward pass (lenet and the
# Jarrett arch with LCN, in tract and onnxruntime) and that tract's and onnxruntime's logits
# match Kestrel's f32 runtime on the benchmark images, each logit within
# 1e-5 · max(1, |reference|) (absolute below 1, relative above); any miss fails the run.
#
#   benches/host_latency.sh [--checkpoint LENET_CKPT] [DATA_DIR]
#       IMAGES=500 ROUNDS=20 by default; without --checkpoint, lenet trains for one epoch
#
# Kestrel and tract are built with RUSTFLAGS="-C target-cpu=native" in target/native, so the
# runtime compiles the kernel set for this CPU (printed as kestrel_runtime::IMPL).
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=""
DATA=/usr/share/datasets/fashion-mnist
while [ $# -gt 0 ]; do
  case "$1" in
    --checkpoint) CKPT=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) DATA=$1; shift ;;
  esac
done
IMAGES=${IMAGES:-500}
ROUNDS=${ROUNDS:-20}
VENV=${VENV:-.venv-bench}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import onnxruntime, numpy' 2>/dev/null; then
  echo "installing onnxruntime into $VENV ..." >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q onnxruntime numpy
fi
PY="$VENV/bin/python"

echo "building kestrel (release) and benches/host_latency (release, -C target-cpu=native) ..." >&2
cargo build --release -q -p kestrel-trainer
RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR=target/native \
  cargo build --release -q --manifest-path benches/host_latency/Cargo.toml
K=./target/release/kestrel
HL=./target/native/release/kestrel-host-latency

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if [ -z "$CKPT" ]; then
  echo "training lenet for one epoch ..." >&2
  $K train --arch lenet --data "$DATA" --epochs 1 --out "$tmp/lenet.ckpt" > /dev/null
  CKPT=$tmp/lenet.ckpt
fi
# Jarrett only has to be a trained network with LCN layers for the agreement check.
echo "training jarrett for one epoch on 3000 images ..." >&2
$K train --arch jarrett --data "$DATA" --epochs 1 --limit 3000 --out "$tmp/jarrett.ckpt" > /dev/null

$K export --checkpoint "$CKPT" --quant int8 --out "$tmp/lenet-int8.kmodel" > /dev/null
$K export --checkpoint "$CKPT" --quant f32 --out "$tmp/lenet-f32.kmodel" > /dev/null
$K export --checkpoint "$CKPT" --format onnx --out "$tmp/lenet.onnx" > /dev/null
$K export --checkpoint "$tmp/jarrett.ckpt" --format onnx --out "$tmp/jarrett.onnx" > /dev/null

for arch in lenet jarrett; do
  ck=$CKPT; [ $arch = jarrett ] && ck=$tmp/jarrett.ckpt
  mkdir -p "$tmp/$arch"
  $HL agree --checkpoint "$ck" --onnx "$tmp/$arch.onnx" --data "$DATA" --n 200 --dump "$tmp/$arch"
  "$PY" benches/ort_latency.py check --onnx "$tmp/$arch.onnx" --inputs "$tmp/$arch/inputs.f32" \
    --ref "$tmp/$arch/trainer.f32" --what "$arch trainer vs onnxruntime"
done

mkdir -p "$tmp/bench"
$HL bench --int8 "$tmp/lenet-int8.kmodel" --f32 "$tmp/lenet-f32.kmodel" --onnx "$tmp/lenet.onnx" \
  --data "$DATA" --images "$IMAGES" --rounds "$ROUNDS" --dump "$tmp/bench"
"$PY" benches/ort_latency.py check --onnx "$tmp/lenet.onnx" --inputs "$tmp/bench/inputs.f32" \
  --ref "$tmp/bench/kestrel_f32.f32" --what "onnxruntime vs kestrel f32"
"$PY" benches/ort_latency.py bench --onnx "$tmp/lenet.onnx" --inputs "$tmp/bench/inputs.f32" \
  --rounds "$ROUNDS" --out "$tmp/bench/ort.json"

python3 - "$tmp/bench/rust.json" "$tmp/bench/ort.json" <<'EOF'
import json, sys
r, o = (json.load(open(p)) for p in sys.argv[1:3])
peer, name = min((r["tract_us"], "tract"), (o["ort_us"], "onnxruntime"))
k8, k32 = r["kestrel_int8_us"], r["kestrel_f32_us"]
print(f"lenet, one thread, batch 1, {r['images']} test images x {r['rounds']} rounds, median "
      f"(kestrel_runtime::IMPL = {r['impl']})")
for label, v in [("kestrel int8", k8), ("kestrel f32", k32), ("tract f32", r["tract_us"]),
                 ("onnxruntime f32", o["ort_us"])]:
    print(f"  {label:<16} {v:8.2f} µs")
print(f"ratio {name} / kestrel int8 = {peer / k8:.2f}  (target >= 2: {'met' if peer / k8 >= 2 else 'NOT met'})")
print(f"ratio {name} / kestrel f32  = {peer / k32:.2f}")
EOF
