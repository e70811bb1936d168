#!/usr/bin/python3
"""Density benchmark: host memory per idle guest, casulo-vmm beside QEMU's
microvm, same kernel, initrd, command line and count, in one run.

Each VMM runs COUNT idle 256 MiB guests of the default guest at once:
- casulo-vmm: one guest booted with `--memory size=256M,mergeable=on`,
  snapshotted once idle; the COUNT guests are restored from that snapshot,
  so their memory is mapped privately from the one snapshot file (clean
  pages shared through the page cache) and stays mergeable (KSM);
- QEMU microvm: COUNT guests booted with `-machine mem-merge=on` (KSM).
KSM runs for both (the same pages_to_scan and sleep) until pages_sharing
stops growing.  Then the host memory the guests cost is read two ways:
the sum of the VMM processes' PSS (/proc/PID/smaps_rollup: a page shared
by k processes, through KSM or the page cache, counts 1/k in each), and
the fall in the host's MemAvailable from before the first guest.  Per
guest: that over COUNT.  How many would fit: the MemAvailable before the
first guest over the per-guest PSS.  Runs alternate the VMMs; medians.

usage: density.py --vmm build/casulo-vmm --guest build/guest [--count N] [--runs N]
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
from benchlib import QUIET, api, in_lab, report, wait_output  # noqa: E402

MEMORY_MIB = 256
READY = b'CASULO-DENSITY-IDLE'
# The marker again every 5 s: a guest restored from the snapshot says it is there.
CMDLINE = QUIET + ' -- /bin/sh -c "while :; do echo CASULO-DENSITY-IDLE; sleep 5; done"'
KSM = '/sys/kernel/mm/ksm/'


def meminfo_kib(field):
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError('no %s in /proc/meminfo' % field)


def pss_kib(pid):
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            if line.startswith('Pss:'):
                return int(line.split()[1])
    return 0


def ksm_write(name, value):
    with open(KSM + name, 'w') as f:
        f.write(str(value))


def ksm_read(name):
    with open(KSM + name) as f:
        return int(f.read())


def ksm_settle(timeout):
    """Run KSM until pages_sharing grows by less than 1% over 15 s."""
    ksm_write('pages_to_scan', 4000)
    ksm_write('sleep_millisecs', 20)
    ksm_write('run', 1)
    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        time.sleep(15)
        now = ksm_read('pages_sharing')
        if last > 0 and now - last <= last // 100:
            break
        last = now
    return ksm_read('pages_sharing')


def ksm_reset():
    ksm_write('run', 2)  # unmerge everything: the next VMM starts from none
    deadline = time.monotonic() + 120
    while ksm_read('pages_sharing') and time.monotonic() < deadline:
        time.sleep(1)


class Guests:
    def __init__(self):
        self.procs = []

    def start(self, argv):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        wait_output(p, READY, timeout=600)
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stdout.close()
        self.procs = []


def casulo_snapshot(args, workdir):
    """Boot one mergeable guest to idle and snapshot it: the image the
    casulo-vmm guests are restored from."""
    snap, sock = os.path.join(workdir, 'snap'), os.path.join(workdir, 'api.sock')
    g = Guests()
    try:
        g.start([args.vmm, '--kernel', args.kernel, '--initrd', args.initrd, '--cmdline', CMDLINE,
                 '--memory', 'size=%dM,mergeable=on' % MEMORY_MIB, '--api-socket', sock, '--snapshot-dir', workdir])
        for path, body in (('/vm/state', {'state': 'paused'}), ('/snapshot/create', {'path': snap})):
            status, reply = api(sock, 'PUT', path, body)
            if status != 204:
                raise RuntimeError('PUT %s: HTTP %d %r' % (path, status, reply))
    finally:
        g.stop()
    return snap


def argv_for(name, args, snap):
    if name == 'casulo-vmm':
        return [args.vmm, '--restore', snap, '--console', 'stdio']
    return [shutil.which('qemu-system-x86_64'), '-M', 'microvm,accel=kvm,rtc=on,mem-merge=on', '-cpu', 'host',
            '-smp', '1', '-m', '%dM' % MEMORY_MIB, '-nodefaults', '-no-user-config', '-display', 'none',
            '-serial', 'stdio', '-kernel', args.kernel, '-initrd', args.initrd, '-append', CMDLINE]


def measure(name, args, snap):
    ksm_reset()
    available_before = meminfo_kib('MemAvailable')
    g = Guests()
    try:
        for _ in range(args.count):
            g.start(argv_for(name, args, snap))
        sharing = ksm_settle(args.settle)
        pss = sum(pss_kib(p.pid) for p in g.procs)
        drop = available_before - meminfo_kib('MemAvailable')
    finally:
        g.stop()
        ksm_reset()
    per_guest = pss / args.count
    return {'pss': per_guest / 1024, 'host': drop / args.count / 1024,
            'fit': available_before / per_guest, 'sharing': sharing * 4 / 1024 / args.count}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True)
    ap.add_argument('--count', type=int, default=4)
    ap.add_argument('--runs', type=int, default=2)
    ap.add_argument('--settle', type=int, default=240, help='at most this many seconds of KSM per measure')
    args = ap.parse_args()
    args.kernel = os.path.join(args.guest, 'vmlinuz')
    args.initrd = os.path.join(args.guest, 'initrd.img')
    if shutil.which('qemu-system-x86_64') is None:
        print('density.py: qemu-system-x86_64 not found; install qemu-system-x86', file=sys.stderr)
        return 2
    if not os.path.exists(KSM + 'run') or os.geteuid() != 0:
        print('density.py: needs KSM (%s) and root to drive it' % KSM, file=sys.stderr)
        return 2
    saved = {k: ksm_read(k) for k in ('run', 'pages_to_scan', 'sleep_millisecs')}
    names = ['casulo-vmm', 'qemu-microvm']
    results = {n: {'pss': [], 'host': [], 'fit': [], 'sharing': []} for n in names}
    snap_mib = 0.0
    try:
        with tempfile.TemporaryDirectory(prefix='casulo-density-', dir='/dev/shm' if in_lab() else None) as wd:
            snap = casulo_snapshot(args, wd)
            snap_mib = os.stat(os.path.join(snap, 'memory')).st_blocks * 512 / (1 << 20)
            for i in range(args.runs):
                for name in (names if i % 2 == 0 else names[::-1]):
                    r = measure(name, args, snap)
                    for k, v in r.items():
                        results[name][k].append(v)
                    print('run %d %-13s %d guests: PSS %.1f MiB/guest, MemAvailable -%.1f MiB/guest, '
                          'KSM saves %.1f MiB/guest, %.0f would fit' % (i + 1, name, args.count, r['pss'],
                                                                         r['host'], r['sharing'], r['fit']),
                          flush=True)
    finally:
        for k in ('pages_to_scan', 'sleep_millisecs', 'run'):
            ksm_write(k, saved[k])
    report('Density: %d idle %d MiB guests per VMM (casulo-vmm: restored from one snapshot, mergeable; '
           'QEMU microvm: mem-merge=on)' % (args.count, MEMORY_MIB),
           [('pss', 'PSS per guest', 'MiB'), ('host', 'host per guest', 'MiB'), ('sharing', 'KSM saved/guest', 'MiB')],
           results, names, higher_is_better=False)
    ours = statistics.median(results['casulo-vmm']['pss'])
    peer = statistics.median(results['qemu-microvm']['pss'])
    print('guests that would fit in the MemAvailable at start: casulo-vmm %.0f, qemu-microvm %.0f'
          % (statistics.median(results['casulo-vmm']['fit']), statistics.median(results['qemu-microvm']['fit'])))
    print('(casulo-vmm\'s guests also share the snapshot\'s memory file, %.1f MiB once for any count: '
          'in the page cache, in their PSS only as far as they map it)' % snap_mib)
    print('target: host memory per idle guest at most 0.5x QEMU\'s: %.2fx (%s)'
          % (ours / peer, 'met' if ours <= 0.5 * peer else 'NOT met'))
    spread = ours + snap_mib / args.count
    print('with the whole snapshot file charged to these %d guests: %.1f MiB per guest, %.2fx QEMU\'s'
          % (args.count, spread, spread / peer))
    return 0


if __name__ == '__main__':
    sys.exit(main())
