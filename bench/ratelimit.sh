#!/bin/sh
# Rate limiter benchmark: a disk limiter far above need beside none (its
# cost), and the throughput under a 10 MiB/s and a 1000 IOPS limit.
#   bench/ratelimit.sh [RUNS]    (default 3 runs each, alternating)
# Sets itself up on a fresh machine; runs in the lab (docs/lab.md) when
# the host has no hardware virtualization.
set -eu
cd "$(dirname "$0")/.."
bench/prepare.sh
exec tests/lab/run --mem 3072 --timeout 3000 -- /usr/bin/python3 bench/ratelimit.py --vmm build/casulo-vmm \
	--guest build/guest --initrd build/bench/tools-initrd.img --runs "${1:-3}"
