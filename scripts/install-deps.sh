#!/bin/sh
# Install the Debian packages a task needs, only those missing.
#   scripts/install-deps.sh build|guest|lab|test|demo|bench ...
# Runs apt-get as root (or through sudo); a no-op when all are present.
set -eu

pkgs_build="meson ninja-build pkg-config gcc libc6-dev python3 libseccomp-dev libcap-dev libjson-c-dev liburing-dev libmicrohttpd-dev libcurl4-openssl-dev zlib1g-dev"
pkgs_guest="busybox-static cpio xz-utils zstd lz4 e2fsprogs kmod"
pkgs_lab="qemu-system-x86 python3 gcc libc6-dev busybox-static cpio xz-utils"
pkgs_oci="busybox-static libseccomp-dev libcap-dev libjson-c-dev podman containerd runc crun util-linux"
pkgs_test="$pkgs_build $pkgs_guest $pkgs_lab $pkgs_oci clang lld libclang-rt-14-dev iproute2 procps iputils-ping python3-yaml python3-jsonschema"
pkgs_bench="$pkgs_test fio iperf3 time"

want=""
for set in "$@"; do
	case "$set" in
	build) want="$want $pkgs_build" ;;
	guest) want="$want $pkgs_build $pkgs_guest" ;;
	lab) want="$want $pkgs_lab" ;;
	test) want="$want $pkgs_test" ;;
	demo) want="$want $pkgs_build $pkgs_guest $pkgs_lab" ;;
	bench) want="$want $pkgs_bench" ;;
	*) echo "install-deps: unknown set '$set'" >&2; exit 2 ;;
	esac
done

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
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
