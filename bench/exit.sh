#!/bin/sh
# Exit-cost benchmark: a port-I/O exit with the VMM's seccomp filters on
# and off (bench/exit.py says how), after the vCPU filter's cost per
# KVM_RUN measured on the host (bench/seccomp-filter.c).
#   bench/exit.sh [RUNS] [COUNT]   (default 5 runs of 20000 exits each mode)
# Sets itself up on a fresh machine; runs in the lab (docs/lab.md) when
# the host has no hardware virtualization.
set -eu
cd "$(dirname "$0")/.."
runs=${1:-5}
count=${2:-20000}
scripts/install-deps.sh bench
make --no-print-directory all >/dev/null
# the filter's own cost, on this host (no KVM needed)
ninja -C build bench-seccomp-filter >/dev/null
build/bench-seccomp-filter 21 300000
exec tests/lab/run --any-kvm --timeout 3000 -- /usr/bin/python3 bench/exit.py --vmm build/casulo-vmm \
	--guest-elf build/tests/kvm/test-guest.elf --runs "$runs" --count "$count"
