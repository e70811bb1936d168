#!/bin/sh
# Boot benchmark: casulo-vmm beside QEMU microvm (bench/boot.py says how).
#   bench/boot.sh [RUNS]      (default 10 runs each, interleaved)
#   bench/boot.sh jail [RUNS] casulo-vmm under casulo-jailer beside it
#                             unconfined (docs/jailer.md)
# Sets itself up on a fresh machine; runs in the lab (docs/lab.md) when
# the host has no hardware virtualization.
set -eu
cd "$(dirname "$0")/.."
jail=
if [ "${1:-}" = jail ]; then
	jail="--jailer build/casulo-jailer"
	shift
fi
runs=${1:-10}
scripts/install-deps.sh bench
make --no-print-directory all guest >/dev/null
exec bench/lab-load.sh --timeout 3000 -- /usr/bin/python3 bench/boot.py --vmm build/casulo-vmm --guest build/guest --runs "$runs" $jail
