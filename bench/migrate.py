#!/usr/bin/python3
"""Live-migration benchmark: downtime and total time of casulo-vmm's
migration beside QEMU's (-incoming tcp:, migrate over QMP with the same
downtime limit), for an idle guest and one that dirties memory
continuously, same kernel, initrd and guest program, 1 vCPU, 512 MiB,
source and destination on one host (loopback), alternating runs.

Downtime is measured the same way for both, as the guest sees it: the
guest prints a line every 20 ms, and the downtime is the gap between the
last line the source VM printed and the first the destination VM printed
(host clock, arrival of the bytes).  Each VMM's own figure is shown too:
casulo-vmm's counts from pausing the VM to the destination saying it
runs; QEMU's (query-migrate) stops when the source has sent everything,
before the destination has loaded the state.

usage: migrate.py --vmm build/casulo-vmm --guest build/guest [--runs N]
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import QUIET, Qmp, Vmm, api, lab_retry, wait_output  # noqa: E402

MIB = 512
DOWNTIME_LIMIT_MS = 100
TICKER = '(while :; do echo tick; done) & '
WORKLOADS_ALL = {
    'idle': TICKER + 'echo READY; sleep 100000',
    'dirtying': (TICKER + '(while true; do dd if=/dev/urandom of=/tmp/dirty bs=1M count=64 2>/dev/null; done) & '
                 'sleep 2; echo READY; sleep 100000'),
}
WORKLOADS = {k: v for k, v in WORKLOADS_ALL.items() if k in os.environ.get('MIGRATE_WORKLOADS', 'idle dirtying').split()}


class Ticks:
    """Arrival times of the guest's tick lines on a VMM's stdout."""

    def __init__(self, p, first=b''):
        import threading
        self.times = [time.monotonic()] if b'tick' in first else []
        self.ready = threading.Event()
        self.t = threading.Thread(target=self.run, args=(p,), daemon=True)
        self.t.start()

    def run(self, p):
        os.set_blocking(p.stdout.fileno(), True)
        for line in p.stdout:
            if b'tick' in line:
                self.times.append(time.monotonic())
                self.ready.set()


def guest_downtime(src_ticks, dst_ticks, timeout=30):
    dst_ticks.ready.wait(timeout)
    if not dst_ticks.times or not src_ticks.times:
        raise RuntimeError('no ticks from the %s' % ('destination' if src_ticks.times else 'source'))
    return (dst_ticks.times[0] - src_ticks.times[-1]) * 1000.0


def tail(path, n=300):
    with open(path, errors='replace') as f:
        return f.read()[-n:]


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def casulo_once(args, cmd, d):
    port = free_port()
    sock = os.path.join(d, 'src.sock')
    kernel, initrd = os.path.join(args.guest, 'vmlinuz'), os.path.join(args.guest, 'initrd.img')
    dst_err, src_err = os.path.join(d, 'dst.err'), os.path.join(d, 'src.err')
    with open(dst_err, 'w') as f:
        dst = subprocess.Popen([args.vmm, '--incoming', 'tcp:127.0.0.1:%d' % port], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=f)
    argv = Vmm('casulo-vmm', kernel, initrd, args.vmm, cpus=1, memory_mib=MIB).argv(cmd) + ['--api-socket', sock]
    with open(src_err, 'w') as f:
        src = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=f)
    try:
        first = wait_output(src, b'READY')
        src_ticks, dst_ticks = Ticks(src, first), Ticks(dst)
        time.sleep(0.5)
        try:
            status, info = api(sock, 'PUT', '/migration/send', {'destination': 'tcp:127.0.0.1:%d' % port,
                                                                 'downtime_ms': DOWNTIME_LIMIT_MS, 'wait': True})
        except OSError as e:  # the source is gone (its guest reset, say)
            raise RuntimeError('casulo source API: %s; source said %r' % (e, tail(src_err)))
        if status != 200:
            raise RuntimeError('casulo migration: %d %r; source said %r; destination said %r' % (
                status, info, tail(src_err), tail(dst_err)))
        return guest_downtime(src_ticks, dst_ticks), info['downtime_ms'], info['total_ms'], info['bytes_sent']
    finally:
        for p in (src, dst):
            p.kill()
            p.wait()


def qemu_once(args, cmd, d):
    port = free_port()
    kernel, initrd = os.path.join(args.guest, 'vmlinuz'), os.path.join(args.guest, 'initrd.img')
    base = Vmm('qemu-microvm', kernel, initrd, cpus=1, memory_mib=MIB).argv(cmd)
    qs, qd = os.path.join(d, 'qmp-src.sock'), os.path.join(d, 'qmp-dst.sock')
    dst = subprocess.Popen(base + ['-qmp', 'unix:%s,server=on,wait=off' % qd, '-incoming', 'tcp:127.0.0.1:%d' % port],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    src = subprocess.Popen(base + ['-qmp', 'unix:%s,server=on,wait=off' % qs], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE)
    try:
        first = wait_output(src, b'READY')
        src_ticks, dst_ticks = Ticks(src, first), Ticks(dst)
        time.sleep(0.5)
        q = Qmp(qs)
        q.cmd('migrate-set-parameters', **{'downtime-limit': DOWNTIME_LIMIT_MS})
        st = q.migrate('tcp:127.0.0.1:%d' % port, 0.02)
        q.close()
        if st['status'] != 'completed':
            raise RuntimeError('QEMU migration: %r' % st)
        return (guest_downtime(src_ticks, dst_ticks), float(st['downtime']), float(st['total-time']),
                st['ram']['transferred'])
    finally:
        for p in (src, dst):
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True)
    ap.add_argument('--runs', type=int, default=3)
    args = ap.parse_args()
    runners = {'casulo-vmm': casulo_once, 'qemu': qemu_once}
    res = {(w, n): {'down': [], 'own': [], 'total': [], 'bytes': []} for w in WORKLOADS for n in runners}
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.runs):
            for w, prog in WORKLOADS.items():
                cmd = QUIET + ' -- /bin/sh -c "%s"' % prog
                for n in (list(runners) if i % 2 == 0 else list(runners)[::-1]):
                    down, own, total, nbytes = lab_retry(lambda: runners[n](args, cmd, d),
                                                         'run %d %s %s' % (i + 1, w, n))
                    r = res[(w, n)]
                    r['down'].append(down)
                    r['own'].append(own)
                    r['total'].append(total)
                    r['bytes'].append(nbytes)
                    print('run %d %-8s %-11s downtime seen by the guest %7.1f ms (own figure %6.1f)  total %6.0f ms  '
                          '%6.1f MiB' % (i + 1, w, n, down, own, total, nbytes / 2**20), flush=True)
    print()
    print('migration benchmark: %d runs each, medians; 1 vCPU, %d MiB, downtime limit %d ms, loopback'
          % (args.runs, MIB, DOWNTIME_LIMIT_MS))
    print('%-10s %-12s %20s %14s %14s %10s' % ('guest', 'vmm', 'downtime (guest)', 'own figure', 'total', 'sent'))
    for w in WORKLOADS:
        meds = {}
        for n in runners:
            r = res[(w, n)]
            meds[n] = statistics.median(r['down'])
            print('%-10s %-12s %17.1f ms %11.1f ms %11.0f ms %6.1f MiB' % (
                w, n, meds[n], statistics.median(r['own']), statistics.median(r['total']),
                statistics.median(r['bytes']) / 2**20))
        print('%-10s downtime ratio casulo/qemu: %.2fx (target <= 0.5x)' % (w, meds['casulo-vmm'] / max(meds['qemu'], 0.001)))


if __name__ == '__main__':
    sys.exit(main())
