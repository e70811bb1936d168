#!/usr/bin/python3
"""Snapshot benchmark: restore-to-running of casulo-vmm beside QEMU's
microvm restoring the same VM from a file, at several guest sizes.

The guest (same kernel, initrd and command line for both, 1 vCPU) fills a
quarter of its memory with data, says READY, then prints a counter line
("t123") in a tight shell loop: a line every millisecond or two, so the
moment a restored guest runs again is seen to a few milliseconds.

  casulo-vmm  saves with PUT /snapshot/create (a directory: the memory
              file, sparse, and the state), restores with --restore DIR;
  QEMU        saves with QMP `migrate exec:cat > FILE` (QEMU 7.2 has no
              file: URI), restores with -incoming "exec:cat FILE".

Restore-to-running is the time from starting the process to the first
whole counter line it prints.  Runs alternate between the two VMMs; the
report gives medians, the ratio and the sizes on disk.  casulo-vmm's
restores run with --log-level debug, whose timed start-up steps
("+12.345 ms (monotonic T s): KVM VM created") give the breakdown of its
own part, from the exec of the process (taken in the child just before
execve) to the guest's first instruction (the first KVM_RUN).

A run whose tool fails (a VMM that exits, no READY, no counter line, a
migration that fails) is run once more, then reported as failed.

usage: snapshot.py --vmm build/casulo-vmm --guest build/guest [--runs N] [--sizes 256,1024,4096]
"""
import argparse
import os
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import QUIET, Qmp, Vmm, api, wait_output  # noqa: E402

PROGRAM = ('yes casulo-fill | head -c %dm > /tmp/fill; echo READY; '
           'i=0; while :; do i=$((i+1)); echo t$i; done')
TICK = re.compile(rb'(?:^|\n)t[0-9]+\r?\n')
STEP = re.compile(r'\+([0-9.]+) ms \(monotonic ([0-9.]+) s\): (.*)')
QEMU_NAME = 'qemu-microvm'
NAMES = ['casulo-vmm', QEMU_NAME]


class RunFailed(Exception):
    pass


def spawn(argv, **kw):
    """Popen(argv), with the parent's clock before it and the child's
    clock just before its execve (written to a pipe by the child)."""
    rfd, wfd = os.pipe()

    def mark():
        os.write(wfd, struct.pack('d', time.monotonic()))
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(argv, preexec_fn=mark, stdin=subprocess.DEVNULL, **kw)
    finally:
        os.close(wfd)
    data = os.read(rfd, 8)
    os.close(rfd)
    return p, t0, struct.unpack('d', data)[0] if len(data) == 8 else t0


def stop(p):
    if p.poll() is None:
        p.kill()
    p.wait()


def wait_tick(p, timeout):
    """Read p's stdout until a whole counter line shows; its arrival time.
    Blocks in poll() meanwhile: a benchmark that polled in a loop would
    take CPU from the VMM it measures."""
    fd = p.stdout.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    buf = b''
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RunFailed('no counter line from the restored guest in %d s: %r' % (timeout, buf[-200:]))
        if not poller.poll(left * 1000):
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            raise RunFailed('exited with status %s before running the guest; its output ends %r'
                            % (p.poll(), buf[-200:]))
        buf += chunk
        if TICK.search(buf):
            return time.monotonic()


def run_restore(argv, err, timeout, who):
    """Start a restoring VMM (stderr to err) and wait for the guest's next
    line: (parent's clock before the start, child's before execve, line)."""
    with open(err, 'w') as f:
        p, t0, texec = spawn(argv, stdout=subprocess.PIPE, stderr=f)
    try:
        t1 = wait_tick(p, timeout)
    except RunFailed as e:
        raise RunFailed('%s; %s said %r' % (e, who, tail(err)))
    finally:
        stop(p)
    return t0, texec, t1


def tail(path, n=300):
    try:
        with open(path, errors='replace') as f:
            return f.read()[-n:]
    except OSError:
        return ''


def disk_bytes(path):
    if os.path.isdir(path):
        return sum(disk_bytes(os.path.join(path, f)) for f in os.listdir(path))
    return os.stat(path).st_blocks * 512


class Casulo:
    name = 'casulo-vmm'

    def __init__(self, args, work):
        self.args, self.work = args, work
        self.kernel = os.path.join(args.guest, 'vmlinuz')
        self.initrd = os.path.join(args.guest, 'initrd.img')

    def options(self):
        return '--restore DIR (memory file mapped privately), 1 vCPU, default devices'

    def save(self, mib, cmd):
        snap = os.path.join(self.work, 'casulo-%d' % mib)
        sock = os.path.join(self.work, 'casulo.sock')
        shutil.rmtree(snap, ignore_errors=True)
        argv = Vmm(self.name, self.kernel, self.initrd, self.args.vmm, cpus=1, memory_mib=mib).argv(cmd)
        err = os.path.join(self.work, 'casulo-save.err')
        with open(err, 'w') as f:
            p = subprocess.Popen(argv + ['--api-socket', sock, '--snapshot-dir', self.work], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=f)
        try:
            try:
                wait_output(p, b'READY', timeout=900)
            except RuntimeError as e:
                raise RunFailed('%s; it said %r' % (e, tail(err)))
            t = time.monotonic()
            status, body = api(sock, 'PUT', '/snapshot/create', {'path': snap})
            took = time.monotonic() - t
            if status != 204:
                raise RunFailed('PUT /snapshot/create: %d %r' % (status, body))
            api(sock, 'PUT', '/vm/stop')
            p.wait(timeout=60)
        except OSError as e:
            raise RunFailed('API: %s; casulo-vmm said %r' % (e, tail(err)))
        finally:
            stop(p)
        return snap, took

    def restore(self, snap):
        err = os.path.join(self.work, 'casulo-restore.err')
        t0, texec, t1 = run_restore([self.args.vmm, '--restore', snap, '--log-level', 'debug'], err, 120, self.name)
        return t1 - t0, steps(err, texec, t1)


def steps(err, texec, tline):
    """casulo-vmm's timed start-up steps, in ms since the exec: [(what, ms)]."""
    out, main_at = [], None
    with open(err, errors='replace') as f:
        for line in f:
            m = STEP.search(line)
            if m:
                at = float(m.group(2))
                if main_at is None:
                    main_at = at - float(m.group(1)) / 1000.0
                out.append((m.group(3), (at - texec) * 1000.0))
    if main_at is not None:
        out.insert(0, ('main() entered (exec)', (main_at - texec) * 1000.0))
    out.append(('first counter line read by the benchmark', (tline - texec) * 1000.0))
    return out


class Qemu:
    name = QEMU_NAME

    def __init__(self, args, work):
        self.args, self.work = args, work
        self.kernel = os.path.join(args.guest, 'vmlinuz')
        self.initrd = os.path.join(args.guest, 'initrd.img')

    def argv(self, mib, cmd):
        return Vmm(self.name, self.kernel, self.initrd, cpus=1, memory_mib=mib).argv(cmd)

    def options(self):
        a = self.argv(256, 'CMDLINE')
        a = ' '.join(x for x in a[1:] if x not in (self.kernel, self.initrd)).replace('256M', 'SIZE')
        return ('%s; saved with QMP migrate "exec:cat > FILE", restored with -incoming "exec:cat FILE" '
                '(QEMU 7.2 has no file: migration URI)' % a)

    def save(self, mib, cmd):
        path = os.path.join(self.work, 'qemu-%d.mig' % mib)
        qmp = os.path.join(self.work, 'qmp.sock')
        err = os.path.join(self.work, 'qemu-save.err')
        for f in (path, qmp):
            if os.path.exists(f):
                os.unlink(f)
        with open(err, 'w') as f:
            p = subprocess.Popen(self.argv(mib, cmd) + ['-qmp', 'unix:%s,server=on,wait=off' % qmp],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=f)
        try:
            try:
                wait_output(p, b'READY', timeout=900)
                q = Qmp(qmp)
            except (RuntimeError, OSError) as e:
                raise RunFailed('%s; QEMU said %r' % (e, tail(err)))
            try:
                t = time.monotonic()
                st = q.migrate('exec:cat > %s' % path, 0.01)
                took = time.monotonic() - t
                if st['status'] != 'completed':
                    raise RunFailed('QEMU migrate to a file: %r' % st)
                q.cmd('quit')
            except (RuntimeError, OSError, ValueError) as e:
                raise RunFailed('QMP: %s; QEMU said %r' % (e, tail(err)))
            finally:
                q.close()
        finally:
            stop(p)
        return path, took

    def restore(self, path):
        err = os.path.join(self.work, 'qemu-restore.err')
        mib = int(re.search(r'qemu-([0-9]+)\.mig$', path).group(1))
        t0, _, t1 = run_restore(self.argv(mib, 'restored') + ['-incoming', 'exec:cat %s' % path], err, 600,
                                'QEMU')
        return t1 - t0, None


def twice(fn, what):
    """fn(), run once more if its tool fails; None (said on stdout) if it
    fails again."""
    for attempt in (1, 2):
        try:
            return fn()
        except (RunFailed, RuntimeError, OSError, subprocess.SubprocessError) as e:
            print('%s failed%s: %s' % (what, ' again' if attempt == 2 else '; running it once more',
                                       str(e)[-400:]), flush=True)
    return None


def median(xs):
    return statistics.median(xs) if xs else float('nan')


def breakdown(runs):
    """Medians of the steps over the runs, in the order they happen."""
    by = {}
    for run in runs:
        for what, ms in run:
            by.setdefault(re.sub(r'\(.*\)$', '', what).strip() if 'first exit' in what else what, []).append(ms)
    rows = sorted(((statistics.median(v), k) for k, v in by.items()))
    print('  %-52s %12s %10s' % ('step (casulo-vmm, --log-level debug)', 'since exec', 'step'))
    prev = 0.0
    for at, what in rows:
        print('  %-52s %9.1f ms %7.1f ms' % (what[:52], at, at - prev))
        prev = at


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True)
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--sizes', default='256,1024,4096', help='guest sizes in MiB')
    args = ap.parse_args()
    if shutil.which('qemu-system-x86_64') is None:
        print('snapshot.py: qemu-system-x86_64 not found; install qemu-system-x86', file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(',')]
    work = tempfile.mkdtemp(prefix='bench-snapshot-', dir='/run' if os.path.isdir('/run') else None)
    vmms = [Casulo(args, work), Qemu(args, work)]
    res = {(m, v.name): {'restore': [], 'steps': [], 'create': None, 'disk': None, 'failed': 0}
           for m in sizes for v in vmms}
    try:
        for mib in sizes:
            cmd = QUIET + ' -- /bin/sh -c "%s"' % (PROGRAM % (mib // 4))
            saved = {}
            for v in vmms:
                got = twice(lambda: v.save(mib, cmd), '%d MiB %s: save' % (mib, v.name))
                if got:
                    saved[v.name] = got[0]
                    res[(mib, v.name)]['create'] = got[1]
                    res[(mib, v.name)]['disk'] = disk_bytes(got[0])
                    print('%5d MiB %-13s saved in %.3f s, %d MiB on disk' % (
                        mib, v.name, got[1], res[(mib, v.name)]['disk'] >> 20), flush=True)
            for i in range(args.runs + 1):  # the first round warms the page cache and the binaries
                for v in (vmms if i % 2 == 0 else vmms[::-1]):
                    if v.name not in saved:
                        continue
                    got = twice(lambda: v.restore(saved[v.name]), '%d MiB %s: restore %d' % (mib, v.name, i))
                    r = res[(mib, v.name)]
                    if got is None:
                        r['failed'] += 1
                        continue
                    if i == 0:
                        print('%5d MiB %-13s warm-up restore to running %.3f s' % (mib, v.name, got[0]), flush=True)
                        continue
                    r['restore'].append(got[0])
                    if got[1]:
                        r['steps'].append(got[1])
                    print('%5d MiB %-13s run %d restore to running %.3f s' % (mib, v.name, i, got[0]), flush=True)
            for path in saved.values():
                shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print('snapshot benchmark: restore to running (process start to the guest\'s next line), %d runs each, '
          'medians; 1 vCPU, the guest filled a quarter of its memory' % args.runs)
    for v in vmms:
        print('  %s: %s' % (v.name, v.options()))
    print('%-9s %13s %13s %8s %11s %11s %10s %10s' % ('guest', 'casulo-vmm', QEMU_NAME, 'ratio', 'save casulo',
                                                      'save qemu', 'disk ours', 'disk qemu'))
    for mib in sizes:
        c, q = res[(mib, 'casulo-vmm')], res[(mib, QEMU_NAME)]
        mc, mq = median(c['restore']), median(q['restore'])
        fails = ', '.join('%s failed %d' % (n, res[(mib, n)]['failed']) for n in NAMES if res[(mib, n)]['failed'])
        print('%-9s %11.3f s %11.3f s %7.3fx %9s s %9s s %6s MiB %6s MiB%s' % (
            '%d MiB' % mib, mc, mq, mc / mq if mq == mq and mq else float('nan'),
            '%.2f' % c['create'] if c['create'] is not None else '-',
            '%.2f' % q['create'] if q['create'] is not None else '-',
            c['disk'] >> 20 if c['disk'] is not None else '-', q['disk'] >> 20 if q['disk'] is not None else '-',
            '  (' + fails + ')' if fails else ''))
    ours = [median(res[(m, 'casulo-vmm')]['restore']) for m in sizes]
    if len(sizes) > 1 and ours[0] == ours[0] and ours[0]:
        print('casulo-vmm restore %d MiB / %d MiB: %.2fx (flat: it does not grow with guest memory)'
              % (sizes[-1], sizes[0], ours[-1] / ours[0]))
    print('target: ratio <= 0.1x, flat from the smallest to the largest guest')
    for mib in sizes:
        runs = res[(mib, 'casulo-vmm')]['steps']
        if runs:
            print()
            print('casulo-vmm restore of the %d MiB guest, step by step (medians of %d runs):' % (mib, len(runs)))
            breakdown(runs)
            own = [dict(r).get('vcpu 0: first KVM_RUN') for r in runs]
            own = [x for x in own if x is not None]
            if own:
                print('  the VMM\'s own part, exec to the first KVM_RUN: %.1f ms (target < 50 ms)' % median(own))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # a report, never a traceback
        print('snapshot.py: %s: %s' % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
