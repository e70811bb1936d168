#!/bin/sh
# Shared set-up of the benchmarks that need tools inside the guest: install
# what is missing, build, build the default guest, and append Debian's fio
# and iperf3 (with their libraries) to its initrd in build/bench/.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench
make --no-print-directory all guest >/dev/null
mkdir -p build/bench
python3 bench/guest-tools.py build/bench/tools-initrd.img build/guest/initrd.img \
	--file bench/disk.fio:/bench/disk.fio --file bench/ratelimit.fio:/bench/ratelimit.fio \
	/usr/bin/fio /usr/bin/iperf3 >/dev/null
