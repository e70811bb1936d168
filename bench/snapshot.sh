#!/bin/sh
# Snapshot benchmark: create and restore-to-running times, 256 MiB and 1 GiB guests.
#   bench/snapshot.sh [RUNS]    (default 3)
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench
make --no-print-directory all guest >/dev/null
exec tests/lab/run --mem 3072 --timeout 3000 -- /usr/bin/python3 bench/snapshot.py --vmm build/casulo-vmm \
	--guest build/guest --runs "${1:-3}"
