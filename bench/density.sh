#!/bin/sh
# Density benchmark: host memory per idle 256 MiB guest, casulo-vmm (KSM,
# guests restored from one snapshot) beside QEMU microvm (mem-merge=on)
# (bench/density.py says how).
#   bench/density.sh [COUNT] [RUNS]   (default 4 guests each, 2 runs)
# Sets itself up on a fresh machine; runs in the lab (docs/lab.md) when
# the host has no hardware virtualization.
set -eu
cd "$(dirname "$0")/.."
count=${1:-4}
runs=${2:-2}
scripts/install-deps.sh bench
make --no-print-directory all guest >/dev/null
exec tests/lab/run --mem 3072 --timeout 5400 -- /usr/bin/python3 bench/density.py --vmm build/casulo-vmm \
	--guest build/guest --count "$count" --runs "$runs"
