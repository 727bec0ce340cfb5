#!/usr/bin/env bash
# Every test: installs what is missing, runs the workspace tests (including the end-to-end
# train → export → runtime checks on Fashion-MNIST, and tests/firmware.rs, which builds the
# Cortex-M4 and M55 firmware and runs it under qemu-system-arm against the host runtime), and
# builds the runtime for Cortex-M4.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build -q -p kestrel-runtime --target thumbv7em-none-eabihf
echo "kestrel-runtime builds for thumbv7em-none-eabihf"
# The firmware tests need QEMU; fail here, with the fix, rather than deep inside a test.
command -v qemu-system-arm >/dev/null || { echo "qemu-system-arm missing: apt-get install qemu-system-arm" >&2; exit 1; }
cargo test --workspace --no-fail-fast 2>&1
