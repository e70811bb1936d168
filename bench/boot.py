#!/usr/bin/python3
"""Boot benchmark: casulo-vmm beside QEMU's microvm, same kernel, initrd and
command line, 1 vCPU, 256 MiB.  For each run: the time from starting the
VMM to the guest's first userspace output (a marker that casulo-init's
command prints), and the VMM's peak resident memory outside guest RAM
(sampled from /proc/PID/smaps while it runs; guest RAM is the one
mapping as large as the guest's memory).  Runs alternate between the two
VMMs; the report gives medians and ratios, and each VMM's command line
(the peer's options: QEMU microvm with no device, as ours has none).  No
host limit here: a boot has none.  A run that fails (no marker, a VMM
that exits early or hangs) is run once more, then counted as failed
(benchlib.run_or_fail), never the end of the benchmark.

usage: boot.py --vmm build/casulo-vmm --guest build/guest [--runs N]
       boot.py --vmm build/casulo-vmm --guest build/guest --jailer build/casulo-jailer [--runs N]

With --jailer the peer is casulo-vmm itself, unconfined, and ours is the
same VMM started by casulo-jailer (per-VM directory, namespaces, cgroup,
uid/gid without capabilities; docs/jailer.md): the time from starting the
jailer to the marker, so the jail's set-up and tear-down of the previous
run are paid in it.  Target: jailed/unconfined <= 1.05.
"""
import argparse
import os
import re
import selectors
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (Vmm, load_line, median_or_none, print_commands, print_failures,  # noqa: E402
                      run_or_fail)

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
    try:
        rest, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise RuntimeError('%s: the guest did not power off in %d s' % (argv[0], timeout))
    buf += rest or b''
    if ready is None:
        raise RuntimeError('%s: no marker in output (exit %s): %r %r' % (argv[0], p.returncode, buf[-300:],
                                                                          err[-300:]))
    return ready, peak


def jail_argv(jailer, base, vmm, kernel, initrd, run):
    """casulo-vmm under casulo-jailer, the same VM as Vmm.argv(); a fresh
    id per run (the jailer removes the directory when the VM ends)."""
    argv = Vmm('casulo-vmm', '/vmlinuz', '/initrd.img', '/casulo-vmm', cpus=1, memory_mib=MEMORY_MIB).argv(CMDLINE)
    return [jailer, '--id', 'bench-%d-%d' % (os.getpid(), run), '--exec-file', vmm, '--uid', '4321', '--gid', '4321',
            '--chroot-base', base, '--file', kernel, '--file', initrd, '--'] + argv[1:]


def main_jail(args, kernel, initrd):
    import tempfile
    base = tempfile.mkdtemp(prefix='bench-jail-', dir='/run')
    # The lab's L1 mounts no cgroups; the jailer needs a hierarchy.
    if os.path.isdir('/sys/fs/cgroup') and not os.listdir('/sys/fs/cgroup'):
        subprocess.run(['mount', '-t', 'cgroup2', 'none', '/sys/fs/cgroup'], check=False)
    plain = Vmm('casulo-vmm', kernel, initrd, args.vmm, cpus=1, memory_mib=MEMORY_MIB).argv(CMDLINE)
    counter = [0]

    def argv(name):
        if name == 'unconfined':
            return plain
        counter[0] += 1
        return jail_argv(os.path.abspath(args.jailer), base, os.path.abspath(args.vmm), kernel, initrd, counter[0])

    names = ['unconfined', 'jailed']
    boots = {n: [] for n in names}
    failures = []
    print(load_line(), flush=True)
    for name in names:  # one warm-up each
        run_or_fail(lambda: run_once(argv(name), False), 'warm-up of ' + name, failures)
    for i in range(args.runs):
        for name in (names if i % 2 == 0 else names[::-1]):
            r = run_or_fail(lambda: run_once(argv(name), False), 'run %d of %s' % (i + 1, name), failures)
            if r is not None:
                boots[name].append(r[0])
                print('run %2d %-11s boot %6.3f s' % (i + 1, name, r[0]), flush=True)
    shutil.rmtree(base, ignore_errors=True)
    med = {n: median_or_none(b) for n, b in boots.items()}
    print()
    print('boot benchmark, jailed vs unconfined casulo-vmm: %d runs each, 1 vCPU, %d MiB' % (args.runs, MEMORY_MIB))
    for n in names:
        print('%-11s %8s (median)' % (n, seconds(med[n])))
    if None not in med.values():
        print('ratio jailed/unconfined: %.3fx (target <= 1.05x)' % (med['jailed'] / med['unconfined']))
    print_commands({'unconfined': plain, 'jailed': argv('jailed')})
    print(load_line())
    print_failures(failures)
    return 1 if None in med.values() else 0


def seconds(v):
    return 'failed' if v is None else '%.3f s' % v


def memory_run(argv):
    """A run that samples memory: peak KiB outside guest RAM."""
    _, rss = run_once(argv, True)
    if rss is None:
        raise RuntimeError('%s: exited before its memory could be read' % argv[0])
    return rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True)
    ap.add_argument('--runs', type=int, default=10)
    ap.add_argument('--jailer', help='compare casulo-vmm jailed by this casulo-jailer with it unconfined')
    args = ap.parse_args()
    kernel = os.path.join(args.guest, 'vmlinuz')
    initrd = os.path.join(args.guest, 'initrd.img')
    if args.jailer:
        return main_jail(args, os.path.abspath(kernel), os.path.abspath(initrd))
    qemu = shutil.which('qemu-system-x86_64')
    if qemu is None:
        print('boot.py: qemu-system-x86_64 not found; install qemu-system-x86', file=sys.stderr)
        return 2
    vmms = {n: Vmm(n, kernel, initrd, args.vmm, cpus=1, memory_mib=MEMORY_MIB).argv(CMDLINE)
            for n in ('casulo-vmm', 'qemu-microvm')}
    results = {name: {'boot': [], 'rss': []} for name in vmms}
    names = list(vmms)
    failures = []
    print(load_line(), flush=True)
    # One warm-up each: the first exec of a binary (over 9p in the lab) is slow.
    for name in names:
        run_or_fail(lambda: run_once(vmms[name], False), 'warm-up of ' + name, failures)
    for i in range(args.runs):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            r = run_or_fail(lambda: run_once(vmms[name], False), 'run %d of %s' % (i + 1, name), failures)
            if r is not None:
                results[name]['boot'].append(r[0])
                print('run %2d %-13s boot %6.3f s' % (i + 1, name, r[0]), flush=True)
    for i in range(max(3, args.runs // 3)):
        for name in names:
            rss = run_or_fail(lambda: memory_run(vmms[name]), 'memory run %d of %s' % (i + 1, name), failures)
            if rss is not None:
                results[name]['rss'].append(rss)
                print('memory run %d %-13s peak RSS outside guest RAM %6d KiB' % (i + 1, name, rss), flush=True)

    med = {n: (median_or_none(r['boot']), median_or_none(r['rss'])) for n, r in results.items()}
    ours, peer = med['casulo-vmm'], med['qemu-microvm']
    print()
    print('boot benchmark: %d runs each, 1 vCPU, %d MiB, same kernel/initrd/cmdline' % (args.runs, MEMORY_MIB))
    print('%-14s %12s %26s' % ('', 'boot (median)', 'peak RSS outside guest RAM'))
    for n in names:
        print('%-14s %12s %22s KiB' % (n, seconds(med[n][0]), 'failed' if med[n][1] is None else '%d' % med[n][1]))
    ratio = ['%s %.2fx' % (what, ours[i] / peer[i]) if ours[i] is not None and peer[i] else '%s n/a' % what
             for i, what in enumerate(('boot', 'memory'))]
    print('ratio casulo/qemu: %s (target <= 0.70x), %s' % tuple(ratio))
    if ours[1] is not None:
        print('casulo-vmm memory outside guest RAM: %.2f MiB (target < 3 MiB)' % (ours[1] / 1024.0))
    print_commands(vmms)
    print(load_line())
    print_failures(failures)
    return 1 if any(v is None for m in med.values() for v in m) else 0


if __name__ == '__main__':
    sys.exit(main())
