#!/usr/bin/env bash
# Every test: installs what is missing, runs the workspace tests (including the end-to-end
# train → export → runtime checks on Fashion-MNIST), builds the runtime for Cortex-M4, and
# checks the Cortex-M kernel variants under QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build -q -p kestrel-runtime --target thumbv7em-none-eabihf
echo "kestrel-runtime builds for thumbv7em-none-eabihf"
# The Cortex-M kernel variants against the reference on their own instruction sets, under
# qemu-system-arm (M4 DSP and M55 Helium; about a minute on two cores).
scripts/mcu-kernel-check.sh
cargo test --workspace --no-fail-fast 2>&1
