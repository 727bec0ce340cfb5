#!/usr/bin/env bash
# aarch64 under qemu-user, on this x86-64 host. The linker and the sysroot come from
# .cargo/config.toml and scripts/install-deps.sh.
#
# 1. The runtime's tests, built once and run on two emulated CPUs: `cortex-a72` (Armv8.0,
#    NEON without the dot-product extension) and `max` (every extension qemu has, `dotprod`
#    included). Run-time detection must pick `neon` on the first and `neon-dotprod` on the
#    second (KESTREL_EXPECT_KERNELS, checked by `detection_finds_this_cpus_set`); the
#    variant-vs-reference property tests (`tests::variants`, 1,000 cases per kernel) then
#    check every set that CPU runs: SMULL/SMLAL on the first, SDOT too on the second.
# 2. `kestrel` itself for aarch64 Linux (robot computers): a small LeNet trained and
#    exported here, evaluated by the aarch64 binary on both CPUs and by the host binary;
#    the logits (`kestrel eval --dump-logits`) must be the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu
qemu() { # CPU, then the command line
  local cpu=$1
  shift
  qemu-aarch64 -cpu "$cpu" -L /usr/aarch64-linux-gnu "$@"
}
runner_var=CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER
cpus=(cortex-a72 max)
declare -A expect=([cortex-a72]=neon [max]=neon-dotprod)

# The runner is not part of cargo's fingerprint: the second run reuses the first's build.
# Doctests run on the host (`cargo test` there); here the library and test binaries.
cargo test -q -p kestrel-runtime --target "$target" --lib --tests --no-run
for cpu in "${cpus[@]}"; do
  echo "== kestrel-runtime on $target, qemu -cpu $cpu (expects ${expect[$cpu]})"
  env "$runner_var=qemu-aarch64 -cpu $cpu -L /usr/aarch64-linux-gnu" \
    KESTREL_EXPECT_KERNELS="${expect[$cpu]}" \
    cargo test -q -p kestrel-runtime --target "$target" --lib --tests
done

echo "== kestrel on $target: the host's logits, byte for byte"
# The host binary in the test profile (`cargo test` has built its dependencies); the
# aarch64 one in `cross-check` (Cargo.toml: only the runtime optimized), about a minute.
cargo build -q -p kestrel-trainer --bin kestrel --profile test
cargo build -q -p kestrel-trainer --bin kestrel --target "$target" --profile cross-check
host=target/debug/kestrel
arm=target/$target/cross-check/kestrel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$host" train --arch lenet --epochs 1 --limit 1000 --validation 0 --threads 2 \
  --device cpu --out "$tmp/lenet.ckpt" >/dev/null
for quant in int8 f32; do
  model=$tmp/lenet-$quant.kes
  "$host" export --checkpoint "$tmp/lenet.ckpt" --quant "$quant" --out "$model" >/dev/null
  eval_args=(eval --model "$model" --limit 200 --json)
  "$host" "${eval_args[@]}" --dump-logits "$tmp/host-$quant.bin" >/dev/null
  for cpu in "${cpus[@]}"; do
    out=$tmp/$cpu-$quant.bin
    report=$(qemu "$cpu" "$arm" "${eval_args[@]}" --dump-logits "$out")
    kernels=$(jq -r .kernels <<<"$report")
    if [[ $kernels != "${expect[$cpu]}" ]]; then
      echo "FAIL: kestrel eval ($quant) on qemu -cpu $cpu ran $kernels, not ${expect[$cpu]}" >&2
      exit 1
    fi
    if ! cmp "$tmp/host-$quant.bin" "$out"; then
      echo "FAIL: $quant logits of the aarch64 kestrel (qemu -cpu $cpu, $kernels) differ from the host's" >&2
      exit 1
    fi
    echo "$quant, qemu -cpu $cpu ($kernels): $(stat -c %s "$out") bytes of logits equal to the host's; $(jq -c '{accuracy, n}' <<<"$report")"
  done
done
