#!/usr/bin/env bash
# On-target kernel checks: builds examples/kernel-check for the Cortex-M4 (thumbv7em, QEMU
# mps2-an386, DSP kernels) and the Cortex-M55 (thumbv8m.main + cortex-m55, QEMU mps3-an547,
# Helium kernels) and runs kestrel-runtime's variant-vs-reference check, 1,000 cases per
# kernel, under qemu-system-arm. The firmware fails when the compiled kernel set is not
# the one the board must run (a silent fallback to the reference).
#
#   scripts/mcu-kernel-check.sh          # both boards, the checks
#   scripts/mcu-kernel-check.sh bench    # both boards, instructions per MAC (docs/BENCHMARKS.md)
#   BOARDS=m4 scripts/mcu-kernel-check.sh
set -euo pipefail
cd "$(dirname "$0")/../examples/kernel-check"
bin=kernel-check
[ "${1:-}" = bench ] && bin=bench
for board in ${BOARDS:-m4 m55}; do
  case $board in
    m4) target=thumbv7em-none-eabihf machine=mps2-an386 impl=dsp ;;
    m55) target=thumbv8m.main-none-eabihf machine=mps3-an547 impl=mve ;;
    *) echo "unknown board $board (m4 or m55)" >&2; exit 2 ;;
  esac
  # Target CPUs (cortex-m4, cortex-m55) come from examples/kernel-check/.cargo/config.toml.
  KESTREL_EXPECT_IMPL=$impl cargo build -q --release --target "$target" --bin "$bin"
  echo "== $bin on $machine ($target)"
  # -icount shift=0: one instruction is 1 ns of virtual time (the bench's clock).
  timeout 900 qemu-system-arm -M "$machine" -nographic -icount shift=0 \
    -semihosting-config enable=on,target=native \
    -kernel "../../target/kernel-check/$target/release/$bin"
done
