#!/bin/sh
# Snapshot benchmark: restore-to-running of casulo-vmm beside QEMU microvm
# restoring the same VM from a file, 256 MiB, 1 GiB and 4 GiB guests, with
# casulo-vmm's restore broken into its steps (bench/snapshot.py says how).
#   bench/snapshot.sh [RUNS] [SIZES]    (default 5 runs; sizes in MiB, default 256,1024,4096)
# The lab gets 6 GiB: the largest guest's two snapshots (a quarter of it
# filled) and the VM restoring from one fit beside each other.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench
make --no-print-directory all guest >/dev/null
exec tests/lab/run --mem 6144 --timeout 5400 -- /usr/bin/python3 bench/snapshot.py --vmm build/casulo-vmm \
	--guest build/guest --runs "${1:-5}" --sizes "${2:-256,1024,4096}"
