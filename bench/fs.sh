#!/bin/sh
# virtio-fs benchmark: reading and writing a 256 MiB file through a shared
# directory in the guest, beside the same on the host directly.
#   bench/fs.sh [RUNS]    (default 3 runs each, alternating)
# Sets itself up on a fresh machine; runs in the lab (docs/lab.md) when
# the host has no hardware virtualization.
set -eu
cd "$(dirname "$0")/.."
bench/prepare.sh
exec tests/lab/run --mem 3072 --timeout 3000 -- /usr/bin/python3 bench/fs.py --vmm build/casulo-vmm \
	--guest build/guest --initrd build/bench/tools-initrd.img --runs "${1:-3}"
