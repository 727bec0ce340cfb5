#!/usr/bin/env bash
# Installs what Kestrel's pipeline and tests need on a Debian machine, skipping what is there:
# the Fashion-MNIST package, QEMU (system emulation for the Cortex-M firmware, user mode for
# aarch64 test binaries), the aarch64 cross linker, the bare-metal ARM C compiler and C
# library (for the C interface's firmware test), Chromium (the HTML report's test), and the
# Rust targets the runtime is checked on.
set -euo pipefail
need=()
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
# The C firmware of the C interface (capi/tests/c_firmware.rs).
command -v arm-none-eabi-gcc >/dev/null || need+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
# Headless Chromium opens the training report (tests/report.rs).
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
if command -v rustup >/dev/null; then
  # i686-unknown-linux-musl: the format and runtime tests on a 32-bit usize, run natively.
  for t in thumbv7em-none-eabihf thumbv8m.main-none-eabihf aarch64-unknown-linux-gnu i686-unknown-linux-musl; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  done
fi
# NVRTC 13.0 from PyPI (no GPU needed): the test command compiles every CUDA kernel to PTX
# with it (trainer/tests/cuda_kernels.rs); scripts/test.sh puts it on LD_LIBRARY_PATH.
nvrtc="$(cd "$(dirname "$0")/.." && pwd)/target/nvrtc"
if [ "$(uname -m)" = x86_64 ] && [ ! -e "$nvrtc/nvidia/cu13/lib/libnvrtc.so.13" ]; then
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    --target "$nvrtc" 'nvidia-cuda-nvrtc==13.0.88'
fi
