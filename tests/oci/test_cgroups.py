#!/usr/bin/env python3
"""Cgroups with the cgroupfs driver: runc's cgroupsPath rules, resources on
v1 (and hybrid's cgroup2 side), update of a running container, limits that
bite, removal on delete; cgroup v2 in a mount namespace where cgroup2 is
mounted at /sys/fs/cgroup (devices through eBPF, freezer, unified keys)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (RUNTIME, STATE_ROOT, WORK, Bundle, Clean, Skip, container_cgroup_dirs, contains, eq, fails,  # noqa: E402
                     fails_clean, main, ok_run, rt, run, start_detached, test, unique_id, wait_status)


def cg_dirs(pid):
    """controller -> the directory of pid's cgroup (v2: key '')."""
    mounts = {}
    with open('/proc/self/mountinfo') as f:
        for line in f:
            pre, post = line.split(' - ', 1)
            fstype, _, opts = post.split()[:3]
            mnt = pre.split()[4]
            if fstype == 'cgroup':
                for o in opts.split(','):
                    if o not in ('rw', 'ro'):
                        mounts.setdefault(o, mnt)
            elif fstype == 'cgroup2':
                mounts.setdefault('', mnt)
    out = {}
    with open(f'/proc/{pid}/cgroup') as f:
        for line in f:
            _, ctrls, path = line.rstrip('\n').split(':', 2)
            for c in (ctrls.split(',') if ctrls else ['']):
                if c in mounts:
                    out[c] = mounts[c] + path
    return out


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def v1_host():
    if not os.path.isdir('/sys/fs/cgroup/memory'):
        raise Skip('no cgroup v1 memory controller on this host')


@test
def resources_are_written():
    v1_host()
    b = Bundle(['sleep', '30'])
    res = b.linux['resources']
    res['memory'] = {'limit': 64 << 20, 'reservation': 32 << 20}
    res['cpu'] = {'shares': 512, 'quota': 50000, 'period': 100000, 'cpus': '0', 'mems': '0'}
    res['pids'] = {'limit': 50}
    b.write()
    cid, pid = start_detached(b)
    d = cg_dirs(pid)
    eq(read(d['memory'], 'memory.limit_in_bytes'), str(64 << 20), 'memory limit')
    eq(read(d['memory'], 'memory.soft_limit_in_bytes'), str(32 << 20), 'memory reservation')
    eq(read(d['cpu'], 'cpu.shares'), '512', 'cpu shares')
    eq(read(d['cpu'], 'cpu.cfs_quota_us'), '50000', 'cpu quota')
    eq(read(d['cpu'], 'cpu.cfs_period_us'), '100000', 'cpu period')
    eq(read(d['cpuset'], 'cpuset.cpus'), '0', 'cpuset cpus')
    eq(read(d['cpuset'], 'cpuset.mems'), '0', 'cpuset mems')
    eq(read(d['pids'], 'pids.max'), '50', 'pids limit')
    for c, path in d.items():
        if not path.endswith('/' + cid):
            raise AssertionError(f'{c}: {path} is not named after the container')
    clean = Clean(cid)
    ok_run(rt('delete', '-f', cid))
    clean.check()


@test
def swap_blkio_and_hugetlb_where_present():
    v1_host()
    b = Bundle(['sleep', '30'])
    res = b.linux['resources']
    dev = os.stat('/').st_dev
    res['blockIO'] = {'throttleReadBpsDevice': [{'major': os.major(dev), 'minor': os.minor(dev), 'rate': 1048576}]}
    hp = '/sys/kernel/mm/hugepages/hugepages-2048kB'
    if os.path.isdir(hp):
        res['hugepageLimits'] = [{'pageSize': '2MB', 'limit': 4 << 20}]
    b.write()
    cid, pid = start_detached(b)
    d = cg_dirs(pid)
    checked = 0
    if 'blkio' in d:
        contains(read(d['blkio'], 'blkio.throttle.read_bps_device'), f'{os.major(dev)}:{os.minor(dev)} 1048576',
                 'read bps')
        checked += 1
    if os.path.isdir(hp):
        if 'hugetlb' in d:
            eq(read(d['hugetlb'], 'hugetlb.2MB.limit_in_bytes'), str(4 << 20), 'hugetlb (v1)')
        else:
            eq(read(d[''], 'hugetlb.2MB.max'), str(4 << 20), 'hugetlb on the cgroup2 side of a hybrid host')
        checked += 1
    memsw = os.path.exists(os.path.join(d['memory'], 'memory.memsw.limit_in_bytes'))
    ok_run(rt('delete', '-f', cid))
    b.linux['resources'] = {'memory': {'limit': 64 << 20, 'swap': 128 << 20}}
    b.write()
    if memsw:
        cid, pid = start_detached(b)
        eq(read(cg_dirs(pid)['memory'], 'memory.memsw.limit_in_bytes'), str(128 << 20), 'memory+swap')
        checked += 1
    else:
        fails_clean(b, 'memory.swap', 'swap accounting', what='swap limit without swap accounting')
    if checked < 2:
        raise AssertionError('nothing to check on this host')


@test
def limits_bite():
    v1_host()
    b = Bundle(['sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo done'])
    b.linux['resources']['pids'] = {'limit': 4}
    b.write()
    p = run(b)
    contains(p.stderr + p.stdout, "can't fork", 'pids limit stops forks')
    b = Bundle(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=96M', 'count=1'])
    b.linux['resources']['memory'] = {'limit': 24 << 20}
    if os.path.exists('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes'):
        b.linux['resources']['memory']['swap'] = 24 << 20
    b.write()
    eq(run(b).returncode, 128 + 9, 'OOM kill under a 24M limit')


@test
def update_a_running_container():
    v1_host()
    b = Bundle(['sleep', '30'])
    b.linux['resources']['memory'] = {'limit': 64 << 20}
    b.linux['resources']['pids'] = {'limit': 50}
    b.write()
    cid, pid = start_detached(b)
    d = cg_dirs(pid)
    ok_run(rt('update', '--memory', '128M', '--pids-limit', '20', '--cpu-share', '256', '--cpu-quota', '20000',
              '--cpu-period', '100000', '--cpuset-cpus', '0', cid), 'update flags')
    eq(read(d['memory'], 'memory.limit_in_bytes'), str(128 << 20), 'memory after update')
    eq(read(d['pids'], 'pids.max'), '20', 'pids after update')
    eq(read(d['cpu'], 'cpu.shares'), '256', 'shares after update')
    eq(read(d['cpu'], 'cpu.cfs_quota_us'), '20000', 'quota after update')
    f = os.path.join(WORK, cid + '-res.json')
    json.dump({'memory': {'limit': 96 << 20}, 'pids': {'limit': 30}}, open(f, 'w'))
    ok_run(rt('update', '--resources', f, cid), 'update --resources FILE')
    eq(read(d['memory'], 'memory.limit_in_bytes'), str(96 << 20), 'memory from file')
    eq(read(d['pids'], 'pids.max'), '30', 'pids from file')
    ok_run(rt('update', '-r', '-', cid, input=json.dumps({'pids': {'limit': 40}})), 'update -r -')
    eq(read(d['pids'], 'pids.max'), '40', 'pids from stdin')
    fails(rt('update', '-r', '-', cid, input='{"pids": {"limit": "x"}}'), 'pids.limit', 'integer',
          what='update with a bad value')
    fails(rt('update', '--cpuset-cpus', '999', cid), 'cpuset.cpus', what='update to a cpu that does not exist')
    ok_run(rt('kill', cid, 'KILL'))
    wait_status(cid, 'stopped')
    fails(rt('update', '--pids-limit', '5', cid), 'stopped', what='update of a stopped container')


@test
def cgroups_path_rules():
    v1_host()
    parent = f'casulo-test-{os.getpid()}'
    b = Bundle(['sleep', '30'])
    try:
        for path in (f'/{parent}/abs', f'{parent}/rel'):
            b.linux['cgroupsPath'] = path
            b.write()
            cid, pid = start_detached(b)
            d = cg_dirs(pid)
            own = open('/proc/self/cgroup').read()
            mem_own = [line.split(':', 2)[2] for line in own.splitlines() if line.split(':')[1] == 'memory'][0]
            if path.startswith('/'):
                eq(d['memory'], f'/sys/fs/cgroup/memory{path}', 'absolute path from the hierarchy root')
            else:
                eq(d['memory'], os.path.normpath(f'/sys/fs/cgroup/memory{mem_own}/{path}'),
                   'relative path under the runtime\'s cgroup')
            clean = Clean(cid, cgroups_path=path)
            ok_run(rt('delete', '-f', cid))
            clean.check()
        b.linux['cgroupsPath'] = 'machine.slice:casulo:x'
        b.write()
        fails_clean(b, 'cgroupsPath', 'systemd', what='the systemd form without --systemd-cgroup')
    finally:
        # runc leaves the parents it made: so do we, and this test removes them.
        for path in ('/' + parent, parent):
            for d in container_cgroup_dirs('', path):
                if os.path.isdir(d):
                    os.rmdir(d)


@test
def bad_resource_values_fail_cleanly():
    v1_host()
    b = Bundle(['true'])
    b.linux['resources']['cpu'] = {'cpus': '999'}
    b.write()
    fails_clean(b, 'cpuset.cpus', '999', what='a cpu that does not exist')
    b.linux['resources'] = {'unified': {'memory.max': '1G'}}
    b.write()
    if not os.path.isdir('/sys/fs/cgroup/unified'):
        fails_clean(b, 'unified', 'v2', what='unified keys on v1')
    else:
        fails_clean(b, 'memory.max', what='a v2 key the hybrid cgroup2 side lacks')


# ---- cgroup v2: a mount namespace whose /sys/fs/cgroup is cgroup2 ----

V2_PREFIX = ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
             'umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"', 'sh']


def v2_available():
    if not shutil.which('unshare'):
        raise Skip('no unshare(1)')
    p = subprocess.run(V2_PREFIX + ['cat', '/sys/fs/cgroup/cgroup.controllers'], capture_output=True, text=True)
    if p.returncode != 0:
        raise Skip(f'cannot mount cgroup2 at /sys/fs/cgroup in a mount namespace: {p.stderr.strip()}')
    return p.stdout.split()


def rt2(*args, **kw):
    cmd = V2_PREFIX + [RUNTIME, '--root', STATE_ROOT] + [str(a) for a in args]
    with tempfile.TemporaryFile(mode='w+') as out, tempfile.TemporaryFile(mode='w+') as err:
        p = subprocess.run(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, timeout=60, **kw)
        out.seek(0)
        err.seek(0)
        p.stdout, p.stderr = out.read(), err.read()
    return p


def v2_dir(cid):
    """The container's cgroup2 directory, seen from the host (the same
    hierarchy is mounted at /sys/fs/cgroup/unified on a hybrid host)."""
    own = [line.split(':', 2)[2].strip() for line in open('/proc/self/cgroup') if line.startswith('0::')][0]
    base = '/sys/fs/cgroup/unified' if os.path.ismount('/sys/fs/cgroup/unified') else '/sys/fs/cgroup'
    return os.path.normpath(f'{base}/{own}/{cid}')


@test
def cgroup_v2_devices_freezer_unified_and_cleanup():
    ctrls = v2_available()
    b = Bundle(['sleep', '30'])
    b.linux['resources']['unified'] = {'cgroup.max.descendants': '3'}
    if 'hugetlb' in ctrls and os.path.isdir('/sys/kernel/mm/hugepages/hugepages-2048kB'):
        b.linux['resources']['hugepageLimits'] = [{'pageSize': '2MB', 'limit': 2 << 20}]
    b.write()
    cid = unique_id()
    ok_run(rt2('run', '-d', '--bundle', b.dir, cid), 'run on cgroup v2')
    d = v2_dir(cid)
    pid = json.loads(rt2('state', cid).stdout)['pid']
    eq(read(d, 'cgroup.procs').split(), [str(pid)], 'init in the v2 cgroup')
    eq(read(d, 'cgroup.max.descendants'), '3', 'unified key')
    if 'hugepageLimits' in b.linux['resources']:
        eq(read(d, 'hugetlb.2MB.max'), str(2 << 20), 'hugetlb.2MB.max')
    ok_run(rt2('pause', cid), 'pause (cgroup.freeze)')
    eq(read(d, 'cgroup.freeze'), '1', 'frozen')
    # The runtime must see the same cgroup mounts for a container's life.
    eq(json.loads(rt2('state', cid).stdout)['status'], 'paused', 'status paused')
    ok_run(rt2('resume', cid))
    eq(read(d, 'cgroup.freeze'), '0', 'thawed')
    ok_run(rt2('delete', '-f', cid))
    if os.path.exists(d):
        raise AssertionError(f'{d} left behind')


@test
def cgroup_v2_device_program():
    v2_available()
    from test_filesystem import openable_char_device
    maj, mnr = openable_char_device()
    b = Bundle(['sh', '-c', f'mknod /dev/probe c {maj} {mnr} && head -c 0 /dev/probe; echo rc=$?; '
                            'head -c 1 /dev/zero | wc -c'])
    out = rt2('run', '--bundle', b.dir, unique_id())
    contains(out.stdout + out.stderr, 'Operation not permitted', 'eBPF program denies the device')
    contains(out.stdout, 'rc=1\n1', 'default devices still usable')
    b.linux['resources']['devices'].append({'allow': True, 'type': 'c', 'major': maj, 'minor': mnr, 'access': 'rw'})
    b.write()
    eq(ok_run(rt2('run', '--bundle', b.dir, unique_id())), 'rc=0\n1\n', 'allowed by a rule')


@test
def cgroup_v2_missing_controller_is_a_clear_error():
    ctrls = v2_available()
    if 'memory' in ctrls:
        raise Skip('the memory controller is available on cgroup2 here')
    b = Bundle(['true'])
    b.linux['resources']['memory'] = {'limit': 64 << 20}
    b.write()
    cid = unique_id()
    p = rt2('run', '--bundle', b.dir, cid)
    fails(p, 'memory.max', 'memory controller', what='memory limit without the controller')
    if os.path.exists(v2_dir(cid)) or os.path.exists(os.path.join(STATE_ROOT, cid)):
        raise AssertionError('leftovers after the failure')


if __name__ == '__main__':
    sys.exit(main())
