#!/usr/bin/env bash
# Installs what Kestrel's pipeline and tests need on a Debian machine, skipping what is there:
# the Fashion-MNIST package and the Rust targets the runtime is checked on.
set -euo pipefail
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -q thumbv7em-none-eabihf; then
  rustup target add thumbv7em-none-eabihf
fi
