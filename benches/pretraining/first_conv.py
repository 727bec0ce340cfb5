#!/usr/bin/env python3
"""Prints `out kernel` of the first conv2d layer of an architecture TOML (for
benches/pretraining.sh: the convolutional PSD must match it)."""
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    arch = tomllib.load(f)
for layer in arch["layer"]:
    if layer["type"] == "conv2d":
        print(layer["out"], layer["kernel"])
        break
else:
    sys.exit(f"{sys.argv[1]}: no conv2d layer")
