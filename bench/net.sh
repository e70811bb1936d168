#!/bin/sh
# Network benchmark: iperf3 guest<->host, casulo-vmm beside QEMU microvm
# with vhost=on, and iperf3 between two network namespaces over a veth
# pair (the limit; bench/net.py says how).
#   bench/net.sh [RUNS]     (default 3 runs each, alternating)
# Sets itself up on a fresh machine; runs in the lab (docs/lab.md) when
# the host has no hardware virtualization.  The load on this machine is
# printed before and after: the figures are only as quiet as it was.
set -eu
cd "$(dirname "$0")/.."
bench/prepare.sh
exec bench/lab-load.sh --mem 3072 --timeout 3000 -- /usr/bin/python3 bench/net.py --vmm build/casulo-vmm \
	--guest build/guest --initrd build/bench/tools-initrd.img --runs "${1:-3}"
