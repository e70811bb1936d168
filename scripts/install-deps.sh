#!/bin/sh
# Install the Debian packages a task needs, only those missing.
#   scripts/install-deps.sh build|guest|lab|test|demo|bench ...
# Runs apt-get as root (or through sudo); a no-op when all are present.
set -eu

pkgs_build="meson ninja-build pkg-config gcc libc6-dev python3 python3-yaml libsqlite3-dev libseccomp-dev libcap-dev libjson-c-dev liburing-dev libmicrohttpd-dev libcurl4-openssl-dev zlib1g-dev libarchive-dev libssl-dev libzstd-dev libisal-dev libselinux1-dev"
pkgs_guest="busybox-static cpio xz-utils zstd lz4 e2fsprogs kmod"
pkgs_lab="qemu-system-x86 python3 gcc libc6-dev busybox-static cpio xz-utils"
# criu dumps a container's network namespace with ip and iptables-save (the criu suite).
pkgs_oci="busybox-static libseccomp-dev libcap-dev libjson-c-dev podman containerd runc crun criu iproute2 iptables util-linux"
pkgs_image="docker-registry skopeo umoci openssl zstd busybox-static"
# The cri suite: containerd's CRI, the CNI plugins, and gRPC for its Python client.
pkgs_cri="containerd runc crun containernetworking-plugins iproute2 protobuf-compiler python3-grpcio python3-grpc-tools"
# The daemon suite: the dashboard in Debian's chromium (playwright-core
# comes from the npm registry at test time), Prometheus' text parser.
pkgs_daemon="chromium python3-prometheus-client python3-jsonschema util-linux openssl"
# The selinux test (linux suite): Debian's reference policy, built with the
# lab's module at test time (semodule), loaded in the lab; runcon's probe.
pkgs_selinux="selinux-policy-default policycoreutils coreutils busybox-static"
# scripts/check-format.sh, in the unit suite.
pkgs_format="clang-format"
pkgs_test="$pkgs_build $pkgs_guest $pkgs_lab $pkgs_oci $pkgs_image $pkgs_cri $pkgs_daemon $pkgs_selinux $pkgs_format clang lld libclang-rt-14-dev iproute2 procps iputils-ping python3-yaml python3-jsonschema"
# bench/casulod.sh: libvirtd (its QEMU driver, virsh, the Python binding) beside casulod.
pkgs_bench="$pkgs_test fio iperf3 time libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients python3-libvirt"

want=""
for set in "$@"; do
	case "$set" in
	build) want="$want $pkgs_build" ;;
	guest) want="$want $pkgs_build $pkgs_guest" ;;
	lab) want="$want $pkgs_lab" ;;
	test) want="$want $pkgs_test $pkgs_format" ;;
	demo) want="$want $pkgs_build $pkgs_guest $pkgs_lab" ;;
	bench) want="$want $pkgs_bench" ;;
	*) echo "install-deps: unknown set '$set'" >&2; exit 2 ;;
	esac
done

# npm builds casulod's dashboard: the machine's Node.js where there is
# one (its npm with it), else Debian's.
if ! command -v npm >/dev/null 2>&1; then
	case " $want " in *" meson "*) want="$want nodejs npm" ;; esac
fi

missing=""
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing="$missing $p"
done
[ -n "$missing" ] || exit 0

echo "install-deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# Several sessions may install at once: wait for the other's dpkg lock
# (up to 10 minutes) instead of failing at once.
lock="-o DPkg::Lock::Timeout=600"
# shellcheck disable=SC2086
$SUDO apt-get $lock update -qq
# shellcheck disable=SC2086
$SUDO apt-get $lock install -y -qq --no-install-recommends $missing >/dev/null
