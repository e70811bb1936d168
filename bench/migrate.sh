#!/bin/sh
# Live-migration benchmark: downtime and total time, casulo-vmm beside QEMU.
#   bench/migrate.sh [RUNS]     (default 3, alternating)
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench
make --no-print-directory all guest >/dev/null
exec tests/lab/run --mem 3072 --timeout 3000 -- /usr/bin/python3 bench/migrate.py --vmm build/casulo-vmm \
	--guest build/guest --runs "${1:-3}"
