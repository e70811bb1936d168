#!/usr/bin/env python3
"""events (issue 16 item 2): `events --stats ID` prints one stats object
shaped as runc's, `events [--interval D] ID` a stream of them with OOM
events between, ending once the container's cgroup is gone; on v1 (and
hybrid) and on cgroup v2 (a mount namespace with cgroup2 at
/sys/fs/cgroup), compared with Debian's runc 1.1 where it runs."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (RUNTIME, STATE_ROOT, Bundle, contains, eq, fails, main, need_runc, ok_run, rt, rt2,  # noqa: E402
                     runc, start_detached, test, unique_id, v1_host, v2_available, wait_status)


def keys(o, path=''):
    """Every key path of a JSON object (memory.raw's own keys left out:
    they are the kernel's)."""
    out = set()
    if isinstance(o, dict):
        for k, v in o.items():
            out.add(f'{path}/{k}')
            if not path.endswith('/raw'):
                out |= keys(v, f'{path}/{k}')
    return out


def sleeper(limit=64 << 20):
    b = Bundle(['sleep', '60'])
    b.linux['resources']['memory'] = {'limit': limit}
    b.linux['resources']['pids'] = {'limit': 100}
    b.write()
    return b


def stats_of(p, cid):
    ok_run(p, 'events --stats')
    lines = p.stdout.splitlines()
    eq(len(lines), 1, 'one line')
    ev = json.loads(lines[0])
    eq((ev['type'], ev['id']), ('stats', cid), 'event type and id')
    return ev['data']


@test
def stats_once_as_runc_shows_them():
    v1_host()
    b = sleeper()
    cid, _ = start_detached(b)
    ours = stats_of(rt('events', '--stats', cid), cid)
    eq(ours['memory']['usage']['limit'], 64 << 20, 'memory limit')
    if not 0 < ours['memory']['usage']['usage'] <= 64 << 20:
        raise AssertionError(f'memory usage {ours["memory"]["usage"]}')
    eq(ours['pids'], {'current': 1, 'limit': 100}, 'pids')
    if ours['cpu']['usage']['total'] <= 0 or len(ours['cpu']['usage']['percpu']) != os.cpu_count():
        raise AssertionError(f'cpu usage {ours["cpu"]["usage"]}')
    if 'cache' not in ours['memory']['raw'] and 'file' not in ours['memory']['raw']:
        raise AssertionError('memory.raw lacks memory.stat')
    eq(ours['network_interfaces'], None, 'network_interfaces')
    need_runc()
    rid = unique_id('runc')
    ok_run(runc('run', '-d', '--bundle', b.dir, rid), 'runc run -d')
    theirs = stats_of(runc('events', '--stats', rid), rid)
    # runc 1.1 reads hugetlb from the v1 side only: a hybrid host keeps it
    # on cgroup2, where we read it (docs/CONFORMANCE.md).
    extra = {k for k in keys(ours) - keys(theirs) if k.startswith('/hugetlb/')}
    eq(keys(ours) - extra, keys(theirs), 'the same fields as runc')
    eq(ours['pids'], theirs['pids'], 'pids as runc')
    eq(ours['memory']['usage']['limit'], theirs['memory']['usage']['limit'], 'memory limit as runc')


@test
def a_stream_with_oom_events_that_ends_with_the_cgroup():
    v1_host()
    b = Bundle(['sh', '-c', 'sleep 0.5; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 0.5; '
                            'dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 60'])
    b.linux['resources']['memory'] = {'limit': 24 << 20}
    if os.path.exists('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes'):
        b.linux['resources']['memory']['swap'] = 24 << 20
    b.write()
    cid, _ = start_detached(b)
    out = open(os.path.join(STATE_ROOT, '..', cid + '.events'), 'w+')
    ev = subprocess.Popen([RUNTIME, '--root', STATE_ROOT, 'events', '--interval', '100ms', cid], stdout=out,
                          stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)
        ok_run(rt('delete', '-f', cid), 'delete while events streams')
        try:
            rc = ev.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError('events still streams after the container and its cgroup are gone')
        eq(rc, 0, f'events exit status ({ev.stderr.read().strip()})')
    finally:
        ev.kill()
        ev.wait()
    out.seek(0)
    events = [json.loads(line) for line in out.read().splitlines()]
    kinds = [e['type'] for e in events]
    eq(kinds.count('oom'), 2, f'two OOM events in {kinds}')
    # 2.5 s at 100 ms: about 25 stats; a busy machine may lose some.
    if not 10 <= kinds.count('stats') <= 30:
        raise AssertionError(f'{kinds.count("stats")} stats events in 2.5 s at a 100 ms interval')
    eq({e['id'] for e in events}, {cid}, 'ids')


@test
def bad_interval_and_stopped_container():
    v1_host()
    b = Bundle(['true'])
    cid = unique_id()
    ok_run(rt('create', '--bundle', b.dir, cid))
    fails(rt('events', '--interval', '0', cid), 'duration interval must be greater than 0', what='interval 0')
    fails(rt('events', '--interval', '5', cid), 'invalid value', 'for flag -interval', what='interval without unit')
    ok_run(rt('start', cid))
    wait_status(cid, 'stopped')
    p = fails(rt('events', '--stats', cid), f'container with id {cid} is not running', what='events of a stopped one')
    contains(p, 'level=error', 'an error as runc logs it')


@test
def cgroup_v2_stats():
    ctrls = v2_available()
    b = Bundle(['sleep', '60'])
    cid = unique_id()
    ok_run(rt2('run', '-d', '--bundle', b.dir, cid), 'run on cgroup v2')
    try:
        data = stats_of(rt2('events', '--stats', cid), cid)
        # cpu.stat is cgroup2's own; the rest as far as the host gives
        # cgroup2 controllers (this hybrid host keeps most on v1).
        if data['cpu']['usage'].get('total', 0) <= 0:
            raise AssertionError(f'cpu usage on v2: {data["cpu"]}')
        if 'pids' in ctrls:
            eq(data['pids'].get('current'), 1, 'pids.current')
        if 'memory' in ctrls and data['memory']['usage'].get('usage', 0) <= 0:
            raise AssertionError(f'memory on v2: {data["memory"]}')
        if 'hugetlb' in ctrls and os.path.isdir('/sys/kernel/mm/hugepages/hugepages-2048kB'):
            contains(list(data['hugetlb']), '2MB', 'hugetlb sizes')
    finally:
        rt2('delete', '-f', cid)


if __name__ == '__main__':
    sys.exit(main())
