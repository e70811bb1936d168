#!/bin/sh
# Containers in their own VM beside plain containers (bench/vm-container.py
# says what is measured): start to first output, memory per container,
# ten at once, a 256 MiB file through the shared rootfs.
#   bench/vm-container.sh [RUNS]      (default 5 runs each, interleaved)
# Sets itself up on a fresh machine; runs in the lab (docs/lab.md) when
# the host has no hardware virtualization.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench
make --no-print-directory all guest >/dev/null
exec tests/lab/run --mem 3072 --timeout 3000 -- /usr/bin/python3 bench/vm-container.py --build build --runs "${1:-5}"
