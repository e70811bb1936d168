#!/usr/bin/python3
"""Boot with 2M hugepages beside 4K pages: casulo-vmm booting the default
guest (1 vCPU, 256 MiB, the command line of bench/boot.py) with
`--memory size=256M,hugepages=2M` and with `--memory 256M` (4 KiB pages,
transparent huge pages advised, as by default).  Time from starting the
VMM to the guest's first userspace output; runs alternate; medians and
the ratio.  Reserves the 2M pool (vm.nr_hugepages) itself, as root, and
puts it back.  Firecracker reports boots up to 50% faster with hugepages.

usage: hugepages.py --vmm build/casulo-vmm --guest build/guest [--runs N]
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Vmm, lab_retry  # noqa: E402
from boot import CMDLINE, MEMORY_MIB, run_once  # noqa: E402

POOL = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True)
    ap.add_argument('--runs', type=int, default=10)
    args = ap.parse_args()
    base = Vmm('casulo-vmm', os.path.join(args.guest, 'vmlinuz'), os.path.join(args.guest, 'initrd.img'), args.vmm,
               cpus=1, memory_mib=MEMORY_MIB).argv(CMDLINE)
    i = base.index('--memory')
    argvs = {'2M': base[:i + 1] + ['size=%dM,hugepages=2M' % MEMORY_MIB] + base[i + 2:], '4K': base}
    with open(POOL) as f:
        saved = f.read().strip()
    try:
        with open(POOL, 'w') as f:
            f.write(str(MEMORY_MIB // 2 + 8))
        results = {n: [] for n in argvs}
        for n in argvs:  # warm-up: the first exec of a binary is slow in the lab
            lab_retry(lambda: run_once(argvs[n], False), 'warm-up')
        for r in range(args.runs):
            for n in (list(argvs) if r % 2 == 0 else list(argvs)[::-1]):
                t = lab_retry(lambda: run_once(argvs[n], False)[0], 'boot with %s pages' % n)
                results[n].append(t)
                print('run %2d %s pages: boot %6.3f s' % (r + 1, n, t), flush=True)
    finally:
        with open(POOL, 'w') as f:
            f.write(saved)
    huge, small = statistics.median(results['2M']), statistics.median(results['4K'])
    print()
    print('boot with hugepages: %d runs each, 1 vCPU, %d MiB, casulo-vmm' % (args.runs, MEMORY_MIB))
    print('2M hugepages %.3f s, 4K pages %.3f s (medians): ratio 2M/4K %.2fx (%+.0f%%)'
          % (huge, small, huge / small, (huge / small - 1) * 100))
    return 0


if __name__ == '__main__':
    sys.exit(main())
