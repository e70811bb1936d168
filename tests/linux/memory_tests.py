#!/usr/bin/python3
"""The `linux` suite's guest memory tests (--memory): hugetlb pages, NUMA
binding, KSM between guests, file-backed memory through a snapshot.

Runs in the lab where the host has no hardware virtualization; meson
boots that lab with two NUMA nodes (tests/lab/run --numa 2), so that a
binding to node 1 can be seen in /proc/PID/numa_maps.  The tests set the
L1 host up themselves (vm.nr_hugepages, KSM's run) and put it back.

usage: memory_tests.py --vmm build/casulo-vmm --guest build/guest
                       --tools build/tests/guest-tools/guest-tools.cpio [--filter SUBSTR]
"""
import os
import re
import sys
import time

import device_tests
from device_tests import MiB, Session, api_get, wait_for
from guest_tests import api_put, check, run_vmm
from taprun import Skip

TESTS = []
GUEST = '256M'
READY = 'echo READY; i=0; while :; do i=$((i+1)); echo tick=$i; sleep 1; done'


def test(fn):
    TESTS.append(fn)
    return fn


def write_sys(path, value):
    with open(path, 'w') as f:
        f.write(str(value))


def read_sys(path):
    with open(path) as f:
        return f.read().strip()


class HugePages:
    """vm.nr_hugepages set to n 2M pages for a test, then back."""
    POOL = '/sys/kernel/mm/hugepages/hugepages-2048kB/'

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        if not os.path.exists(self.POOL):
            raise Skip('this host has no 2M hugepages')
        self.before = int(read_sys(self.POOL + 'nr_hugepages'))
        write_sys(self.POOL + 'nr_hugepages', self.n)
        got = int(read_sys(self.POOL + 'free_hugepages'))
        if got < self.n:
            write_sys(self.POOL + 'nr_hugepages', self.before)
            raise Skip('only %d of %d 2M pages could be reserved' % (got, self.n))
        return self

    def free(self):
        return int(read_sys(self.POOL + 'free_hugepages'))

    def __exit__(self, *exc):
        write_sys(self.POOL + 'nr_hugepages', self.before)


def guest_mapping(pid, size_kib, table='smaps'):
    """The lines of /proc/PID/smaps (or numa_maps) about the mapping of
    size_kib KiB: the guest's RAM (nothing else of the VMM is that big)."""
    with open('/proc/%d/%s' % (pid, table)) as f:
        text = f.read()
    if table == 'smaps':
        for block in re.split(r'\n(?=[0-9a-f]+-[0-9a-f]+ )', text):
            m = re.match(r'([0-9a-f]+)-([0-9a-f]+) ', block)
            if m and (int(m.group(2), 16) - int(m.group(1), 16)) // 1024 == size_kib:
                return block
        raise AssertionError('no mapping of %d KiB in smaps' % size_kib)
    return text


def smaps_field(block, name):
    m = re.search(r'^%s:\s+(\d+) kB' % name, block, re.M)
    return int(m.group(1)) if m else 0


def memory_info(api):
    status, info = api_get(api, '/vm')
    check(status == 200, 'GET /vm: HTTP %d %r' % (status, info))
    return info['config']['memory']


@test
def hugepages_back_the_guest(g):
    # 256 MiB of 2M pages: the guest's RAM is hugetlb in the VMM's smaps,
    # the pool's pages are taken at start (reserved), a request larger than
    # the pool is refused before the guest runs, and the VM snapshots and
    # restores onto hugepages again.
    api, api2, snap = g.path('api.sock'), g.path('api2.sock'), g.path('snap')
    with HugePages(136) as pool:
        p = run_vmm(g.argv('true', ['--memory', 'size=512M,hugepages=2M']), timeout=60)
        check(p.returncode == 1 and 'the guest needs 256 free 2M pages, the host\'s pool has 136' in p.err
              and p.err.count('\n') == 1, 'a pool too small: exit %d %r' % (p.returncode, p.err))
        before = pool.free()
        # Under Landlock, which must let the machine's build read the pool.
        with g.start(READY, ['--memory', 'size=%s,hugepages=2M' % GUEST, '--api-socket', api, '--landlock', 'on',
                             '--snapshot-dir', os.path.dirname(snap)]) as s:
            s.expect(b'tick=2', 120)
            block = guest_mapping(s.p.pid, 256 * 1024)
            check(smaps_field(block, 'KernelPageSize') == 2048, 'page size: %r' % block)
            hugetlb = smaps_field(block, 'Private_Hugetlb') + smaps_field(block, 'Shared_Hugetlb')
            check(hugetlb > 0, 'no hugetlb pages in the guest mapping: %r' % block)
            # Reserved at the mapping: the pages taken plus those still
            # reserved are the guest's 128, whatever it touched so far.
            resv, taken = int(read_sys(pool.POOL + 'resv_hugepages')), before - pool.free()
            check(taken + resv == 128, 'pool: %d pages taken, %d reserved, 128 expected' % (taken, resv))
            mem = memory_info(api)
            check(mem['hugepages'] == '2M' and mem['page_kib'] == 2048, 'GET /vm: %r' % mem)
            status, body = api_put(api, '/vm/state', {'state': 'paused'})
            check(status == 204, 'pause: HTTP %d %r' % (status, body))
            status, body = api_put(api, '/snapshot/create', {'path': snap})
            check(status == 204, 'snapshot: HTTP %d %r' % (status, body))
        with Session([g.vmm, '--restore', snap, '--api-socket', api2]) as r:
            n = len(r.text())
            r.wait_for('ticks after the restore', lambda: 'tick=' in r.text()[n:], 90, beat=1)
            block = guest_mapping(r.p.pid, 256 * 1024)
            check(smaps_field(block, 'KernelPageSize') == 2048, 'restored page size: %r' % block)
            mem = memory_info(api2)
            check(mem['page_kib'] == 2048 and not mem['from_snapshot'], 'GET /vm after restore: %r' % mem)
        return 'hugetlb in smaps: %d KiB of the guest\'s RAM' % hugetlb


@test
def numa_bind_puts_memory_on_node_1(g):
    if not os.path.exists('/sys/devices/system/node/node1'):
        raise Skip('the host has one NUMA node (the lab boots two: tests/lab/run --numa 2)')
    api = g.path('api.sock')
    spec = 'size=%s,host-nodes=1,policy=bind,prefault=on' % GUEST
    # Under Landlock, which must let the machine's build see the nodes.
    with g.start(READY, ['--memory', spec, '--api-socket', api, '--landlock', 'on']) as s:
        s.expect(b'tick=1', 120)
        maps = guest_mapping(s.p.pid, 0, 'numa_maps')
        lines = [ln for ln in maps.splitlines() if 'bind:1' in ln]
        check(len(lines) == 1, 'one mapping bound to node 1 expected: %r' % maps[-1500:])
        nodes = dict((int(n), int(c)) for n, c in re.findall(r'\bN(\d+)=(\d+)', lines[0]))
        # prefault=on: all the guest's pages are there, every one on node 1.
        check(nodes.get(1, 0) > 0 and not nodes.get(0), 'pages per node: %r (%s)' % (nodes, lines[0]))
        mem = memory_info(api)
        check(mem['host_nodes'] == [1] and mem['policy'] == 'bind', 'GET /vm: %r' % mem)
    p = run_vmm(g.argv('true', ['--memory', 'size=%s,host-nodes=7,policy=bind' % GUEST]), timeout=60)
    check(p.returncode == 1 and 'node 7 does not exist' in p.err, 'node 7: exit %d %r' % (p.returncode, p.err))
    return 'node 1 holds %d pages' % nodes[1]


KSM = '/sys/kernel/mm/ksm/'


@test
def ksm_merges_four_identical_guests(g):
    if not os.path.exists(KSM + 'run'):
        raise Skip('this kernel has no KSM')
    saved = {k: read_sys(KSM + k) for k in ('run', 'pages_to_scan', 'sleep_millisecs')}
    # NUMA balancing (on in the lab's two-node L1) keeps turning the guests'
    # pages into NUMA hinting entries, which ksmd passes over: off here.
    balancing = '/proc/sys/kernel/numa_balancing'
    saved_balancing = read_sys(balancing) if os.path.exists(balancing) else None
    if saved_balancing is not None:
        write_sys(balancing, 0)
    sessions = []
    try:
        # One after another, and ksmd only once they run: four nested
        # boots at once, or beside a busy ksmd, starve each other in the lab.
        for _ in range(4):
            sessions.append(g.start(READY, ['--memory', 'size=%s,mergeable=on' % GUEST]))
            sessions[-1].expect(b'tick=1', 240)
        # A page merges once two full scans saw it unchanged: 4000 pages
        # every 20 ms get round 1 GiB of guests in about 5 s on hardware,
        # some minutes in the lab.
        write_sys(KSM + 'pages_to_scan', 4000)
        write_sys(KSM + 'sleep_millisecs', 20)
        write_sys(KSM + 'run', 1)

        def merged():
            if int(read_sys(KSM + 'pages_sharing')):
                return True
            print('# ksm: %s' % ', '.join('%s %s' % (k, read_sys(KSM + k)) for k in
                                          ('full_scans', 'pages_shared', 'pages_unshared', 'pages_volatile')),
                  flush=True)
            return False
        wait_for('pages_sharing > 0', merged, 420, 15)
        # Let ksmd go round once more: the figure, not only its sign.
        time.sleep(5)
        sharing = int(read_sys(KSM + 'pages_sharing'))
        shared = int(read_sys(KSM + 'pages_shared'))
        check(sharing > 0, 'pages_sharing went back to 0')
    finally:
        for s in sessions:
            s.stop()
        write_sys(KSM + 'run', 2)  # unmerge what is left (no process holds it now)
        for k in ('pages_to_scan', 'sleep_millisecs', 'run'):
            write_sys(KSM + k, saved[k])
        if saved_balancing is not None:
            write_sys(balancing, saved_balancing)
    return 'pages_sharing %d (%.1f MiB saved), pages_shared %d' % (sharing, sharing * 4096 / MiB, shared)


@test
def file_backed_memory_snapshot_maps_the_file(g):
    # backend=file,shared=on: the file is the guest's memory (the VMM
    # confined by Landlock).  A snapshot
    # leaves it out (no DIR/memory), records it, and the restore maps it;
    # once the restored guest ran on, the file no longer matches the
    # snapshot and a second restore is refused.
    api, api2, snap = g.path('api.sock'), g.path('api2.sock'), g.path('snap')
    ram = os.path.join('/dev/shm', 'casulo-ram-%d' % os.getpid())
    try:
        spec = 'size=%s,backend=file:%s,shared=on' % (GUEST, ram)
        # Under Landlock: the file, missing, is among the paths the VMM may
        # open (created empty, then sized), the snapshot beneath its dir.
        with g.start(READY, ['--memory', spec, '--api-socket', api, '--landlock', 'on',
                             '--snapshot-dir', os.path.dirname(snap)]) as s:
            s.expect(b'tick=2', 120)
            check(os.path.getsize(ram) == 256 * MiB, 'file size %d' % os.path.getsize(ram))
            mem = memory_info(api)
            check(mem['backend'] == 'file' and mem['shared'] and mem['path'] == ram, 'GET /vm: %r' % mem)
            status, body = api_put(api, '/vm/state', {'state': 'paused'})
            check(status == 204, 'pause: HTTP %d %r' % (status, body))
            status, body = api_put(api, '/snapshot/create', {'path': snap})
            check(status == 204, 'snapshot: HTTP %d %r' % (status, body))
        check(not os.path.exists(os.path.join(snap, 'memory')), 'the snapshot copied the memory')
        state = os.path.getsize(os.path.join(snap, 'state'))
        with Session([g.vmm, '--restore', snap, '--api-socket', api2]) as r:
            n = len(r.text())
            r.wait_for('ticks after the restore', lambda: re.search(r'tick=\d+', r.text()[n:]), 90, beat=1)
            mem = memory_info(api2)
            check(mem['backend'] == 'file' and mem['path'] == ram, 'GET /vm after restore: %r' % mem)
        p = run_vmm([g.vmm, '--restore', snap], timeout=60)
        check(p.returncode != 0 and 'changed since the snapshot' in p.err,
              'a changed file restored: exit %d %r' % (p.returncode, p.err[-300:]))
        return 'snapshot state %d bytes, no memory file' % state
    finally:
        if os.path.exists(ram):
            os.unlink(ram)


def main():
    return device_tests.main(TESTS, None, '/dev/shm' if os.path.isdir('/dev/shm') else None)


if __name__ == '__main__':
    sys.exit(main())
