#!/bin/sh
# bench/pod.sh [RUNS]: a pod through containerd's CRI, from RunPodSandbox to
# the first output of its busybox container, with the runtime handlers
# casulo (casulo-runtime behind the runc shim), runc and crun (Debian's),
# interleaved, RUNS rounds (default 20); medians and the ratio to runc
# (bench/pod.py says what is timed).  The containerd, CNI network and images
# are the cri suite's (tests/cri/crilib.py).
#
# crun 1.8 refuses the hybrid cgroup layout (v1 controllers plus cgroup2 at
# /sys/fs/cgroup/unified).  On such a host the three handlers are measured
# with containerd in a mount namespace where /sys/fs/cgroup/unified is
# unmounted (a plain v1 host), as bench/container.sh does; casulo and runc
# are then also measured on the real hybrid layout.
#
# bench/pod.sh vm [RUNS]: the casulo-vm handler (one guest per pod,
# docs/kubernetes.md) beside the plain casulo handler, in the
# lab (KVM), RUNS rounds (default 5).
set -eu
cd "$(dirname "$0")/.."
MODE=plain
if [ "${1:-}" = vm ]; then
	MODE=vm
	shift
fi
RUNS=${1:-20}
scripts/install-deps.sh bench
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
[ -f build/tests/cri/cri_pb2.py ] || { echo "pod.sh: the CRI client was not built (see tests/cri/meson.build)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "pod.sh: needs root (containerd, CNI)" >&2; exit 1; }
if [ "$MODE" = vm ]; then
	make --no-print-directory guest >/dev/null
	# tests/cri/lab-cri-vm.sh mounts cgroup2 and a tmpfs for containerd's
	# work, as the cri-vm test has them in the lab.
	exec tests/lab/run --mem 3072 --timeout 3000 -- tests/cri/lab-cri-vm.sh /usr/bin/python3 bench/pod.py \
		--build build --runs "${1:-5}" --label "in the lab" casulo-vm casulo
fi

bench="/usr/bin/python3 bench/pod.py --build build --runs $RUNS"
if [ "$(stat -f -c %T /sys/fs/cgroup)" = tmpfs ] && [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
	echo "crun cannot run on this host's cgroup layout (hybrid: cgroup2 at /sys/fs/cgroup/unified);"
	echo "the three handlers are measured with containerd in a mount namespace where it is unmounted."
	unshare -m --propagation private sh -c \
		'umount /sys/fs/cgroup/unified && exec $1 --label "v1 layout (cgroup2 unmounted)" casulo runc crun' sh "$bench"
	$bench --label "hybrid layout as the host has it (no crun)" casulo runc
else
	$bench --label "this host's cgroup layout" casulo runc crun
fi
