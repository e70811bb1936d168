#!/usr/bin/python3
"""Boot benchmark: casulo-vmm beside QEMU's microvm, same kernel, initrd and
command line, 1 vCPU, 256 MiB.  For each run: the time from starting the
VMM to the guest's first userspace output (a marker that casulo-init's
command prints), and the VMM's peak resident memory outside guest RAM
(sampled from /proc/PID/smaps while it runs; guest RAM is the one
mapping as large as the guest's memory).  Runs alternate between the two
VMMs; the report gives medians and ratios.

usage: boot.py --vmm build/casulo-vmm --guest build/guest [--runs N]
"""
import argparse
import os
import re
import selectors
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Vmm  # noqa: E402

MARKER = b'CASULO-BENCH-READY'
MEMORY_MIB = 256
CMDLINE = 'console=ttyS0 quiet reboot=k panic=-1 -- /bin/sh -c "echo CASULO-BENCH-READY; poweroff -f"'


def rss_outside_guest_kib(pid, guest_bytes):
    """Sum Rss of every mapping except guest RAM (mappings >= guest size)."""
    total = 0
    size = 0
    try:
        with open('/proc/%d/smaps' % pid) as f:
            for line in f:
                m = re.match(r'^([0-9a-f]+)-([0-9a-f]+) ', line)
                if m:
                    size = int(m.group(2), 16) - int(m.group(1), 16)
                elif line.startswith('Rss:') and size < guest_bytes:
                    total += int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return total


def run_once(argv, sample_rss, timeout=120):
    """Boot once.  Returns (seconds to the marker, peak KiB outside guest RAM
    or None).  Timing runs block on the VMM's stdout and do nothing else, so
    that the measurement costs the VMM no CPU; memory runs sample smaps
    every 10 ms and are timed separately."""
    start = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    buf = b''
    ready = None
    peak = None
    while True:
        left = start + timeout - time.monotonic()
        if left <= 0:
            p.kill()
            p.wait()
            raise RuntimeError('%s: timed out' % argv[0])
        events = sel.select(min(left, 0.01) if sample_rss else left)
        if events:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            if ready is None and MARKER in buf:
                ready = time.monotonic() - start
                if not sample_rss:
                    break
        if sample_rss:
            rss = rss_outside_guest_kib(p.pid, MEMORY_MIB << 20)
            if rss is not None:
                peak = max(peak or 0, rss)
    rest, err = p.communicate(timeout=timeout)
    buf += rest or b''
    if ready is None:
        raise RuntimeError('%s: no marker in output (exit %s): %r %r' % (argv[0], p.returncode, buf[-300:],
                                                                          err[-300:]))
    return ready, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True)
    ap.add_argument('--runs', type=int, default=10)
    args = ap.parse_args()
    kernel = os.path.join(args.guest, 'vmlinuz')
    initrd = os.path.join(args.guest, 'initrd.img')
    qemu = shutil.which('qemu-system-x86_64')
    if qemu is None:
        print('boot.py: qemu-system-x86_64 not found; install qemu-system-x86', file=sys.stderr)
        return 2
    vmms = {n: Vmm(n, kernel, initrd, args.vmm, cpus=1, memory_mib=MEMORY_MIB).argv(CMDLINE)
            for n in ('casulo-vmm', 'qemu-microvm')}
    results = {name: {'boot': [], 'rss': []} for name in vmms}
    names = list(vmms)
    # One warm-up each: the first exec of a binary (over 9p in the lab) is slow.
    for name in names:
        run_once(vmms[name], False)
    for i in range(args.runs):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            t, _ = run_once(vmms[name], False)
            results[name]['boot'].append(t)
            print('run %2d %-13s boot %6.3f s' % (i + 1, name, t), flush=True)
    for i in range(max(3, args.runs // 3)):
        for name in names:
            _, rss = run_once(vmms[name], True)
            results[name]['rss'].append(rss)
            print('memory run %d %-13s peak RSS outside guest RAM %6d KiB' % (i + 1, name, rss), flush=True)

    med = {n: (statistics.median(r['boot']), statistics.median(r['rss'])) for n, r in results.items()}
    ours, peer = med['casulo-vmm'], med['qemu-microvm']
    print()
    print('boot benchmark: %d runs each, 1 vCPU, %d MiB, same kernel/initrd/cmdline' % (args.runs, MEMORY_MIB))
    print('%-14s %12s %26s' % ('', 'boot (median)', 'peak RSS outside guest RAM'))
    for n in names:
        print('%-14s %10.3f s %22d KiB' % (n, med[n][0], med[n][1]))
    print('ratio casulo/qemu: boot %.2fx (target <= 0.70x), memory %.2fx' % (ours[0] / peer[0], ours[1] / peer[1]))
    print('casulo-vmm memory outside guest RAM: %.2f MiB (target < 3 MiB)' % (ours[1] / 1024.0))
    return 0


if __name__ == '__main__':
    sys.exit(main())
