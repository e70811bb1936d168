#!/bin/sh
# The cri suite's VM handler, where KVM is (the lab, or a host whose
# /dev/kvm works): cgroups mounted as on a v2 host when none are (the lab's
# L1 mounts none), and containerd's work under a tmpfs when /tmp is an
# overlay (the lab's root is: overlayfs cannot stack on it).
#   lab-cri-vm.sh PYTHON TEST_CRI_PY
set -eu
if [ -d /sys/fs/cgroup ] && [ -z "$(ls /sys/fs/cgroup)" ]; then
	mount -t cgroup2 none /sys/fs/cgroup
fi
if [ "$(stat -f -c %T /tmp)" = overlayfs ]; then
	mkdir -p /run/cri-tmp
	mountpoint -q /run/cri-tmp || mount -t tmpfs -o size=2g none /run/cri-tmp
	export TMPDIR=/run/cri-tmp
fi
exec "$@"
