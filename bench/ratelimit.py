#!/usr/bin/python3
"""Rate limiter benchmark: what a disk limiter costs and how exact it is.

Cost: fio in the guest (bench/ratelimit.fio: sequential 1 MiB reads,
random 4 KiB reads at queue depth 32 and 1) on casulo-vmm with a limiter
far above what the disk can do (--disk ...,rate=1T/1s:100000000ops/1s:
every request goes through the buckets, none waits) beside the same
casulo-vmm without one, alternating, in one run.  The target: within 2%.
Accuracy: sequential reads under rate=10M/1s (MiB/s) and random reads
under rate=1000ops/1s (IOPS), the measured medians beside the limit.

usage: ratelimit.py --vmm build/casulo-vmm --guest build/guest --initrd TOOLS_INITRD [--runs N]
"""
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import QUIET, json_between, lab_retry, report, run_guest, tool_bench_setup  # noqa: E402

METRICS = [('seq-read', 'seq read 1M', 'MB/s'), ('rand-read-4k', 'rand read 4K', 'IOPS'),
           ('rand-read-4k-qd1', 'rand read 4K QD1', 'IOPS')]
FAR_ABOVE = '1T/1s:100000000ops/1s'
NAMES = ['limiter far above', 'no limiter']


def fio_cmd(jobs):
    return QUIET + (' -- /bin/sh -c "echo FIO-JSON-BEGIN; fio --output-format=json %s; echo FIO-JSON-END"' % jobs)


def parse(out):
    data = json_between(out, 'FIO-JSON-BEGIN', 'FIO-JSON-END')
    r = {}
    for job in data['jobs']:
        side = job['read']
        r[job['jobname']] = side['bw_bytes'] / 1e6 if job['jobname'].startswith('seq') else side['iops']
        r[job['jobname'] + ':bytes'] = side['bw_bytes']
    return r


def run(vmm, img, rate, jobs):
    # benchlib's Vmm writes "path=" before each disk: the rate rides along.
    disk = img + (',rate=' + rate if rate else '')
    return lab_retry(lambda: parse(run_guest(vmm.argv(fio_cmd(jobs), disks=[disk]), timeout=300)[0]),
                     'fio with rate=%s' % rate)


def main():
    args, vmms = tool_bench_setup()
    vmm = vmms['casulo-vmm']
    results = {n: {k: [] for k, _, _ in METRICS} for n in NAMES}
    accuracy = {'bw': [], 'iops': []}
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, 'disk.img')
        with open(img, 'wb') as f:
            f.write(os.urandom(1 << 20) * 256)  # 256 MiB of data: reads hit real blocks
        for i in range(args.runs):
            for n in (NAMES if i % 2 == 0 else NAMES[::-1]):
                r = run(vmm, img, FAR_ABOVE if n == NAMES[0] else None, '/bench/ratelimit.fio')
                for k, _, _ in METRICS:
                    results[n][k].append(r[k])
                print('run %d %-18s ' % (i + 1, n) + '  '.join('%s %.0f' % (k, r[k]) for k, _, _ in METRICS),
                      flush=True)
            r = run(vmm, img, '10M/1s', '--section=seq-read /bench/ratelimit.fio')
            accuracy['bw'].append(r['seq-read:bytes'] / (1 << 20))
            r = run(vmm, img, '1000ops/1s', '--section=rand-read-4k /bench/ratelimit.fio')
            accuracy['iops'].append(r['rand-read-4k'])
            print('run %d limited: %.2f MiB/s under 10M/1s, %.1f IOPS under 1000ops/1s'
                  % (i + 1, accuracy['bw'][-1], accuracy['iops'][-1]), flush=True)
    report('rate limiter cost: fio in the guest, %d runs each, 1 vCPU, 512 MiB, raw image, limiter %s'
           % (args.runs, FAR_ABOVE), METRICS, results, NAMES)
    bw, iops = statistics.median(accuracy['bw']), statistics.median(accuracy['iops'])
    print()
    print('rate limiter accuracy (medians of %d runs)' % args.runs)
    print('%-28s %10.2f MiB/s  limit 10 MiB/s  %+.1f%%' % ('seq read 1M, rate=10M/1s', bw, 100 * (bw / 10 - 1)))
    print('%-28s %10.1f IOPS   limit 1000 IOPS %+.1f%%' % ('rand read 4K, 1000ops/1s', iops, 100 * (iops / 1000 - 1)))


if __name__ == '__main__':
    sys.exit(main())
