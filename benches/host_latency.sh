#!/usr/bin/env bash
# Host latency, one thread, batch 1: `kestrel eval` from a plain `cargo build --release`
# (the runtime picks this CPU's kernel set at run time; the JSON says which) on int8 and f32
# `lenet` and `jarrett` (LCN included), against onnxruntime (PyPI, one thread, sequential)
# running the ONNX export of the same checkpoints on the same test images, in one run; prints
# the medians and the ratios onnxruntime / Kestrel.
#
# LiteRT (the `ai-edge-litert` wheel, XNNPACK) is tried too: it needs a .tflite model, and
# Kestrel exports ONNX only, so the script says whether the wheel installed and that it has
# no model to run, rather than converting through TensorFlow.
#
# With TRACT=1 it also builds `benches/host_latency` (tract, with `-C target-cpu=native`;
# its first build takes about 25 minutes on 2 cores), checks that the ONNX export computes
# the trainer's forward pass (lenet and jarrett, in tract and onnxruntime) and that tract's
# and onnxruntime's logits match Kestrel's f32 runtime, each logit within
# 1e-5 · max(1, |reference|); any miss fails the run. Then it times tract as well.
#
#   benches/host_latency.sh [--checkpoint LENET_CKPT] [DATA_DIR]
#       IMAGES=1000 RUNS=3 ROUNDS=20 by default; without --checkpoint, lenet trains for one
#       epoch; KESTREL_KERNELS=avx2 (etc.) times another kernel set
set -euo pipefail
cd "$(dirname "$0")/.."
CKPT=""
DATA=/usr/share/datasets/fashion-mnist
while [ $# -gt 0 ]; do
  case "$1" in
    --checkpoint) CKPT=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) DATA=$1; shift ;;
  esac
done
IMAGES=${IMAGES:-1000}
RUNS=${RUNS:-3}
ROUNDS=${ROUNDS:-20}
VENV=${VENV:-.venv-bench}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import onnxruntime, numpy' 2>/dev/null; then
  echo "installing onnxruntime into $VENV ..." >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q onnxruntime numpy
fi
PY="$VENV/bin/python"
if "$PY" -c 'import ai_edge_litert' 2>/dev/null || "$VENV/bin/pip" install -q ai-edge-litert >/dev/null 2>&1; then
  LITERT="the ai-edge-litert wheel installed, but there is no .tflite model to run (Kestrel exports ONNX; converting needs TensorFlow): not timed"
else
  LITERT="the ai-edge-litert wheel does not install here: not timed"
fi

echo "building kestrel (plain cargo build --release) ..." >&2
cargo build --release -q -p kestrel-trainer
K=./target/release/kestrel

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if [ -z "$CKPT" ]; then
  echo "training lenet for one epoch ..." >&2
  $K train --arch lenet --data "$DATA" --epochs 1 --out "$tmp/lenet.ckpt" > /dev/null
  CKPT=$tmp/lenet.ckpt
fi
echo "training jarrett for one epoch on 3000 images ..." >&2
$K train --arch jarrett --data "$DATA" --epochs 1 --limit 3000 --out "$tmp/jarrett.ckpt" > /dev/null

for arch in lenet jarrett; do
  ck=$CKPT; [ $arch = jarrett ] && ck=$tmp/jarrett.ckpt
  for q in int8 f32; do
    $K export --checkpoint "$ck" --quant $q --out "$tmp/$arch-$q.kmodel" > /dev/null
  done
  $K export --checkpoint "$ck" --format onnx --out "$tmp/$arch.onnx" > /dev/null
  # Kestrel: `kestrel eval` times every image (pixels in, logits out), one thread; RUNS
  # runs, the median of their medians.
  for q in int8 f32; do
    for r in $(seq "$RUNS"); do
      $K eval --model "$tmp/$arch-$q.kmodel" --data "$DATA" --limit "$IMAGES" --json > "$tmp/$arch-$q-$r.json"
    done
  done
  # onnxruntime: the same test images, normalized as the model says.
  $K inspect --model "$tmp/$arch-f32.kmodel" --json > "$tmp/$arch-inspect.json"
  "$PY" - "$DATA" "$IMAGES" "$tmp/$arch-inspect.json" "$tmp/$arch-inputs.f32" <<'PY'
import gzip, json, os, sys
import numpy as np
data, n, meta, out = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3])), sys.argv[4]
path = next(os.path.join(data, f) for f in ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte")
            if os.path.exists(os.path.join(data, f)))
raw = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
rows, cols = int.from_bytes(raw[8:12], "big"), int.from_bytes(raw[12:16], "big")
px = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, rows * cols)[:n]
((px / 255.0 - meta["input_mean"]) / meta["input_std"]).astype("<f4").tofile(out)
PY
  "$PY" benches/ort_latency.py bench --onnx "$tmp/$arch.onnx" --inputs "$tmp/$arch-inputs.f32" \
    --rounds "$ROUNDS" --out "$tmp/$arch-ort.json" > /dev/null
done

if [ "${TRACT:-0}" = 1 ]; then
  echo "building benches/host_latency (release, -C target-cpu=native) ..." >&2
  RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR=target/native \
    cargo build --release -q --manifest-path benches/host_latency/Cargo.toml
  HL=./target/native/release/kestrel-host-latency
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

  python3 - "$tmp/bench/rust.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"tract (native build, benches/host_latency): lenet f32 {r['tract_us']:.2f} µs; "
      f"Kestrel in the same process: int8 {r['kestrel_int8_us']:.2f} µs, f32 {r['kestrel_f32_us']:.2f} µs "
      f"(kestrel_runtime::IMPL = {r['impl']})")
EOF
fi

python3 - "$tmp" "$RUNS" "$IMAGES" "$ROUNDS" "$LITERT" <<'EOF'
import json, statistics, sys
tmp, runs, images, rounds, litert = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"one thread, batch 1, {images} Fashion-MNIST test images; CPU: {cpu}")
print(f"Kestrel: plain `cargo build --release`, `kestrel eval` median per image, median of {runs} runs")
print(f"onnxruntime: median of {rounds} rounds, IO binding")
print(f"{'model':<8} {'kestrel int8':>13} {'kestrel f32':>12} {'onnxruntime':>12} {'ort/int8':>9} {'ort/f32':>8}  kernels")
for arch in ("lenet", "jarrett"):
    med = lambda q: statistics.median(json.load(open(f"{tmp}/{arch}-{q}-{r}.json"))["median_latency_us"]
                                      for r in range(1, runs + 1))
    k8, k32 = med("int8"), med("f32")
    kern = json.load(open(f"{tmp}/{arch}-int8-1.json"))["kernels"]
    o = json.load(open(f"{tmp}/{arch}-ort.json"))
    print(f"{arch:<8} {k8:10.2f} µs {k32:9.2f} µs {o['ort_us']:9.2f} µs {o['ort_us'] / k8:9.2f} {o['ort_us'] / k32:8.2f}  {kern}")
    if arch == "lenet":
        r = o["ort_us"] / k8
        print(f"  lenet int8: onnxruntime / kestrel = {r:.2f} (target >= 2: {'met' if r >= 2 else 'NOT met'}; goal >= 3)")
print(f"onnxruntime {o['onnxruntime']}; LiteRT: {litert}")
EOF
