#!/usr/bin/env bash
# Every test: installs what is missing, runs the workspace tests (including the end-to-end
# train → export → runtime checks on Fashion-MNIST, and tests/firmware.rs, which builds the
# Cortex-M4 and M55 firmware and runs it under qemu-system-arm against the host runtime),
# builds the runtime for Cortex-M4, checks the Cortex-M kernel variants (DSP, Helium) under
# qemu-system-arm, and runs the runtime's tests again with the aarch64 NEON kernels under
# qemu-user (the variant-vs-reference property tests run on each variant's real instruction
# set; the x86-64 sets, AVX2 and AVX2 + VNNI, are checked by the default run, which detects
# them at run time). The CUDA kernels are compiled to PTX by NVRTC (from PyPI; no GPU needed);
# the CUDA backend itself runs only on a GPU machine (scripts/gpu-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage's wall time, so that CI's 20-minute budget can be spent knowingly.
start=$SECONDS
stage() { echo "[test.sh] $1: done at $((SECONDS - start)) s"; }
scripts/install-deps.sh
stage "install-deps"
cargo build -q -p kestrel-runtime --target thumbv7em-none-eabihf
echo "kestrel-runtime builds for thumbv7em-none-eabihf"
# The C interface's static library for C firmware (libkestrel.a) is built for
# thumbv7em-none-eabihf, linked into a C firmware and run under QEMU by
# capi/tests/c_firmware.rs, with the workspace tests below.
stage "thumbv7em build"
# The precision features (runtime/Cargo.toml): a build with one of them runs that
# precision's models and refuses the other's with Error::PrecisionNotBuilt (the firmware
# builds this way); a build with neither still compiles.
cargo test -q -p kestrel-runtime --no-default-features --features int8 --lib features:: 2>&1
cargo test -q -p kestrel-runtime --no-default-features --features f32 --lib features:: 2>&1
cargo build -q -p kestrel-runtime --target thumbv7em-none-eabihf --no-default-features
# The firmware tests need QEMU; fail here, with the fix, rather than deep inside a test.
command -v qemu-system-arm >/dev/null || { echo "qemu-system-arm missing: apt-get install qemu-system-arm" >&2; exit 1; }
# The Cortex-M kernel variants against the reference on their own instruction sets, under
# qemu-system-arm (M4 DSP and M55 Helium; about a minute on two cores).
scripts/mcu-kernel-check.sh
stage "precision features and Cortex-M kernel checks"
# NVRTC from the PyPI wheel install-deps.sh fetched: trainer/tests/cuda_kernels.rs compiles
# every CUDA kernel to PTX, and fails (instead of skipping) when NVRTC cannot be loaded.
export LD_LIBRARY_PATH="$PWD/target/nvrtc/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KESTREL_REQUIRE_NVRTC=1
cargo test --workspace --no-fail-fast 2>&1
stage "cargo test --workspace"
# The format and runtime on a 32-bit target (Cortex-M's usize width), natively: every size
# derived from model bytes must be checked arithmetic there too (formats/tests/consistency.rs
# builds a convolution whose tap count wraps in 32 bits); then the model-file fuzzer for 20
# seconds on that 32-bit build, from the seed corpus the workspace run above wrote
# (fuzz/tests/short_run.rs fuzzed it for 30 s on 64 bits). It runs beside the aarch64 stage
# below (mostly one core each), in its own target directory so that neither waits for the
# other's build lock; its output follows that stage's.
thirty_two() {
  export CARGO_TARGET_DIR=target/i686
  cargo test -q -p kestrel-format -p kestrel-runtime --features kestrel-runtime/std \
    --target i686-unknown-linux-musl 2>&1
  cargo run -q --profile test --target i686-unknown-linux-musl -p kestrel-fuzz \
    --no-default-features --bin model-fuzz -- --corpus target/tmp/fuzz-corpus --seconds 20 \
    --seed 8 --save target/tmp/fuzz-failures-32 2>&1
}
mkdir -p target/tmp
thirty_two > target/tmp/test-32bit.log 2>&1 &
pid32=$!
# The AVX2 kernels need no separate build: the default `cargo test` above finds them at run
# time (KernelSet::detect) and checks them against the reference wherever the CPU has AVX2.
# Nor do the AVX-512 VNNI kernels: the same run checks the `avx2-vnni` set wherever the CPU
# has it (runtime/src/tests/variants.rs says when it does not).
scripts/neon-test.sh
stage "aarch64 (neon-test.sh)"
status32=0
wait $pid32 || status32=$?
echo "== 32-bit (i686-unknown-linux-musl): format and runtime tests, model-file fuzzer"
cat target/tmp/test-32bit.log
[ "$status32" = 0 ] || { echo "32-bit stage failed (exit $status32)" >&2; exit "$status32"; }
stage "32-bit (i686-unknown-linux-musl), beside the aarch64 stage"
