#!/bin/sh
# guest/build.sh [OUTDIR]: build Casulo's default guest (docs/guest.md).
#
# From Debian's packages (apt-get download, dpkg -x; the versions apt would
# install today, none hard-coded):
#   OUTDIR/vmlinuz      linux-image-cloud-amd64's bzImage
#   OUTDIR/vmlinux      the ELF kernel inside it (for PVH / 64-bit entry)
#   OUTDIR/initrd.img   newc cpio: busybox-static, casulo-init as /init,
#                       the virtio, vsock and virtio-fs modules in /lib/modules
#   OUTDIR/manifest     what went in, and the key that decides rebuilds
# casulo-init is the static program Meson builds beside OUTDIR
# (build/casulo-init for build/guest; it links libcasulo-oci for its agent
# mode), or $CASULO_INIT.
# Rebuilt only when the key changes: the package versions, this script,
# kerneltool.py, the casulo-init binary or CASULO_INITRD_COMPRESS.  The
# .debs are kept in $CASULO_CACHE/debs (default ~/.cache/casulo/debs).
#
# Environment: CASULO_INIT, CASULO_INITRD_COMPRESS (none|gzip|lz4, default
# none: measured fastest to boot, docs/guest.md).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-build/guest}
compress=${CASULO_INITRD_COMPRESS:-none}
tool="python3 $here/kerneltool.py"

# What the guest needs from the cloud kernel; kerneltool adds what each
# depends= names and skips what is built in (ext4 and its helpers are).
modules="virtio virtio_ring virtio_mmio virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev
virtio_blk virtio_net virtio_rng virtio_console virtio_balloon ext4 button evdev
vsock vmw_vsock_virtio_transport vmw_vsock_virtio_transport_common fuse virtiofs qemu_fw_cfg"

say() { echo "guest: $*" >&2; }
die() { say "$*"; exit 1; }

for t in python3 dpkg apt-get flock strip; do
	command -v "$t" >/dev/null || die "'$t' is missing (scripts/install-deps.sh guest)"
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
init=${CASULO_INIT:-$(dirname "$out")/casulo-init}
[ -x "$init" ] || die "no casulo-init at $init: build it first (ninja -C $(dirname "$out")), or set CASULO_INIT"
# One build at a time per OUTDIR.
exec 9>"$out/.lock"
flock 9

# 1. Resolve the versions: they are part of the key.
if ! kernel=$($tool resolve --meta linux-image-cloud-amd64) ||
	! busybox=$($tool resolve busybox-static); then
	if [ -f "$out/manifest" ] && [ -f "$out/initrd.img" ]; then
		say "cannot ask apt for package versions; keeping the guest built before"
		exit 0
	fi
	die "cannot resolve the guest's packages"
fi

key=$( {
	printf '%s\n%s\n%s\n%s\n' "$kernel" "$busybox" "$compress" "$modules"
	cat "$here/build.sh" "$here/kerneltool.py" "$init"
} | sha256sum | cut -d' ' -f1)

if [ -f "$out/manifest" ] && grep -qx "key=$key" "$out/manifest" &&
	[ -f "$out/vmlinuz" ] && [ -f "$out/vmlinux" ] && [ -f "$out/initrd.img" ]; then
	exit 0
fi

say "building in $out"
rm -f "$out/manifest"
work="$out/work"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

# 2. Fetch (cached) and unpack.
kdeb=$($tool deb --meta linux-image-cloud-amd64) || die "cannot fetch the kernel package"
bdeb=$($tool deb busybox-static) || die "cannot fetch busybox-static"
kdeb=$(echo "$kdeb" | cut -f3)
bdeb=$(echo "$bdeb" | cut -f3)
dpkg -x "$kdeb" "$work/kernel"
dpkg -x "$bdeb" "$work/busybox"
moddir=$(echo "$work"/kernel/lib/modules/*)
[ -d "$moddir" ] || die "no lib/modules in $kdeb"
release=$(basename "$moddir")

# 3. The kernel, as bzImage and as ELF.
cp "$work/kernel/boot/vmlinuz-$release" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
$tool vmlinux "$out/vmlinuz" "$out/vmlinux"

# 4. The initramfs.
strip -o "$work/casulo-init" "$init"
# shellcheck disable=SC2086
$tool initramfs "$out/initrd.img" "$work/busybox/bin/busybox" "$moddir" "$work/casulo-init" \
	"$compress" $modules >"$work/modules.list"

# 5. The manifest, last: its key marks the build complete.
{
	echo "# Casulo default guest: built by guest/build.sh"
	printf 'kernel_package=%s\nkernel_version=%s\n' "$(echo "$kernel" | cut -f1)" "$(echo "$kernel" | cut -f2)"
	printf 'kernel_release=%s\n' "$release"
	printf 'busybox_package=%s\nbusybox_version=%s\n' "$(echo "$busybox" | cut -f1)" "$(echo "$busybox" | cut -f2)"
	printf 'initrd_compression=%s\n' "$compress"
	printf 'modules=%s\n' "$(sed 's|\.ko$||' "$work/modules.list" | tr '\n' ' ' | sed 's/ $//')"
	for f in vmlinuz vmlinux initrd.img; do
		printf '%s=%s %s\n' "$f" "$(stat -c %s "$out/$f")" "$(sha256sum "$out/$f" | cut -d' ' -f1)"
	done
	printf 'key=%s\n' "$key"
} >"$out/manifest.tmp"
mv "$out/manifest.tmp" "$out/manifest"
say "done: $(stat -c %s "$out/initrd.img") byte initrd, kernel $release"
