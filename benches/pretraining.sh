#!/usr/bin/env bash
# Layer-wise pretraining (the seed's protocol) on Fashion-MNIST, short version: each arch's
# first convolution from random (He/LeCun init) vs from a convolutional PSD encoder trained
# without labels on training images, then supervised training of the whole net the same way
# on a labeled subset; float test accuracy (10,000 test images) per seed. Not run in CI.
#
#   benches/pretraining.sh              # defaults below, a few minutes on 2 cores
#   LABELED=5000 EPOCHS=2 SEEDS="1 2 3" ARCHS="lenet jarrett" benches/pretraining.sh
#
# Arms: `random`; `psd` (encoder filters and bias as trained, --init-scale 1); `psd-std`
# (rescaled so their RMS is the random init's std, --init-scale std). The PSD filters match
# each arch's first conv (out maps, kernel side, read from examples/archs/<arch>.toml).
# Results: $OUT/results.tsv and a markdown table on stdout (benches/pretraining/summarize.py).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-/usr/share/datasets/fashion-mnist}
LABELED=${LABELED:-2000}      # labeled training images (--limit)
VALIDATION=${VALIDATION:-500} # of those, held out for validation
EPOCHS=${EPOCHS:-2}           # supervised epochs
SEEDS=${SEEDS:-"1 2 3"}
ARCHS=${ARCHS:-"lenet"}
PSD_IMAGES=${PSD_IMAGES:-1000} # unlabeled images for convolutional PSD
PSD_EPOCHS=${PSD_EPOCHS:-1}
PSD_LAMBDA=${PSD_LAMBDA:-0.5}
PSD_ENCODER=${PSD_ENCODER:-tanh}
OUT=${OUT:-target/bench-pretraining}
mkdir -p "$OUT"

cargo build --release -q -p kestrel-trainer
K=target/release/kestrel
echo "# CPU: $(lscpu | grep 'Model name' | cut -d: -f2- | sed 's/^ *//'), $(nproc) threads" >&2

printf 'arch\tarm\tseed\ttest_accuracy\tseconds\n' > "$OUT/results.tsv"
for arch in $ARCHS; do
    read -r maps kernel < <(python3 benches/pretraining/first_conv.py "examples/archs/$arch.toml")
    psd="$OUT/psd-$arch.ckpt"
    echo "== $arch: convolutional PSD, $maps filters of ${kernel}×$kernel on $PSD_IMAGES images" >&2
    start=$(date +%s.%N)
    "$K" psd train --data "$DATA" --conv --patch "$kernel" --atoms "$maps" \
        --encoder "$PSD_ENCODER" --lambda "$PSD_LAMBDA" --epochs "$PSD_EPOCHS" \
        --patches "$PSD_IMAGES" --seed 1 --out "$psd" >&2
    echo "== PSD took $(echo "$(date +%s.%N) - $start" | bc) s" >&2
    for seed in $SEEDS; do
        for arm in random psd psd-std; do
            case $arm in
                random) init=() ;;
                psd) init=(--init-from "$psd" --init-scale 1) ;;
                psd-std) init=(--init-from "$psd" --init-scale std) ;;
            esac
            start=$(date +%s.%N)
            acc=$("$K" train --arch "$arch" --data "$DATA" --limit "$LABELED" \
                --validation "$VALIDATION" --epochs "$EPOCHS" --seed "$seed" \
                --out "$OUT/$arch-$arm-$seed.ckpt" "${init[@]}" |
                sed -n 's/^float test accuracy: \([0-9.]*\)%.*/\1/p')
            secs=$(echo "$(date +%s.%N) - $start" | bc)
            printf '%s\t%s\t%s\t%s\t%.1f\n' "$arch" "$arm" "$seed" "$acc" "$secs" | tee -a "$OUT/results.tsv" >&2
        done
    done
done
python3 benches/pretraining/summarize.py "$OUT/results.tsv"
