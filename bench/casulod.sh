#!/bin/sh
# bench/casulod.sh [RUNS]: casulod beside libvirtd with 100 defined objects,
# 30 of them running: `casulo ls` beside `virsh list --all`, the reattach
# after a SIGKILL, API latency (p50, p99) under 50 concurrent clients.
# Medians of RUNS (default 20); see bench/casulod.py.
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-20}
scripts/install-deps.sh bench
[ -x build/casulod ] || { [ -f build/build.ninja ] || meson setup build >/dev/null; ninja -C build >/dev/null; }
# libvirt's QEMU driver resolves its default user even when told to run
# QEMU as root; Debian's libvirt-daemon-system (not installed: it brings
# systemd) would have made it.
getent passwd libvirt-qemu >/dev/null ||
	useradd --system --no-create-home --shell /usr/sbin/nologin --user-group libvirt-qemu
exec /usr/bin/python3 bench/casulod.py --runs "$RUNS"
