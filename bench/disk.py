#!/usr/bin/python3
"""Disk benchmark: fio (Debian's, copied into the guest with its libraries)
inside the guest against a virtio-blk disk, casulo-vmm beside QEMU microvm
with virtio-blk on the same raw image, in the same run, alternating.
Sequential 1 MiB read/write (MB/s), 4 KiB random read/write at queue
depth 32 (IOPS), and 4 KiB random reads one at a time (IOPS at queue
depth 1: the inverse of the latency).

usage: disk.py --vmm build/casulo-vmm --guest build/guest --initrd TOOLS_INITRD [--runs N]
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import NAMES, QUIET, json_between, lab_retry, report, run_guest, tool_bench_setup  # noqa: E402

METRICS = [('seq-read', 'seq read 1M', 'MB/s'), ('seq-write', 'seq write 1M', 'MB/s'),
           ('rand-read-4k', 'rand read 4K', 'IOPS'), ('rand-write-4k', 'rand write 4K', 'IOPS'),
           ('rand-read-4k-qd1', 'rand read 4K QD1', 'IOPS')]


def parse(out):
    data = json_between(out, 'FIO-JSON-BEGIN', 'FIO-JSON-END')
    r = {}
    for job in data['jobs']:
        name = job['jobname']
        side = job['read'] if 'read' in name else job['write']
        r[name] = side['bw_bytes'] / 1e6 if name.startswith('seq') else side['iops']
    return r


def main():
    args, vmms = tool_bench_setup()
    names = NAMES
    cmd = QUIET + (' -- /bin/sh -c "echo FIO-JSON-BEGIN; fio --output-format=json /bench/disk.fio; '
                   'echo FIO-JSON-END"')
    results = {n: {k: [] for k, _, _ in METRICS} for n in names}
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, 'disk.img')
        with open(img, 'wb') as f:
            f.write(os.urandom(1 << 20) * 256)  # 256 MiB of data: reads hit real blocks
        for i in range(args.runs):
            for n in (names if i % 2 == 0 else names[::-1]):
                r = lab_retry(lambda: parse(run_guest(vmms[n].argv(cmd, disks=[img]), timeout=300)[0]),
                              'run %d of %s' % (i + 1, n))
                for k in r:
                    results[n][k].append(r[k])
                print('run %d %-13s ' % (i + 1, n) + '  '.join('%s %.0f' % (k, r[k]) for k, _, _ in METRICS),
                      flush=True)
    report('disk benchmark: fio in the guest, %d runs each, 1 vCPU, 512 MiB, raw image, writeback cache'
           % args.runs, METRICS, results, names)


if __name__ == '__main__':
    sys.exit(main())
