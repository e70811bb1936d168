#!/bin/sh
# The checkpoint suite's set-up inside the lab (tests/lab/run): L1 runs
# Debian's 6.1 kernel, where Debian's CRIU 3.17 works (it cannot dump on
# this project's 6.18 hosts).  L1 mounts no cgroups: give it the hybrid
# layout of the project's hosts (v1 controllers, cgroup2 at
# /sys/fs/cgroup/unified), and a tmpfs for TMPDIR (CRIU and the bundles
# stay off the 9p/overlay root; not over /tmp, which may hold the
# checkout and the suite itself).  Then the TAP suite, as given.  Outside
# the lab (tests/lab/run --or-skip where the lab cannot run) the suite runs
# on the host as it is, and skips what CRIU cannot do there.
set -eu
[ "${CASULO_IN_LAB:-}" = 1 ] || exec "$@"
mkdir -p /run/criu-tmp
mount -t tmpfs -o mode=1777 tmp /run/criu-tmp
export TMPDIR=/run/criu-tmp
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
	mkdir /sys/fs/cgroup/$c
	mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
done
mkdir /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
exec "$@"
