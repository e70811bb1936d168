#!/usr/bin/python3
"""Exit-cost benchmark: what casulo-vmm's seccomp filters add to a vCPU exit.

The kvm suite's test guest (test=pio-loop) reads COM2's line status
register COUNT times, each read a port-I/O exit handled by the VMM's
vCPU thread (KVM_RUN returns, the serial model answers, KVM_RUN again:
one filtered ioctl per exit), and prints the loop's length in TSC ticks.
The same guest runs with --seccomp on and --seccomp off, alternating.
Per exit: the loop's wall time, taken by the host between the guest's
line before the loop and its report after it, over COUNT; and the guest's
TSC ticks per exit.
The report gives medians and the ratio on / off.

usage: exit.py --vmm build/casulo-vmm --guest-elf build/tests/kvm/test-guest.elf [--runs N] [--count N]
"""
import argparse
import os
import re
import selectors
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import lab_retry, report  # noqa: E402

MODES = ['on', 'off']


def run(vmm, guest, mode, count, timeout=900):
    """One VM: (wall seconds of the loop, TSC ticks of the loop).  The wall
    time is taken here, between the guest's line before the loop and its
    report after it, read as they come: the VM's start and end are not in
    it."""
    argv = [vmm, '--kernel', guest, '--console', 'stdio', '--seccomp', mode,
            '--cmdline', 'test=pio-loop count=%d status=0' % count]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    buf, started, ended = b'', None, None
    deadline = time.monotonic() + timeout
    while ended is None:
        left = deadline - time.monotonic()
        if left <= 0 or not sel.select(left):
            p.kill()
            p.wait()
            raise RuntimeError('seccomp %s: no pio-loop report in %d s: %r' % (mode, timeout, buf[-300:]))
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        buf += chunk
        now = time.monotonic()
        if started is None and b'pio-loop: start' in buf:
            started = now
        if started is not None and re.search(rb'pio-loop: exits \d+ tsc \d+\r?\n', buf):
            ended = now
    rest, err = p.communicate(timeout=60)
    buf += rest or b''
    m = re.search(rb'pio-loop: exits (\d+) tsc (\d+)', buf)
    if p.returncode != 0 or not m or int(m.group(1)) != count or ended is None:
        raise RuntimeError('seccomp %s: exit status %s, output %r, stderr %r' %
                           (mode, p.returncode, buf[-300:], err[-300:]))
    return ended - started, int(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest-elf', required=True)
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--count', type=int, default=20000)
    args = ap.parse_args()
    results = {m: {'us': [], 'ticks': []} for m in MODES}
    for i in range(args.runs):
        for mode in MODES if i % 2 == 0 else reversed(MODES):
            secs, ticks = lab_retry(lambda: run(args.vmm, args.guest_elf, mode, args.count),
                                    'seccomp %s, %d exits' % (mode, args.count))
            us = secs / args.count * 1e6
            results[mode]['us'].append(us)
            results[mode]['ticks'].append(ticks / args.count)
            print('run %d seccomp %-3s: %.2f us/exit (wall), %.0f TSC ticks/exit' %
                  (i + 1, mode, us, ticks / args.count), flush=True)
    report('Port-I/O exit cost, %d exits a run, %d runs (seccomp on / off)' % (args.count, args.runs),
           [('us', 'wall per exit', 'us'), ('ticks', 'TSC ticks per exit', '')],
           {'seccomp on': results['on'], 'seccomp off': results['off']}, ['seccomp on', 'seccomp off'],
           higher_is_better=False)
    # the ratio within each run (on / off, run side by side): its spread
    # says how far the medians' ratio can be trusted
    for key, label in (('us', 'wall'), ('ticks', 'TSC ticks')):
        per_run = [a / b for a, b in zip(results['on'][key], results['off'][key]) if b]
        if per_run:
            print('per-run ratio on/off, %s: %s; median %.3f' %
                  (label, ' '.join('%.3f' % r for r in per_run), statistics.median(per_run)))

if __name__ == '__main__':
    main()
