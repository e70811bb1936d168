#!/usr/bin/env python3
"""Cgroups with the cgroupfs driver: runc's cgroupsPath rules, resources on
v1 (and hybrid's cgroup2 side), update of a running container, limits that
bite, removal on delete; cgroup v2 in a mount namespace where cgroup2 is
mounted at /sys/fs/cgroup (devices through eBPF, freezer, unified keys)."""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (STATE_ROOT, WORK, Bundle, Clean, Skip, cg_dirs, cgroup_mounts, container_cgroup_dirs,  # noqa: E402
                     contains, eq, fails, fails_clean, main, need_runc, ok_run, read, rt, rt2, run, runc, start_detached,
                     test, unique_id, v1_host, v2_available, v2_dir, wait_status)


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


# runc 1.1's update flags, one after the other on a runc container and on
# ours: after each, the same files hold the same values (or both fail).
UPDATES = [
    ['--memory', '128M'],
    ['--memory', '96m', '--memory-swap', '192m'],
    ['--memory-reservation', '32M'],
    ['--memory', '1.5g'],
    ['--cpu-share', '256'],
    ['--cpu-quota', '20000'],
    ['--cpu-period', '50000'],
    ['--cpu-quota', '-1'],
    ['--cpu-rt-period', '500000', '--cpu-rt-runtime', '1000'],
    ['--cpuset-cpus', '0', '--cpuset-mems', '0'],
    ['--pids-limit', '20'],
    ['--pids-limit', '0'],  # 0 leaves it
    ['--memory', '0'],
    ['--pids-limit', '-1'],
    ['--memory', '-1'],  # no limit: memory+swap lifted too
    ['--cpu-share', 'x'],
    ['--memory', 'lots'],
    ['--l3-cache-schema', 'L3:0=f'],
    ['-r', '-', '--pids-limit', '7'],  # the flags are ignored beside a file
]
UPDATE_FILES = {
    'memory': ['memory.limit_in_bytes', 'memory.soft_limit_in_bytes', 'memory.memsw.limit_in_bytes'],
    'cpu': ['cpu.shares', 'cpu.cfs_quota_us', 'cpu.cfs_period_us', 'cpu.rt_period_us', 'cpu.rt_runtime_us'],
    'cpuset': ['cpuset.cpus', 'cpuset.mems'],
    'pids': ['pids.max'],
}


def update_files(pid):
    d = cg_dirs(pid)
    return {f: read(d[c], f) for c, files in UPDATE_FILES.items() for f in files
            if c in d and os.path.exists(os.path.join(d[c], f))}


@test
def update_takes_runcs_flags_as_runc_does():
    v1_host()
    need_runc()
    b = Bundle(['sleep', '60'])
    b.linux['resources']['memory'] = {'limit': 64 << 20}
    b.linux['resources']['pids'] = {'limit': 50}
    b.write()
    cid, pid = start_detached(b)
    rid = unique_id('runc')
    ok_run(runc('run', '-d', '--bundle', b.dir, rid), 'runc run -d')
    rpid = json.loads(runc('state', rid).stdout)['pid']
    eq(update_files(pid), update_files(rpid), 'before any update')
    bad = []
    for args in UPDATES:
        stdin = json.dumps({'pids': {'limit': 33}}) if '-r' in args else None
        ours, theirs = rt('update', *args, cid, input=stdin), runc('update', *args, rid, input=stdin)
        if (ours.returncode == 0) != (theirs.returncode == 0):
            bad.append(f'{args}: exit {ours.returncode} ({ours.stderr.strip()}) vs runc {theirs.returncode} '
                       f'({theirs.stderr.strip()})')
        elif update_files(pid) != update_files(rpid):
            diff = {k: (v, update_files(rpid).get(k)) for k, v in update_files(pid).items()
                    if v != update_files(rpid).get(k)}
            bad.append(f'{args}: ours vs runc {diff}')
    if bad:
        raise AssertionError('; '.join(bad))
    eq(read(cg_dirs(pid)['pids'], 'pids.max'), '33', 'the file won over --pids-limit')


def devices_list(pid):
    return sorted(read(cg_dirs(pid)['devices'], 'devices.list').splitlines())


def probe_device_updates(runtime, list_of=None):
    """Open /dev/null (allowed by every rule set) and /dev/kmsg (denied by
    every one) in a tight loop while 40 updates switch between two rule
    sets; returns devices.list after each update when list_of is given."""
    out = tempfile.mkdtemp(dir=WORK)
    # Opens by the shell's own redirections, tens of thousands a second:
    # a window of a few writes between two rules would be seen.
    b = Bundle(['sh', '-c', 'n=0; while [ ! -e /out/stop ]; do n=$((n+1)); '
                            'true </dev/null 2>/dev/null || echo null-failed >> /out/log; '
                            'true </dev/kmsg 2>/dev/null && echo kmsg-opened >> /out/log; done; '
                            'echo loops=$n >> /out/log'])
    for k in ('bounding', 'effective', 'permitted'):
        b.process['capabilities'][k].append('CAP_SYSLOG')
    b.linux['devices'] = [{'path': '/dev/kmsg', 'type': 'c', 'major': 1, 'minor': 11, 'fileMode': 0o644}]
    b.config['mounts'].append({'destination': '/out', 'type': 'bind', 'source': out, 'options': ['rbind', 'rw']})
    b.write()
    cid = unique_id()
    ok_run(runtime('run', '-d', '--bundle', b.dir, cid), 'run -d')
    pid = json.loads(runtime('state', cid).stdout)['pid']
    sets = [[{'allow': False, 'access': 'rwm'}, {'allow': True, 'type': 'c', 'major': 10, 'minor': 229,
                                                 'access': 'rw'}],
            [{'allow': False, 'access': 'rwm'}, {'allow': True, 'type': 'b', 'major': 7, 'access': 'r'}]]
    lists = []
    time.sleep(0.2)
    for i in range(40):
        ok_run(runtime('update', '-r', '-', cid, input=json.dumps({'devices': sets[i % 2]})), f'update {i}')
        if list_of:
            lists.append(list_of(pid))
    open(os.path.join(out, 'stop'), 'w').close()
    for _ in range(200):
        if os.path.exists(os.path.join(out, 'log')) and 'loops=' in open(os.path.join(out, 'log')).read():
            break
        time.sleep(0.05)
    log = open(os.path.join(out, 'log')).read()
    runtime('delete', '-f', cid)
    loops = int(log.split('loops=')[1].split()[0])
    if loops < 1000:
        raise AssertionError(f'the probe ran {loops} times only: the updates were not watched')
    for bad in ('null-failed', 'kmsg-opened'):
        if bad in log:
            raise AssertionError(f'{bad} during updates ({log.count(bad)} times in {loops} loops)')
    return lists


@test
def update_device_rules_never_open_a_denied_device():
    # issue 16 item 4: device rules changed by update go through minimal
    # transitions, never the "a" rule in a deny-all cgroup, which would
    # close /dev/null for a moment (or, the other way round, open
    # /dev/kmsg): the probe sees it when it happens (21 times in 17,000
    # loops when every update wrote "a" first).
    if not os.path.isdir('/sys/fs/cgroup/devices'):
        raise Skip('no v1 devices controller on this host')
    lists = probe_device_updates(rt, devices_list)
    for i, lst in enumerate(lists):
        want, other = ('c 10:229 rw', 'b 7:* r') if i % 2 == 0 else ('b 7:* r', 'c 10:229 rw')
        if want not in lst or other in lst or any(x.startswith('a ') for x in lst) or 'c 1:3 rwm' not in lst:
            raise AssertionError(f'devices.list after update {i}: {lst}')


@test
def cgroup_v2_update_device_program_never_opens_a_denied_device():
    # The new program is attached before the old one is detached.
    v2_available()
    probe_device_updates(rt2)


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
    # runc 1.1: cgroup2 keys on a v1 or hybrid host are an invalid
    # configuration (issue 16 item 5), refused before anything is made.
    b.linux['resources'] = {'unified': {'memory.max': '1G'}}
    b.write()
    fails_clean(b, 'invalid configuration: cannot use unified on cgroup v1', what='unified keys on v1 or hybrid')


# ---- issue 16 item 5: cpuset parents, exec's cgroups, sub-cgroups ----

@test
def an_empty_cpuset_parent_is_filled_from_its_parent():
    # A cpuset cgroup made beforehand with empty cpus and mems takes no
    # process; runc fills it from its own parent, and so must we.
    v1_host()
    parent = f'/sys/fs/cgroup/cpuset/casulo-empty-{os.getpid()}'
    os.makedirs(parent)
    try:
        eq(read(parent, 'cpuset.cpus'), '', 'the parent starts empty')
        b = Bundle(['true'])
        b.linux['cgroupsPath'] = f'/{os.path.basename(parent)}/ctr'
        b.write()
        ok_run(run(b), 'run under an empty cpuset parent')
        eq(read(parent, 'cpuset.cpus'), read('/sys/fs/cgroup/cpuset', 'cpuset.cpus'), 'the parent filled in')
        need_runc()
        for f in ('cpuset.cpus', 'cpuset.mems'):
            write(parent, f, '\n')
        ok_run(runc('run', '--bundle', b.dir, unique_id('runc')), 'runc in the same case')
    finally:
        # The containers made the parent in every v1 hierarchy, as runc
        # does, and removed only their own cgroups.
        name = os.path.basename(parent)
        for d in glob.glob(f'/sys/fs/cgroup/*/{name}/ctr') + glob.glob(f'/sys/fs/cgroup/*/{name}'):
            if os.path.isdir(d):  # cpu and cpuacct may be one hierarchy under two names
                os.rmdir(d)


def cgroup_lines(pid):
    return sorted(open(f'/proc/{pid}/cgroup').read().splitlines())


def exec_detached_pid(runtime, cid, *args):
    pidfile = os.path.join(WORK, unique_id('exec') + '.pid')
    ok_run(runtime('exec', '-d', '--pid-file', pidfile, *args, cid, 'sleep', '30'), f'exec {" ".join(args)}')
    return int(open(pidfile).read())


@test
def exec_joins_every_cgroup_of_init():
    # On a hybrid host too: the v1 hierarchies and the cgroup2 one.
    b = Bundle(['sleep', '60'])
    cid, pid = start_detached(b)
    eq(cgroup_lines(exec_detached_pid(rt, cid)), cgroup_lines(pid), "exec'd process's cgroups")


@test
def exec_cgroup_joins_sub_cgroups_with_runcs_words():
    v1_host()
    need_runc()
    b = Bundle(['sleep', '60'])
    cid, pid = start_detached(b)
    rid = unique_id('runc')
    ok_run(runc('run', '-d', '--bundle', b.dir, rid), 'runc run -d')
    rpid = json.loads(runc('state', rid).stdout)['pid']
    for p in (pid, rpid):
        d = cg_dirs(p)
        for c in ('memory', 'pids', ''):
            if c in d:
                os.makedirs(os.path.join(d[c], 'sub'))

    def shown(runtime, name, *args):
        lines = cgroup_lines(exec_detached_pid(runtime, name, *args))
        return [line.split(':', 1)[1] for line in lines]

    # controller:path, several controllers, and the same path named from
    # the hierarchy's root ("memory:/sub" is the sub-cgroup too).
    for args in (['--cgroup', 'memory,pids:sub'], ['--cgroup', 'memory:/sub', '--cgroup', 'pids:sub']):
        ours = [x.replace(cid, 'ID') for x in shown(rt, cid, *args)]
        theirs = [x.replace(rid, 'ID') for x in shown(runc, rid, *args)]
        eq(ours, theirs, f'{args}: cgroups as runc puts them')
        contains(ours, 'memory:' + cg_dirs(pid)['memory'].split('/sys/fs/cgroup/memory')[1].replace(cid, 'ID') +
                 '/sub', f'{args}: memory sub-cgroup')
    # Bad arguments: the same words as runc, and 255 as runc exits.
    cases = [(['--cgroup', '../x'], '../x is not a sub cgroup path'),
             (['--cgroup', 'memory:../x'], '../x is not a sub cgroup path'),
             (['--cgroup', 'foo:sub'], 'unknown controller foo in SubCgroupPaths'),
             (['--cgroup', 'memory:sub', '--cgroup', 'sub2'], 'invalid --cgroup argument: sub2 (missing <controller>: prefix)'),
             (['--cgroup', 'a:b:c'], 'invalid --cgroup argument: a:b:c'),
             (['--cgroup', 'cpu:nosuch'], 'error adding pid')]
    bad = []
    for args, words in cases:
        ours, theirs = rt('exec', *args, cid, 'true'), runc('exec', *args, rid, 'true')
        for who, p in (('ours', ours), ('runc', theirs)):
            if p.returncode != 255 or words not in p.stderr:
                bad.append(f'{who} {args}: exit {p.returncode}, {p.stderr.strip()!r} (wanted 255 and {words!r})')
    if bad:
        raise AssertionError('; '.join(bad))


@test
def delete_force_removes_the_sub_cgroups_a_container_made():
    # With its cgroups mounted read-write (a cgroup namespace), a container
    # makes sub-cgroups in the v1 hierarchies and moves processes there.
    v1_host()
    b = Bundle(['sh', '-c', 'for d in /sys/fs/cgroup/*/; do mkdir -p $d/sub/deeper; done; '
                            'echo $$ > /sys/fs/cgroup/memory/sub/deeper/cgroup.procs; '
                            'echo $$ > /sys/fs/cgroup/pids/sub/cgroup.procs; '
                            'sleep 60 & echo $! > /sys/fs/cgroup/freezer/sub/deeper/cgroup.procs; '
                            'touch /tmp/ready; wait'])
    b.config['mounts'].append({'destination': '/sys/fs/cgroup', 'type': 'cgroup', 'source': 'cgroup',
                               'options': ['rw', 'nosuid', 'nodev', 'noexec']})
    b.linux['namespaces'].append({'type': 'cgroup'})
    b.write()
    cid, pid = start_detached(b)
    for _ in range(100):
        if os.path.exists(f'/proc/{pid}/root/tmp/ready'):
            break
        time.sleep(0.05)
    d = cg_dirs(pid)
    if not d['memory'].endswith('/sub/deeper') or not os.path.isdir(d['memory']):
        raise AssertionError(f'the container did not make its sub-cgroups: {d}')
    clean = Clean(cid)
    ok_run(rt('delete', '--force', cid), 'delete --force')
    clean.check()


# ---- cgroups that exist before the container: frozen, not empty ----

def dirs_by_controllers(cid):
    """controllers -> the container's directory there ('' = cgroup2)."""
    return dict(zip([c for c, _ in cgroup_mounts()], container_cgroup_dirs(cid)))


def write(d, name, value):
    with open(os.path.join(d, name), 'w') as f:
        f.write(value)


def freezers(cid):
    """(what, directory, file, frozen value, thawed value) for each freezer of this host."""
    dirs = dirs_by_controllers(cid)
    out = [('v1 freezer', dirs[c], 'freezer.state', 'FROZEN', 'THAWED') for c in dirs if c == 'freezer']
    if '' in dirs:
        out.append(('cgroup2', dirs[''], 'cgroup.freeze', '1', '0'))
    return out


def remove_cgroups(cid):
    """Thaw the container's cgroups, kill what they hold, remove them."""
    for _, d, f, _, thawed in freezers(cid):
        if os.path.isdir(d):
            write(d, f, thawed)
    for d in container_cgroup_dirs(cid):
        for _ in range(200):
            if not os.path.isdir(d):
                break
            for pid in read(d, 'cgroup.procs').split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(d)
            except OSError:
                time.sleep(0.02)


def no_answer(verb, what):
    return AssertionError(f'{verb} with a {what}: still waiting after 30 s (it would wait for good)')


@test
def a_frozen_cgroup_is_refused_not_waited_for():
    # issue 16: a cgroup frozen before `run` held the container's first
    # process, and the runtime waited for it for good.
    b = Bundle(['true'])
    if not freezers('x'):
        raise Skip('no freezer on this host')
    for verb in ('run', 'create'):
        for i in range(len(freezers('x'))):
            cid = unique_id()
            what, d, f, frozen, _ = freezers(cid)[i]
            os.makedirs(d)
            write(d, f, frozen)
            try:
                try:
                    p = rt(verb, '--bundle', b.dir, cid, timeout=30)
                except subprocess.TimeoutExpired:
                    raise no_answer(verb, f'frozen {what} cgroup')
                fails(p, "container's cgroup unexpectedly frozen", d, what=f'{verb} with a frozen {what} cgroup')
                if os.path.exists(os.path.join(STATE_ROOT, cid)):
                    raise AssertionError(f'{verb}: state directory left behind')
                eq(read(d, f).split()[0], frozen, f'{verb}: the frozen cgroup is not ours: left as it was')
                left = [x for x in container_cgroup_dirs(cid) if x != d and os.path.exists(x)]
                if left:
                    raise AssertionError(f'{verb}: cgroups left behind: {left}')
            finally:
                remove_cgroups(cid)


@test
def a_cgroup_frozen_during_setup_fails_the_create():
    # Every wait on the container's processes is bounded: frozen halfway
    # (here by a createRuntime hook), they cannot answer nor die.
    if not freezers('x'):
        raise Skip('no freezer on this host')
    for i in range(len(freezers('x'))):
        cid = unique_id()
        what, d, f, frozen, _ = freezers(cid)[i]
        b = Bundle(['true'])
        b.config['hooks'] = {'createRuntime': [{'path': '/bin/sh', 'args': ['sh', '-c', f'echo {frozen} > {d}/{f}']}]}
        b.write()
        clean = Clean(cid)
        try:
            start = time.time()
            try:
                p = run(b, cid, timeout=30)
            except subprocess.TimeoutExpired:
                raise no_answer('run', f'{what} cgroup frozen during setup')
            fails(p, 'frozen', what=f'run whose {what} cgroup is frozen during setup')
            if time.time() - start > 10:
                raise AssertionError(f'the frozen {what} cgroup was noticed after {time.time() - start:.1f} s')
            clean.check()
        finally:
            remove_cgroups(cid)


@test
def a_cgroup_with_processes_is_used_with_a_warning():
    # runc 1.1 warns and goes on; delete then kills what the cgroup holds.
    v1_host()
    cid = unique_id()
    sleeper = subprocess.Popen(['sleep', '60'])
    try:
        for d in container_cgroup_dirs(cid):
            os.makedirs(d)
            for f in ('cpuset.cpus', 'cpuset.mems'):  # a new cpuset takes no process until they are set
                if os.path.exists(os.path.join(d, f)):
                    write(d, f, read(os.path.dirname(d), f))
            write(d, 'cgroup.procs', str(sleeper.pid))
        clean = Clean(cid)
        p = run(Bundle(['true']), cid)
        ok_run(p, 'run in a cgroup that holds a process')
        contains(p.stderr, "container's cgroup is not empty: 1 process(es) found", 'warning')
        contains(p.stderr, 'level=warning', 'a warning, as runc logs it')
        clean.check()
        eq(sleeper.wait(timeout=5), -signal.SIGKILL, 'the process in the cgroup killed with the container')
    finally:
        sleeper.kill()
        sleeper.wait()
        remove_cgroups(cid)


# ---- device rules: linux.devices never widens them; access strings ----

# (linux.resources.devices, what reading and writing /dev/kmsg give) as runc
# makes them: linux.devices only adds the node; access is any combination of
# r, w, m; type 'a' is every device and every access.
KMSG_CASES = [
    ([{'allow': False, 'access': 'rwm'}], 'read=no write=no'),
    ([{'allow': False, 'access': 'rwm'}, {'allow': True, 'type': 'c', 'major': 1, 'minor': 11, 'access': 'mr'}],
     'read=ok write=no'),
    ([{'allow': False, 'access': 'rwm'}, {'allow': True, 'type': 'c', 'major': 1, 'minor': 11, 'access': 'wmrw'}],
     'read=ok write=ok'),
    ([{'allow': False, 'access': 'rwm'}, {'allow': True, 'type': 'c', 'major': 1, 'minor': 11, 'access': 'w'}],
     'read=no write=ok'),
    ([{'allow': True, 'access': 'rwm'}, {'allow': False, 'type': 'a', 'access': 'w'}], 'read=no write=no'),
]


def kmsg_bundle(rules):
    """/dev/kmsg listed in linux.devices (1:11 is not among the defaults);
    CAP_SYSLOG, so that the device cgroup alone decides.  Opening for
    writing writes nothing to the kernel's log."""
    b = Bundle(['sh', '-c', 'head -c 0 /dev/kmsg 2>/dev/null && echo read=ok || echo read=no; '
                            '(: > /dev/kmsg) 2>/dev/null && echo write=ok || echo write=no'])
    for k in ('bounding', 'effective', 'permitted'):
        b.process['capabilities'][k].append('CAP_SYSLOG')
    b.linux['devices'] = [{'path': '/dev/kmsg', 'type': 'c', 'major': 1, 'minor': 11, 'fileMode': 0o644}]
    b.linux['resources']['devices'] = rules
    b.write()
    return b


def check_kmsg_cases(runner):
    bad = []
    for rules, want in KMSG_CASES:
        p = runner(kmsg_bundle(rules))
        got = ' '.join(p.stdout.split()) if p.returncode == 0 else f'exit {p.returncode}: {p.stderr.strip()}'
        if got != want:
            bad.append(f'{rules}: {got!r}, wanted {want!r}')
    if bad:
        raise AssertionError(' | '.join(bad))


@test
def linux_devices_do_not_widen_the_device_rules():
    # issue 16: a device of linux.devices was allowed even under deny-all,
    # so /dev/kmsg became readable.
    if not os.path.isdir('/sys/fs/cgroup/devices'):
        raise Skip('no v1 devices controller on this host')
    check_kmsg_cases(lambda b: run(b))


# ---- cgroup v2: a mount namespace whose /sys/fs/cgroup is cgroup2 (ocitest.rt2) ----

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
def cgroup_v2_linux_devices_do_not_widen_the_device_program():
    v2_available()
    check_kmsg_cases(lambda b: rt2('run', '--bundle', b.dir, unique_id()))


@test
def cgroup_v2_frozen_cgroup_is_refused():
    v2_available()
    cid = unique_id()
    d = v2_dir(cid)
    os.makedirs(d)
    write(d, 'cgroup.freeze', '1')
    try:
        try:
            p = rt2('run', '--bundle', Bundle(['true']).dir, cid, timeout=30)
        except subprocess.TimeoutExpired:
            raise no_answer('run', 'frozen cgroup on cgroup v2')
        fails(p, "container's cgroup unexpectedly frozen", 'cgroup.events', what='run in a frozen v2 cgroup')
        eq(read(d, 'cgroup.freeze'), '1', 'left frozen')
        if os.path.exists(os.path.join(STATE_ROOT, cid)):
            raise AssertionError('state directory left behind')
    finally:
        write(d, 'cgroup.freeze', '0')
        for _ in range(100):
            try:
                os.rmdir(d)
                break
            except OSError:
                time.sleep(0.05)


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
