#!/usr/bin/env bash
# PSD encoders end to end on Fashion-MNIST 9×9 patches, 128 atoms, default settings:
# trains each encoder (`kestrel psd train`), exports it (f32, f16, int8), runs the runtime
# encoder against on-device FISTA on held-out patches (`kestrel encode`), and prints one table
# of energy ratios (encoder / converged FISTA) and speedups (FISTA time to the encoder's energy
# / encoder time), measured in the same process. With FIRMWARE=1, also the Cortex-M4 and M55
# instruction counts (`kestrel firmware run`) of the int8 and f32 models.
#   benches/psd_encoders.sh [DATA_DIR]   (ENCODERS="tanh shrink lista:1 lista:3" N=1000 by default;
#   LAMBDA=1.0 trains with that λ instead of the default)
# A native build (`-C target-cpu=native`) is used so the host kernels match this CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-/usr/share/datasets/fashion-mnist}
ENCODERS=${ENCODERS:-tanh shrink lista:1 lista:3}
N=${N:-1000}
LAMBDA_ARGS=()
[ -n "${LAMBDA:-}" ] && LAMBDA_ARGS=(--lambda "$LAMBDA")
OUT=${OUT:-target/psd-bench}
mkdir -p "$OUT"
RUSTFLAGS="-C target-cpu=native" cargo build --release -q -p kestrel-trainer --target-dir target/native
K=target/native/release/kestrel
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf '%-9s %-5s %9s %9s %7s %9s %10s %6s %8s\n' encoder quant enc_E fista_E ratio enc_us fista_us iters speedup
for enc in $ENCODERS; do
  ck="$OUT/psd-${enc/:/}.ckpt"
  [ -f "$ck" ] || $K psd train --data "$DATA" --patch 9 --atoms 128 --encoder "$enc" "${LAMBDA_ARGS[@]}" --out "$ck" > "$OUT/train-${enc/:/}.log"
  for q in f32 f16 int8; do
    m="$OUT/psd-${enc/:/}-$q.kmodel"
    $K export --checkpoint "$ck" --quant "$q" --out "$m" > /dev/null
    $K encode --model "$m" --data "$DATA" --n "$N" --json > "$OUT/encode-${enc/:/}-$q.json"
    python3 - "$enc" "$q" "$OUT/encode-${enc/:/}-$q.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[3]))
f = lambda v, p: "-" if v is None else f"{v:.{p}f}"
print(f"{sys.argv[1]:<9} {sys.argv[2]:<5} {r['encoder_energy']:9.5f} {r['fista_energy']:9.5f} "
      f"{r['energy_ratio']:7.4f} {r['encoder_us']:9.2f} {f(r['fista_us_to_match'], 2):>10} "
      f"{f(r['fista_iterations_to_match'], 0):>6} {f(r['speedup'], 1):>8}")
PY
    if [ "${FIRMWARE:-0}" = 1 ] && [ "$q" != f16 ]; then
      for t in m4 m55; do
        $K firmware run --target "$t" --model "$m" --data "$DATA" --n 4 --json > "$OUT/fw-${enc/:/}-$q-$t.json"
        python3 - "$enc" "$q" "$t" "$OUT/fw-${enc/:/}-$q-$t.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[4])); s = r.get("sparse") or {}
print(f"  {sys.argv[3]}: encoder {r['instructions']} instr/patch, FISTA {s.get('fista_instructions')} "
      f"({s.get('fista_iterations')} it) -> {s.get('speedup', 0):.1f}x, match {r['outputs_match_host']} / {s.get('fista_match')}")
PY
      done
    fi
  done
done
