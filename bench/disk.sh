#!/bin/sh
# Disk benchmark: fio inside the guest, casulo-vmm beside QEMU microvm with
# aio=io_uring, and the same jobs run by the host on the image file (the
# limit; bench/disk.py says how).
#   bench/disk.sh [RUNS]    (default 3 runs each, alternating)
# Sets itself up on a fresh machine; runs in the lab (docs/lab.md) when
# the host has no hardware virtualization.  The load on this machine is
# printed before and after: the figures are only as quiet as it was.
set -eu
cd "$(dirname "$0")/.."
bench/prepare.sh
exec bench/lab-load.sh --mem 3072 --timeout 3000 -- /usr/bin/python3 bench/disk.py --vmm build/casulo-vmm \
	--guest build/guest --initrd build/bench/tools-initrd.img --runs "${1:-3}"
