#!/usr/bin/env bash
# The runtime's tests on aarch64 under qemu-user, so that its NEON kernels (kestrel_isa =
# "neon") run on their own instruction set: once plain NEON (SMULL/SMLAL), once with the
# dot-product extension (SDOT). Each includes `impl_matches_target` (IMPL == "neon") and the
# variant-vs-reference property tests (`tests::variants`, 1,000 cases per kernel).
# The linker and the qemu runner come from .cargo/config.toml; scripts/install-deps.sh
# installs them. The dotprod build has its own target dir, so neither rebuilds the other.
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu
echo "== kestrel-runtime on $target (NEON, under qemu-aarch64)"
cargo test -q -p kestrel-runtime --target "$target"
echo "== kestrel-runtime on $target +dotprod (NEON with SDOT, under qemu-aarch64)"
RUSTFLAGS="-C target-feature=+dotprod" \
  cargo test -q -p kestrel-runtime --target "$target" --target-dir target/neon-dotprod
