#!/bin/sh
# Boot with 2M hugepages beside 4K pages, casulo-vmm (bench/hugepages.py says how).
#   bench/hugepages.sh [RUNS]      (default 10 runs each, interleaved)
# Sets itself up on a fresh machine; runs in the lab (docs/lab.md) when
# the host has no hardware virtualization.
set -eu
cd "$(dirname "$0")/.."
runs=${1:-10}
scripts/install-deps.sh bench
make --no-print-directory all guest >/dev/null
exec tests/lab/run --timeout 3000 -- /usr/bin/python3 bench/hugepages.py --vmm build/casulo-vmm --guest build/guest --runs "$runs"
