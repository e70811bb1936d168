"""The lab's assets (docs/lab.md): Debian's generic kernel as an ELF vmlinux
to boot through PVH, and an initramfs with busybox-static, the modules L1
needs (dependencies from depends=), lab-init as /init and kvm-pin.  Built
under build/lab (or $CASULO_LAB_DIR), rebuilt only when an input changes:
the package versions, this file, kerneltool.py, lab-init or kvm-pin.c."""
import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, 'guest'))
import kerneltool  # noqa: E402

# What L1 needs from the generic kernel; kerneltool adds each depends=.
LAB_MODULES = ['ccp', 'irqbypass', 'kvm', 'kvm_amd', 'virtio_pci', 'virtio_console',
               '9pnet_virtio', '9p', 'overlay',
               # network tests: TAP devices, veth pairs and bridges in namespaces;
               # QEMU's vhost devices as a reference
               'tun', 'veth', 'bridge', 'vhost_net', 'vhost_vsock',
               # containers in a VM: tc redirection between a veth and a TAP
               'sch_ingress', 'cls_matchall', 'act_mirred',
               # a block device for the O_DIRECT disk test (the lab's / is tmpfs)
               'loop',
               # --forward: a NIC on QEMU's user network, for TCP from here into L1
               'virtio_net',
               # CRIU (checkpoint/restore tests): its kernel feature probe needs
               # nftables, its network lock for --tcp-established too (libcrc32c
               # wants a crc32c implementation, a soft dependency insmod ignores);
               # it reads sockets through the sock_diag modules;
               'crc32c_generic', 'nf_tables', 'unix_diag', 'inet_diag', 'tcp_diag', 'udp_diag',
               'netlink_diag', 'af_packet_diag',
               # it dumps a network namespace's conntrack entries and locks the
               # network with iptables (nft backend: xt matches via nft_compat)
               'nf_conntrack_netlink', 'nft_compat', 'xt_mark',
               # podman's port publishing (CNI portmap: iptables-nft DNAT in
               # the nat table, local destinations, hairpin masquerading)
               'nft_chain_nat', 'xt_nat', 'xt_addrtype', 'xt_MASQUERADE', 'xt_comment', 'xt_multiport',
               'xt_tcpudp', 'xt_conntrack']


def say(msg):
    sys.stderr.write(f'lab: {msg}\n')
    sys.stderr.flush()


# --- assets -----------------------------------------------------------------

def lab_dir():
    return os.environ.get('CASULO_LAB_DIR') or os.path.join(REPO, 'build', 'lab')


def build_assets(labdir):
    """vmlinux and initrd.img of the lab in labdir, rebuilt when inputs change."""
    os.makedirs(labdir, exist_ok=True)
    outputs = [os.path.join(labdir, f) for f in ('vmlinux', 'initrd.img')]
    manifest = os.path.join(labdir, 'manifest')
    with open(os.path.join(labdir, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            kernel = kerneltool.resolve('linux-image-amd64', meta=True)
            busybox = kerneltool.resolve('busybox-static')
        except kerneltool.ToolError as e:
            if os.path.exists(manifest) and all(map(os.path.exists, outputs)):
                say(f'{e}; keeping the lab built before')
                return
            raise
        h = hashlib.sha256(repr((kernel, busybox, LAB_MODULES)).encode())
        for f in (__file__, kerneltool.__file__, os.path.join(HERE, 'lab-init'),
                  os.path.join(HERE, 'kvm-pin.c')):
            with open(f, 'rb') as fh:
                h.update(fh.read())
        key = h.hexdigest()
        try:
            with open(manifest) as fh:
                if f'key={key}\n' in fh.read() and all(map(os.path.exists, outputs)):
                    return
        except FileNotFoundError:
            pass
        say(f'building the lab in {labdir}')
        t0 = time.time()
        if os.path.exists(manifest):
            os.unlink(manifest)
        with tempfile.TemporaryDirectory(dir=labdir) as work:
            kdeb = kerneltool.fetch_deb(*kernel)
            bdeb = kerneltool.fetch_deb(*busybox)
            for deb, dest in ((kdeb, 'kernel'), (bdeb, 'busybox')):
                subprocess.run(['dpkg', '-x', deb, os.path.join(work, dest)], check=True)
            release = os.listdir(os.path.join(work, 'kernel/lib/modules'))[0]
            moddir = os.path.join(work, 'kernel/lib/modules', release)
            with open(os.path.join(work, 'kernel/boot', 'vmlinuz-' + release), 'rb') as fh:
                elf, _ = kerneltool.extract_vmlinux(fh.read())
            kerneltool._write(outputs[0], elf)
            pin = os.path.join(work, 'kvm-pin')
            subprocess.run([os.environ.get('CC', 'gcc'), '-std=gnu11', '-Wall', '-Wextra', '-Os',
                            '-static', '-s', '-o', pin, os.path.join(HERE, 'kvm-pin.c')], check=True)
            names = kerneltool.build_initramfs(outputs[1], os.path.join(work, 'busybox/bin/busybox'),
                                               moddir, LAB_MODULES, os.path.join(HERE, 'lab-init'),
                                               extra={'bin/kvm-pin': pin})
        with open(manifest + '.tmp', 'w') as fh:
            fh.write('# Casulo lab: built by tests/lab/run\n'
                     f'kernel_package={kernel[0]}\nkernel_version={kernel[1]}\n'
                     f'kernel_release={release}\n'
                     f'busybox_package={busybox[0]}\nbusybox_version={busybox[1]}\n'
                     f"modules={' '.join(n[:-3] for n in names)}\nkey={key}\n")
        os.replace(manifest + '.tmp', manifest)
        say(f'lab built in {time.time() - t0:.1f} s')
