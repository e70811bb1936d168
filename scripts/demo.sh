#!/bin/sh
# make demo: boot the default guest with casulo-vmm and show its console.
# On a host without hardware virtualization (this machine's /dev/kvm is
# the instruction-emulating kvm_pvm) the VM runs inside the lab
# (tests/lab/run, docs/lab.md): a QEMU-emulated machine with a real KVM.
set -eu
cd "$(dirname "$0")/.."

# The kernel passes the words after "--" to casulo-init, which runs them;
# a double-quoted string stays one word (no double quotes inside it).
greeting='echo; echo Hello from inside Casulo: $(uname -sr), $(nproc) vCPUs, $(grep MemTotal /proc/meminfo); echo'
cmdline="console=ttyS0 reboot=k panic=-1 -- /bin/sh -c \"$greeting\""

mode=$(tests/lab/run --mode)
echo "demo: booting build/guest/vmlinuz with casulo-vmm (2 vCPUs, 512 MiB) [$mode mode]" >&2
[ "$mode" = lab ] && echo "demo: this host has no hardware virtualization: the VM runs in the lab (docs/lab.md)" >&2
exec tests/lab/run --timeout 300 -- build/casulo-vmm --cpus 2 --memory 512M --cmdline "$cmdline"
