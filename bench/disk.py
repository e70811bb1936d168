#!/usr/bin/python3
"""Disk benchmark: fio (Debian's, copied into the guest with its libraries)
inside the guest against a virtio-blk disk, casulo-vmm beside QEMU microvm
with virtio-blk on the same raw image and QEMU at its best for I/O
(aio=io_uring where this QEMU has it), in the same run, alternating.
Sequential 1 MiB read/write (MB/s), 4 KiB random read/write at queue
depth 32 (IOPS), and 4 KiB random reads one at a time (IOPS at queue
depth 1: the inverse of the latency).

The limit beside them: the same fio jobs run by the host itself (in the
lab, L1) on the same image file, with O_DIRECT where the image's file
system allows it; each VMM's figure is printed as a fraction of it.
Target: casulo-vmm reaches 0.8 of the host on sequential I/O.

A run whose fio fails, whose guest does not finish or whose report cannot
be read is run once more, then counted as failed (benchlib.run_or_fail).

usage: disk.py --vmm build/casulo-vmm --guest build/guest --initrd TOOLS_INITRD [--runs N]
"""
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (NAMES, QUIET, any_column_failed, between, json_between, load_line, print_failures,  # noqa: E402
                      print_target, report_with_host, run_guest, run_rounds, tool_bench_setup)

METRICS = [('seq-read', 'seq read 1M', 'MB/s'), ('seq-write', 'seq write 1M', 'MB/s'),
           ('rand-read-4k', 'rand read 4K', 'IOPS'), ('rand-write-4k', 'rand write 4K', 'IOPS'),
           ('rand-read-4k-qd1', 'rand read 4K QD1', 'IOPS')]
SEQUENTIAL = ('seq-read', 'seq-write')
TARGET = 0.8
HOST = 'host'
JOBS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'disk.fio')
GUEST_CMD = QUIET + (' -- /bin/sh -c "echo FIO-JSON-BEGIN; fio --output-format=json /bench/disk.fio; s=$?; '
                     'echo FIO-JSON-END; echo FIO-STATUS $s"')


def figures(data):
    """{job: MB/s or IOPS} from fio's JSON report; a job that reports an
    error, or a job missing, is a failed run."""
    r = {}
    for job in data.get('jobs', []):
        name = job['jobname']
        if job.get('error'):
            raise RuntimeError('fio job %s: error %d (%s)' % (name, job['error'], os.strerror(job['error'])))
        side = job['read'] if 'read' in name else job['write']
        r[name] = side['bw_bytes'] / 1e6 if name.startswith('seq') else side['iops']
    missing = [k for k, _, _ in METRICS if k not in r]
    if missing:
        raise RuntimeError('fio reported no %s' % ', '.join(missing))
    return r


def parse_guest(out):
    m = re.search(r'FIO-STATUS (\d+)', out)
    if m is None:
        raise RuntimeError('the guest did not finish fio; its output ends with %r' % out[-600:])
    if m.group(1) != '0':
        raise RuntimeError('fio in the guest exited with status %s: %r'
                           % (m.group(1), between(out, 'FIO-JSON-BEGIN', 'FIO-JSON-END')[-600:]))
    return figures(json_between(out, 'FIO-JSON-BEGIN', 'FIO-JSON-END'))


def host_jobs(img, direct, path):
    """disk.fio for the host: the image file instead of the guest's disk."""
    with open(JOBS) as f:
        text = f.read()
    text = text.replace('filename=/dev/vda', 'filename=' + img)
    if not direct:
        text = text.replace('direct=1', 'direct=0')
    with open(path, 'w') as f:
        f.write(text)


def run_host(jobfile):
    p = subprocess.run(['fio', '--output-format=json', jobfile], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=300)
    out = p.stdout.decode(errors='replace')
    if p.returncode != 0:
        raise RuntimeError('fio on the host exited with status %d: %s' % (p.returncode,
                                                                           p.stderr.decode(errors='replace')[-600:]))
    try:
        return figures(json.JSONDecoder().raw_decode(out[out.index('{'):])[0])
    except ValueError as e:
        raise RuntimeError('fio on the host printed no JSON report (%s): %r' % (e, out[-600:]))


def direct_io_note(img):
    """None if the image's file system takes O_DIRECT, else why not."""
    try:
        os.close(os.open(img, os.O_RDONLY | os.O_DIRECT))
        return None
    except OSError as e:
        fs = subprocess.run(['stat', '-f', '-c', '%T', img], capture_output=True, text=True).stdout.strip()
        return ('the image\'s file system (%s) refuses O_DIRECT (%s), so the host runs the jobs buffered%s'
                % (fs or 'unknown', errno.errorcode.get(e.errno, e.errno),
                   ': a tmpfs page cache is the storage itself, where the VMMs read and write too'
                   if e.errno == errno.EINVAL else ''))


def qemu_aio_io_uring(img):
    """('aio=io_uring', None) if this QEMU opens the image with io_uring,
    else ('', why not): QEMU then uses its default, aio=threads."""
    qemu = shutil.which('qemu-system-x86_64')
    if qemu is None:
        return '', 'qemu-system-x86_64 not found'
    try:
        p = subprocess.run([qemu, '-M', 'none', '-nodefaults', '-display', 'none', '-qmp', 'stdio', '-drive',
                            'id=probe,file=%s,format=raw,if=none,cache=writeback,aio=io_uring' % img],
                           input=b'{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n', capture_output=True,
                           timeout=120)
    except subprocess.TimeoutExpired:
        return '', 'QEMU did not answer a probe with aio=io_uring in 120 s'
    if p.returncode != 0:
        return '', 'QEMU refused aio=io_uring: %s' % p.stderr.decode(errors='replace').strip()[-300:]
    return 'aio=io_uring', None


def main():
    args, vmms = tool_bench_setup()
    names = NAMES
    print(load_line(), flush=True)
    failures = []
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, 'disk.img')
        with open(img, 'wb') as f:
            f.write(os.urandom(1 << 20) * 256)  # 256 MiB of data: reads hit real blocks
        aio, aio_note = qemu_aio_io_uring(img)
        vmms['qemu-microvm'].qemu_drive = ',' + aio if aio else ''
        direct_note = direct_io_note(img)
        jobfile = os.path.join(d, 'host.fio')
        host_jobs(img, direct_note is None, jobfile)
        argv = {n: vmms[n].argv(GUEST_CMD, disks=[img]) for n in names}

        def run_one(name):
            return run_host(jobfile) if name == HOST else parse_guest(run_guest(argv[name], timeout=300)[0])
        results = run_rounds(args.runs, names, HOST, METRICS, run_one, failures)
    notes = ['  (QEMU without aio=io_uring: %s)' % aio_note] if aio_note else []
    notes.append('host:         fio on disk.img with the guest\'s jobs (bench/disk.fio), %s'
                 % ('O_DIRECT' if direct_note is None else 'buffered: ' + direct_note))
    med = report_with_host('disk benchmark: fio, %d runs each, 1 vCPU, 512 MiB, raw image, writeback cache'
                           % args.runs, METRICS, results, names, HOST, argv, notes)
    print_target(med, METRICS, SEQUENTIAL, HOST, TARGET, 'sequential I/O')
    print(load_line())
    print_failures(failures)
    return 1 if any_column_failed(med) else 0


if __name__ == '__main__':
    sys.exit(main())
