#!/usr/bin/python3
"""Containers in their own VM (docs/vm-containers.md) beside plain
containers, casulo-runtime both times, in one run:

  start    from `casulo-runtime run` to the container process's first
           output, plain and in VM mode (casulo-runtime-vm), and the bare
           boot of the same guest (casulo-vmm, same kernel, initrd, size,
           a command that prints a marker): VM mode should add at most
           that boot time plus 10%;
  memory   one VM-mode container running: its VMM's RSS outside guest RAM
           (target <= 10 MiB) and the PSS of all Casulo processes it has
           (monitor and VMM); then ten at once, whose PSS should be at
           most ten times one's;
  files    a 256 MiB file written (dd, conv=fsync) into the container's
           rootfs, and read back by a second container, in VM mode
           (virtio-fs in casulo-vmm) and plain.

Runs alternate between the kinds; the report gives medians.

usage: vm-container.py --build build [--runs N]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Vmm  # noqa: E402
from boot import rss_outside_guest_kib, run_once  # noqa: E402

MARKER = 'CASULO-BENCH-READY'
MEMORY_MIB = 512  # VM mode's default size (VMC_DEFAULT_MEMORY_MIB)
GUEST_CMDLINE = ('console=ttyS0 quiet panic=-1 reboot=k cryptomgr.notests -- /bin/sh -c "echo %s; poweroff -f"'
                 % MARKER)


def make_bundle(path, args, writable=False):
    rootfs = os.path.join(path, 'rootfs')
    os.makedirs(os.path.join(rootfs, 'bin'))
    for d in ('proc', 'sys', 'dev', 'tmp', 'etc', 'run'):
        os.makedirs(os.path.join(rootfs, d))
    busybox = shutil.which('busybox')
    shutil.copy2(busybox, os.path.join(rootfs, 'bin', 'busybox'))
    for a in ('sh', 'echo', 'sleep', 'dd', 'sync', 'true', 'time'):
        os.symlink('busybox', os.path.join(rootfs, 'bin', a))
    with open(os.path.join(rootfs, 'etc', 'passwd'), 'w') as f:
        f.write('root:x:0:0:root:/:/bin/sh\n')
    subprocess.run([RT, 'spec', '--bundle', path], check=True)
    with open(os.path.join(path, 'config.json')) as f:
        c = json.load(f)
    c['process']['terminal'] = False
    c['process']['args'] = args
    c['root']['readonly'] = not writable
    with open(os.path.join(path, 'config.json'), 'w') as f:
        json.dump(c, f)
    return path


_seq = [0]


def cid():
    _seq[0] += 1
    return 'bench-%d-%d' % (os.getpid(), _seq[0])


def first_output(runtime, bundle, timeout=300):
    """Seconds from starting `runtime run` to the first byte on its stdout."""
    argv = [runtime, '--root', ROOT, 'run', '--bundle', bundle, cid()]
    start = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.read(1)
    t = time.monotonic() - start
    rest, err = p.communicate(timeout=timeout)
    if not first or p.returncode != 0:
        raise RuntimeError('%s run: status %s: %s' % (runtime, p.returncode, err.decode(errors='replace')[-300:]))
    return t


def pss_kib(pid):
    try:
        with open('/proc/%d/smaps_rollup' % pid) as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    """pid and its descendants."""
    out = [pid]
    try:
        for t in os.listdir('/proc/%d/task' % pid):
            with open('/proc/%d/task/%s/children' % (pid, t)) as f:
                for c in f.read().split():
                    out += children(int(c))
    except OSError:
        pass
    return out


def start_detached(bundle):
    c = cid()
    subprocess.run([RT_VM, '--root', ROOT, 'run', '-d', '--bundle', bundle, c], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=300)
    st = json.loads(subprocess.run([RT_VM, '--root', ROOT, 'state', c], capture_output=True, text=True,
                                   check=True).stdout)
    with open(os.path.join(ROOT, c, 'vm.json')) as f:
        vmm = json.load(f)['vmm_pid']
    return c, st['pid'], vmm


def settle(pids, seconds=3.0):
    """Let the guests finish booting (their RAM stops growing)."""
    time.sleep(seconds)


def memory(bundle, n):
    """Start n VM-mode containers; returns (VMM RSS outside guest RAM of
    each, PSS of the Casulo processes of each) in KiB."""
    started = [start_detached(bundle) for _ in range(n)]
    try:
        settle(started)
        rss = [rss_outside_guest_kib(vmm, MEMORY_MIB << 20) for _, _, vmm in started]
        pss = [sum(pss_kib(p) for p in children(monitor)) for _, monitor, _ in started]
    finally:
        for c, _, _ in started:
            subprocess.run([RT_VM, '--root', ROOT, 'delete', '-f', c], stdout=subprocess.DEVNULL)
    return rss, pss


FILE_MIB = 256
# busybox's time applet (Debian's busybox dd prints no rate).
TIME = re.compile(r'real\s+(\d+)m\s*([0-9.]+)s')


def dd_mbps(runtime, bundle):
    """MiB/s of the dd the bundle runs, as timed inside the container."""
    p = subprocess.run([runtime, '--root', ROOT, 'run', '--bundle', bundle, cid()], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, timeout=900)
    m = TIME.search(p.stderr)
    if p.returncode != 0 or not m:
        raise RuntimeError('%s: dd: status %d: %s' % (runtime, p.returncode, p.stderr[-300:]))
    return FILE_MIB / max(int(m.group(1)) * 60 + float(m.group(2)), 0.01)


def main():
    global RT, RT_VM, ROOT
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', required=True)
    ap.add_argument('--runs', type=int, default=5)
    args = ap.parse_args()
    RT = os.path.abspath(os.path.join(args.build, 'casulo-runtime'))
    RT_VM = os.path.abspath(os.path.join(args.build, 'casulo-runtime-vm'))
    guest = os.path.abspath(os.path.join(args.build, 'guest'))
    work = tempfile.mkdtemp(prefix='casulo-bench-vmc.')
    ROOT = os.path.join(work, 'state')
    if not os.listdir('/sys/fs/cgroup'):  # the lab's L1 mounts no cgroups
        subprocess.run(['mount', '-t', 'cgroup2', 'none', '/sys/fs/cgroup'], check=False)
    try:
        echo = make_bundle(os.path.join(work, 'echo'), ['echo', MARKER])
        sleeper = make_bundle(os.path.join(work, 'sleep'), ['sleep', '600'])
        writer = make_bundle(os.path.join(work, 'fs'), ['time', 'dd', 'if=/dev/zero', 'of=/big', 'bs=1M',
                                                         'count=%d' % FILE_MIB, 'conv=fsync'], writable=True)
        reader = os.path.join(work, 'fs-read')
        os.makedirs(reader)
        with open(os.path.join(writer, 'config.json')) as f:
            c = json.load(f)
        c['root']['path'] = os.path.join(writer, 'rootfs')
        c['process']['args'] = ['time', 'dd', 'if=/big', 'of=/dev/null', 'bs=1M']
        with open(os.path.join(reader, 'config.json'), 'w') as f:
            json.dump(c, f)
        boot = Vmm('casulo-vmm', os.path.join(guest, 'vmlinux'), os.path.join(guest, 'initrd.img'),
                   os.path.join(args.build, 'casulo-vmm'), cpus=1, memory_mib=MEMORY_MIB).argv(GUEST_CMDLINE)

        # Warm-up: the first exec of each binary (over 9p in the lab) is slow.
        first_output(RT, echo)
        first_output(RT_VM, echo)
        run_once(boot, False)
        t = {'plain': [], 'vm': [], 'boot': []}
        for i in range(args.runs):
            t['plain'].append(first_output(RT, echo))
            t['vm'].append(first_output(RT_VM, echo))
            t['boot'].append(run_once(boot, False)[0])
            print('run %d: plain %.3f s, VM mode %.3f s, bare guest boot %.3f s'
                  % (i + 1, t['plain'][-1], t['vm'][-1], t['boot'][-1]), flush=True)

        one_rss, one_pss = [], []
        for i in range(max(3, args.runs // 2)):
            rss, pss = memory(sleeper, 1)
            one_rss += rss
            one_pss += pss
            print('memory run %d: VMM RSS outside guest RAM %d KiB, PSS of monitor+VMM %d KiB'
                  % (i + 1, rss[0], pss[0]), flush=True)
        ten_rss, ten_pss = memory(sleeper, 10)
        print('ten at once: VMM RSS outside guest RAM %s KiB; PSS %s KiB' % (ten_rss, ten_pss), flush=True)

        fs = {'plain-write': [], 'plain-read': [], 'vm-write': [], 'vm-read': []}
        for i in range(3):
            for kind, rt in (('plain', RT), ('vm', RT_VM)):
                fs[kind + '-write'].append(dd_mbps(rt, writer))
                fs[kind + '-read'].append(dd_mbps(rt, reader))
                os.unlink(os.path.join(writer, 'rootfs', 'big'))
            print('files run %d: plain write %.0f read %.0f MiB/s; VM write %.0f read %.0f MiB/s'
                  % (i + 1, fs['plain-write'][-1], fs['plain-read'][-1], fs['vm-write'][-1], fs['vm-read'][-1]),
                  flush=True)
    finally:
        subprocess.run(['sh', '-c', 'for c in $(ls "$1"); do "$2" --root "$1" delete -f "$c"; done', 'sh', ROOT, RT],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in t.items()}
    added = med['vm'] - med['plain']
    print()
    print('## start to first output (%d interleaved runs, medians; 1 vCPU, %d MiB guest)' % (args.runs, MEMORY_MIB))
    print('%-34s %9.3f s' % ('plain casulo-runtime run', med['plain']))
    print('%-34s %9.3f s   (%.1fx plain)' % ('VM mode (casulo-runtime-vm run)', med['vm'], med['vm'] / med['plain']))
    print('%-34s %9.3f s' % ('bare boot of the same guest', med['boot']))
    print('VM mode adds %.3f s = %.2fx the bare boot (target <= 1.10x)' % (added, added / med['boot']))
    print()
    print('## memory per VM-mode container (medians)')
    rss1, pss1 = statistics.median(one_rss), statistics.median(one_pss)
    print('VMM RSS outside guest RAM   %7.2f MiB (target <= 10 MiB)' % (rss1 / 1024))
    print('PSS of monitor + VMM        %7.2f MiB (guest RAM touched included)' % (pss1 / 1024))
    print('ten at once: PSS %7.2f MiB in all = %.2fx one (target <= 10x); VMM RSS outside guest RAM median '
          '%.2f MiB' % (sum(ten_pss) / 1024, sum(ten_pss) / pss1, statistics.median(ten_rss) / 1024))
    print()
    print('## a 256 MiB file in the rootfs (dd bs=1M; 3 runs, medians)')
    print('%-10s %16s %16s %8s' % ('', 'plain', 'VM mode', 'ratio'))
    for op in ('write', 'read'):
        p, v = statistics.median(fs['plain-' + op]), statistics.median(fs['vm-' + op])
        print('%-10s %11.0f MiB/s %11.0f MiB/s %7.2fx' % (op, p, v, v / p))
    return 0


if __name__ == '__main__':
    sys.exit(main())
