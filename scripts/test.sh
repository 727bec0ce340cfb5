#!/usr/bin/env bash
# Every test: installs what is missing, runs the workspace tests (including the end-to-end
# train → export → runtime checks on Fashion-MNIST), builds the runtime for Cortex-M4, and
# runs the runtime's tests on aarch64 (NEON kernels) under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build -q -p kestrel-runtime --target thumbv7em-none-eabihf
echo "kestrel-runtime builds for thumbv7em-none-eabihf"
cargo test --workspace --no-fail-fast 2>&1
scripts/neon-test.sh
