#!/usr/bin/python3
"""virtio-fs benchmark: fio (Debian's, in the guest's tools initrd) writes
then reads a 256 MiB file in 1 MiB requests on a virtio-fs mount, beside
the same fio on the host, directly in the shared directory: the physical
limit the guest's figure is a fraction of.  Each run writes a fresh file
(ending with fsync) and reads it back with the page cache dropped first
(in the guest; on the host too, where that matters: a tmpfs keeps its
data in the page cache, as the lab's /dev/shm does).  A third column is
the same fio in the same guest on its own tmpfs: what the guest's CPU
and memory allow at all (in the lab, where the guest's code is emulated,
that and not the device is the bound).

usage: fs.py --vmm build/casulo-vmm --guest build/guest --initrd TOOLS_INITRD [--runs N]
"""
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import QUIET, Vmm, json_between, lab_retry, report, run_guest, tool_bench_setup  # noqa: E402

METRICS = [('write', 'seq write 256M', 'MB/s'), ('read', 'seq read 256M', 'MB/s')]
NAMES = ['virtio-fs', 'host', 'guest tmpfs']
SIZE = '256m'


def fio(job, path):
    return ('fio --output-format=json --name=%s --filename=%s --rw=%s --bs=1m --size=%s --ioengine=psync%s'
            % (job, path, job, SIZE, ' --end_fsync=1' if job == 'write' else ''))


def mbps(data):
    job = data['jobs'][0]
    side = job['write'] if job['jobname'] == 'write' else job['read']
    return side['bw_bytes'] / 1e6


def drop_caches():
    try:
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('3\n')
    except OSError:
        pass  # not root: the host's read may come from its page cache


def run_in_guest(vmm, share, where):
    """fio in the guest on the share (where /mnt) or its own tmpfs (/tmp)."""
    cmd = QUIET + (' -- /bin/sh -c "mount -t virtiofs share /mnt && rm -f /mnt/f && '
                   'echo W-BEGIN; %s; echo W-END; echo 3 > /proc/sys/vm/drop_caches; '
                   'echo R-BEGIN; %s; echo R-END"' % (fio('write', where + '/f'), fio('read', where + '/f')))
    out, _ = run_guest(vmm.argv(cmd) + ['--fs', 'tag=share,path=' + share], timeout=600)
    return {'write': mbps(json_between(out, 'W-BEGIN', 'W-END')), 'read': mbps(json_between(out, 'R-BEGIN', 'R-END'))}


def run_on_host(share):
    path = os.path.join(share, 'f')
    if os.path.exists(path):
        os.unlink(path)
    r = {}
    for job in ('write', 'read'):
        if job == 'read':
            drop_caches()
        p = subprocess.run(fio(job, path).split(), capture_output=True, text=True, check=True)
        r[job] = mbps(json_between('BEGIN' + p.stdout + 'END', 'BEGIN', 'END'))
    return r


def main():
    args, vmms = tool_bench_setup()
    vmm = Vmm('casulo-vmm', vmms['casulo-vmm'].kernel, args.initrd, args.vmm, memory_mib=1024)
    results = {n: {k: [] for k, _, _ in METRICS} for n in NAMES}
    # tmpfs where there is one (the lab's /dev/shm), as the shared directory.
    with tempfile.TemporaryDirectory(prefix='casulo-fs-bench-',
                                     dir='/dev/shm' if os.path.isdir('/dev/shm') else None) as share:
        for i in range(args.runs):
            for n in (NAMES if i % 2 == 0 else NAMES[::-1]):
                if n == 'host':
                    r = run_on_host(share)
                else:
                    where = '/mnt' if n == 'virtio-fs' else '/tmp'
                    r = lab_retry(lambda: run_in_guest(vmm, share, where), 'run %d of %s' % (i + 1, n))
                for k in r:
                    results[n][k].append(r[k])
                print('run %d %-10s ' % (i + 1, n) + '  '.join('%s %.0f MB/s' % (k, r[k]) for k, _, _ in METRICS),
                      flush=True)
    report('virtio-fs benchmark: fio, 256 MiB file, 1 MiB requests, %d runs each; guest: 1 vCPU, 1 GiB, '
           'the share on %s' % (args.runs, '/dev/shm (tmpfs)' if os.path.isdir('/dev/shm') else 'the temporary directory'),
           METRICS, results, NAMES)
    for key, label, _ in METRICS:
        own = statistics.median(results['guest tmpfs'][key])
        print('%s: virtio-fs is %.2fx of what the guest does on its own tmpfs' %
              (label, statistics.median(results['virtio-fs'][key]) / own if own else float('nan')))


if __name__ == '__main__':
    sys.exit(main())
