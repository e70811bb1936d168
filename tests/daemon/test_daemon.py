#!/usr/bin/python3
"""casulod on this host, with containers (VMs: test_daemon_vm.py, in the
lab): the API against docs/casulod-api.yaml, bad input, the CLI, consoles,
events, metrics, reattach after SIGKILL, kill -9 during create and start,
50 concurrent clients, TLS with a token, the socket's permissions,
autostart.  Prints TAP; needs root."""
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from daemonlib import (BUILD, CASULO, CASULOD, Daemon, Events, Failure, Skip, UnixHTTP, WebSocket, bundle, check,
                       free_port, http_request, import_busybox, main, processes_with, test, validate,
                       validate_list, wait_for)

SPIN = ['sh', '-c', 'echo started; while true; do sleep 0.2; done']
# A container that ends on SIGTERM (sh as PID 1 ignores it otherwise).
POLITE = ['sh', '-c', 'trap "echo bye; exit 7" TERM; echo started; while true; do sleep 0.1; done']
ECHO = ['sh', '-c', 'echo ready; while read line; do echo "got:$line"; done']


def with_daemon(fn):
    def run():
        d = Daemon()
        try:
            fn(d)
        finally:
            d.cleanup()
    run.__name__ = fn.__name__
    return run


def listing(d):
    insts = d.get('/v1/instances')
    validate_list(insts, 'Instance')
    return {i['name']: (i['type'], i['state'], json.dumps(i['definition'], sort_keys=True)) for i in insts}


@test
@with_daemon
def server_info_and_empty_list(d):
    info = d.get('/v1')
    validate(info, 'ServerInfo')
    check(info['auth'] == 'unix' and info['reattach']['found'] == 0, 'info: %r' % info)
    check(info['first_start_since_boot'], 'a fresh state directory is a first start')
    check(d.get('/v1/instances') == [], 'not empty')
    check(d.get('/v1/operations') == [], 'operations not empty')
    check(d.get('/v1/images') == [], 'images not empty')


@test
@with_daemon
def malformed_requests_get_4xx_json_and_change_nothing(d):
    b = bundle(SPIN)
    d.create('keep', 'container', {'bundle': b})
    before = listing(d)
    good = {'name': 'x', 'type': 'vm', 'vm': {}}
    cases = [
        ('POST', '/v1/instances', None, '{bad json', 400, 'not valid JSON'),
        ('POST', '/v1/instances', None, '[1, 2]', 400, 'must be a JSON object'),
        ('POST', '/v1/instances', None, '{} {}', 400, 'trailing data'),
        ('POST', '/v1/instances', None, '', 400, 'needs a JSON body'),
        ('POST', '/v1/instances', None, '{"name":"a\\u0000b","type":"vm"}', 400, 'NUL'),
        ('POST', '/v1/instances', {'type': 'vm'}, None, 400, "field 'name' is missing"),
        ('POST', '/v1/instances', dict(good, name='Bad_Name'), None, 400, "field 'name' must match"),
        ('POST', '/v1/instances', dict(good, name='a' * 64), None, 400, 'must be 1 to 63 characters'),
        ('POST', '/v1/instances', dict(good, type='lxc'), None, 400, "field 'type' must be one of"),
        ('POST', '/v1/instances', dict(good, extra=1), None, 400, "unknown field 'extra'"),
        ('POST', '/v1/instances', dict(good, vm={'cpus': 0}), None, 400, "field 'vm.cpus' must be between 1 and 254"),
        ('POST', '/v1/instances', dict(good, vm={'cpus': 'two'}), None, 400, "'vm.cpus' must be an integer"),
        ('POST', '/v1/instances', dict(good, vm={'memory_mib': 16}), None, 400, "'vm.memory_mib' must be between 32"),
        ('POST', '/v1/instances', dict(good, vm={'memory_mib': 33}), None, 400, 'multiple of 2'),
        ('POST', '/v1/instances', dict(good, vm={'disks': [{'path': '/a,b'}]}), None, 400, "'vm.disks[0].path' must match"),
        ('POST', '/v1/instances', dict(good, vm={'disks': [{'path': '/a'}] * 9}), None, 400, 'at most 8 items'),
        ('POST', '/v1/instances', dict(good, vm={'nets': [{'tap': 'x' * 16}]}), None, 400, "'vm.nets[0].tap' must be 1 to 15"),
        ('POST', '/v1/instances', dict(good, vm={'kernel': 'relative'}), None, 400, "'vm.kernel' must match"),
        ('POST', '/v1/instances', dict(good, container={'bundle': b}), None, 400, "'container' does not go with type 'vm'"),
        ('POST', '/v1/instances', {'name': 'x', 'type': 'container', 'container': {}}, None, 400, 'exactly one of'),
        ('POST', '/v1/instances', {'name': 'x', 'type': 'container', 'container': {'bundle': b, 'env': ['NOEQ']}}, None, 400, "'container.env[0]' must match"),
        ('POST', '/v1/instances', dict(good, autostart={'order': -1}), None, 400, "'autostart.order' must be between"),
        ('POST', '/v1/instances', {'name': 'keep', 'type': 'container', 'container': {'bundle': b}}, None, 409, "instance 'keep' exists"),
        ('PUT', '/v1/instances/keep/state', {'action': 'explode'}, None, 400, "field 'action' must be one of"),
        ('PUT', '/v1/instances/keep/state', {'action': 'stop'}, None, 409, 'is stopped'),
        ('PUT', '/v1/instances/keep/state', {'action': 'start', 'timeout_s': -1}, None, 400, 'timeout_s'),
        ('PUT', '/v1/instances/nosuch/state', {'action': 'start'}, None, 404, "instance 'nosuch' does not exist"),
        ('PUT', '/v1/instances/UPPER/state', {'action': 'start'}, None, 400, "path parameter 'name' must match"),
        ('PATCH', '/v1/instances/keep', {'autostart': {'enabled': 'yes'}}, None, 400, "'autostart.enabled' must be true or false"),
        ('DELETE', '/v1/instances/keep?force=maybe', None, None, 400, "query parameter 'force' must be true or false"),
        ('DELETE', '/v1/instances/keep?forse=true', None, None, 400, "unknown query parameter 'forse'"),
        ('DELETE', '/v1/instances/keep', {'now': True}, None, 400, 'takes no body'),
        ('GET', '/v1/instances?type=lxc', None, None, 400, "query parameter 'type' must be one of"),
        ('GET', '/v1/instances/keep/logs?lines=0', None, None, 400, "'lines' must be between 1"),
        ('GET', '/v1/operations/zzz', None, None, 400, "path parameter 'id' must match"),
        ('GET', '/v1/operations/0123456789abcdef', None, None, 404, 'does not exist'),
        ('GET', '/v1/operations/0123456789abcdef/wait?timeout_s=x', None, None, 400, "'timeout_s' must be a number"),
        ('POST', '/v1/instances/keep/snapshot', {'path': '/tmp/s'}, None, 400, 'snapshots are for VMs'),
        ('POST', '/v1/instances/keep/migrate', {'destination': 'tcp:::::'}, None, 400, "'destination' must match"),
        ('GET', '/v1/events?types=all', None, None, 400, "'types' must match"),
        ('POST', '/v1/session', {'token': 'x'}, None, 400, 'sessions are for the TCP listener'),
        ('GET', '/v1/nothing', None, None, 404, 'no such resource'),
        ('DELETE', '/v1', None, None, 405, 'not allowed'),
        ('GET', '/v1/instances/keep/console', None, None, 409, 'is stopped'),
        ('POST', '/v1/instances', None, 'x' * (1100 * 1024), 413, 'larger than'),
    ]
    for method, path, body, raw, want, needle in cases:
        status, payload, _ = d.request(method, path, body, raw)
        check(status == want, '%s %s %.80r: HTTP %d, wanted %d: %r' % (method, path, body or raw, status, want, payload))
        check(needle in payload['error'], '%s %s: %r does not say %r' % (method, path, payload['error'], needle))
    check(listing(d) == before, 'a refused request changed the instances: %r' % listing(d))
    check(d.p.poll() is None, 'casulod died')


@test
@with_daemon
def missing_files_are_refused_at_create(d):
    cases = [
        ({'name': 'k', 'type': 'vm', 'vm': {'kernel': '/no/such/kernel'}}, "kernel '/no/such/kernel'"),
        ({'name': 'k', 'type': 'vm', 'vm': {'kernel': '/etc/hostname', 'initrd': '/no/initrd'}}, "initrd '/no/initrd'"),
        ({'name': 'k', 'type': 'vm', 'vm': {'kernel': '/etc/hostname', 'disks': [{'path': '/no/disk.img'}]}},
         "disk '/no/disk.img'"),
        ({'name': 'k', 'type': 'vm', 'vm': {'kernel': '/tmp'}}, 'not a regular file'),
        ({'name': 'k', 'type': 'container', 'container': {'bundle': '/no/bundle'}}, "bundle '/no/bundle'"),
    ]
    for body, needle in cases:
        status, payload, _ = d.request('POST', '/v1/instances', body)
        check(status == 422, 'create %r: HTTP %d %r' % (body, status, payload))
        check(needle in payload['error'], 'create: %r does not name %r' % (payload['error'], needle))
    check(d.get('/v1/instances') == [], 'a refused create left an instance')
    check(os.listdir(os.path.join(d.state, 'instances')) == [], 'a refused create left files')


@test
@with_daemon
def container_lifecycle_through_the_cli(d):
    b = bundle(POLITE)
    d.cli('create', 'container', 'web', '--bundle', b, '--memory', '64M', '--env', 'A=1', '--stop-timeout', '5',
          check_rc=0)
    p = d.cli('ls', '--json', check_rc=0)
    insts = json.loads(p.stdout)
    validate_list(insts, 'Instance')
    check([i['name'] for i in insts] == ['web'] and insts[0]['state'] == 'stopped', 'ls: %r' % insts)
    d.cli('start', 'web', check_rc=0)
    inst = json.loads(d.cli('info', 'web', '--json', check_rc=0).stdout)
    validate(inst, 'Instance')
    check(inst['state'] == 'running' and inst['pid'], 'info: %r' % inst)
    wait_for(lambda: 'started' in d.cli('logs', 'web').stdout, 10, 'the container\'s output in its log')
    p = d.cli('start', 'web')
    check(p.returncode == 1 and 'is running' in p.stderr, 'a second start: %r' % p.stderr)
    text = d.cli('ls', check_rc=0).stdout
    check('web' in text and 'running' in text and 'CPU%' in text, 'ls text: %r' % text)
    wait_for(lambda: json.loads(d.cli('info', 'web', '--json').stdout).get('usage'), 5, 'usage figures')
    inst = d.instance('web')
    check(inst['usage']['memory_bytes'] > 0, 'usage: %r' % inst['usage'])
    # stop: SIGTERM reaches the container, which ends with its own status.
    d.cli('stop', 'web', check_rc=0)
    inst = d.instance('web')
    check(inst['state'] == 'stopped' and inst['exit_status'] == 7 and inst['exit_reason'] == 'exited',
          'after stop: %r' % inst)
    check('bye' in d.cli('logs', 'web', '-n', '2').stdout, 'the stop signal did not reach the container')
    # kill: SIGKILL, recorded as such.
    d.cli('start', 'web', check_rc=0)
    d.cli('kill', 'web', check_rc=0)
    inst = d.instance('web')
    check(inst['exit_status'] == 137 and inst['exit_reason'] == 'killed', 'after kill: %r' % inst)
    # pause and resume.
    d.cli('start', 'web', check_rc=0)
    d.cli('pause', 'web', check_rc=0)
    check(d.instance('web')['state'] == 'paused', 'not paused')
    d.cli('resume', 'web', check_rc=0)
    check(d.instance('web')['state'] == 'running', 'not resumed')
    # rm: refused while running, forced otherwise.
    p = d.cli('rm', 'web')
    check(p.returncode == 1 and 'stop it first' in p.stderr, 'rm of a running one: %r' % p.stderr)
    d.cli('rm', '--force', 'web', check_rc=0)
    check(d.get('/v1/instances') == [] and not d.shims(), 'rm --force left something')
    check(not os.path.exists(os.path.join(d.state, 'logs', 'web.log')), 'the log stayed')
    top = json.loads(d.cli('top', '--once', '--json', check_rc=0).stdout)
    check(top == [], 'top: %r' % top)


@test
@with_daemon
def stop_forces_after_the_timeout(d):
    d.create('stubborn', 'container', {'bundle': bundle(SPIN)}, stop_timeout_s=1)
    d.action('stubborn', 'start')
    t = time.time()
    done = d.action('stubborn', 'stop')
    took = time.time() - t
    check(1 <= took < 10, 'stop took %.1f s' % took)
    check(done['result']['exit_status'] == 137, 'stop: %r' % done['result'])


@test
@with_daemon
def container_from_an_image_is_an_operation(d):
    ref = import_busybox(d.images)
    ev = Events(d.sock)
    status, op, r = d.request('POST', '/v1/instances',
                              {'name': 'img', 'type': 'container', 'container': {'image': ref}, 'start': True})
    check(status == 202 and r.getheader('Location') == '/v1/operations/' + op['id'], 'create: %d %r' % (status, op))
    done = d.wait_op(op)
    check(done['status'] == 'success', 'create: %r' % done)
    check(done['progress']['percent'] == 100, 'progress: %r' % done.get('progress'))
    check(d.instance('img')['state'] == 'running', 'not running')
    wait_for(lambda: 'from-image' in d.request('GET', '/v1/instances/img/logs')[1], 10, "the image's command")
    check(d.get('/v1/images')[0]['name'].endswith('casulod-test/busybox:1'), 'images: %r' % d.get('/v1/images'))
    wait_for(lambda: any(e['action'] == 'operation-done' and e['operation']['id'] == op['id'] for e in ev.events()),
             5, 'the operation-done event')
    # Prune keeps the layers a casulod container uses.
    p = subprocess.run([CASULO, 'image', 'prune'], capture_output=True, text=True,
                       env=dict(os.environ, CASULO_ROOT=d.images))
    check(p.returncode == 0, 'prune: %s' % p.stderr)
    d.action('img', 'restart', timeout_s=1)
    check(d.instance('img')['state'] == 'running', 'restart after prune')
    ev.close()
    # A missing image fails the operation and defines nothing.
    status, op, _ = d.request('POST', '/v1/instances',
                              {'name': 'none', 'type': 'container', 'container': {'image': 'localhost/nothing:1'}})
    done = d.wait_op(op)
    check(done['status'] == 'failure' and done['error'], 'a missing image: %r' % done)
    check([i['name'] for i in d.get('/v1/instances')] == ['img'], 'a failed create left an instance')
    check(sorted(os.listdir(os.path.join(d.state, 'instances'))) == ['img'], 'a failed create left files')


@test
@with_daemon
def console_has_viewers_and_one_writer(d):
    d.create('echo', 'container', {'bundle': bundle(ECHO)})
    d.action('echo', 'start')
    wait_for(lambda: 'ready' in d.request('GET', '/v1/instances/echo/logs')[1], 10, 'ready')
    w = WebSocket(d.sock, '/v1/instances/echo/console')
    check(w.status == 101, 'writer: %s' % w.head)
    v1 = WebSocket(d.sock, '/v1/instances/echo/console?mode=ro')
    v2 = WebSocket(d.sock, '/v1/instances/echo/console?mode=ro')
    check(v1.status == 101 and v2.status == 101, 'viewers refused')
    # History first: what the console said before they came.
    check(b'ready' in w.read_until('ready') and b'ready' in v1.read_until('ready'), 'no history')
    w2 = WebSocket(d.sock, '/v1/instances/echo/console?mode=rw')
    check(w2.status == 409 and b'has a writer already' in w2.buf, 'a second writer: %d %r' % (w2.status, w2.buf))
    w.send('hello\n')
    for ws in (w, v1, v2):
        ws.read_until('got:hello')
    v1.send('ignored\n')
    w.send('second\n')
    out = v2.read_until('got:second')
    check(b'got:ignored' not in out, "a viewer's input reached the console")
    # The writer's slot is free once it goes.
    w.close()
    w3 = wait_for(lambda: (lambda x: x if x.status == 101 else None)(WebSocket(d.sock, '/v1/instances/echo/console')),
                  5, 'the writer slot to free')
    w3.send('third\n')
    v1.read_until('got:third')
    # The instance stops: the viewers are told (close 1000).
    d.action('echo', 'kill')
    f = v2.recv_frame()
    while f and f[0] != 8:
        f = v2.recv_frame()
    check(f and f[1][:2] == b'\x03\xe8', 'no close 1000 at the stop: %r' % (f,))
    for ws in (v1, v2, w3):
        ws.close()
    # The CLI's console: input in, output out, over the same websocket.
    d.action('echo', 'start')
    p = d.cli('console', 'echo', input='from-cli\n', timeout=30)
    check('got:from-cli' in p.stdout, 'casulo console: %r %r' % (p.stdout, p.stderr))


@test
@with_daemon
def events_stream_lifecycle_and_operations(d):
    ev = Events(d.sock)
    time.sleep(0.2)
    d.create('ev', 'container', {'bundle': bundle(SPIN)})
    d.action('ev', 'start')
    d.action('ev', 'kill')
    d.request('DELETE', '/v1/instances/ev')
    want = ['instance-created', 'instance-starting', 'instance-started', 'instance-stopped', 'instance-deleted']
    got = wait_for(lambda: (lambda a: a if all(w in a for w in want) else None)(
        [e['action'] for e in ev.events() if e['type'] == 'lifecycle']), 10, 'the lifecycle events')
    check([a for a in got if a in want] == want, 'lifecycle events in order: %r' % got)
    ops = [e for e in ev.events() if e['type'] == 'operation']
    check(any(e['action'] == 'operation-created' for e in ops) and any(e['action'] == 'operation-done' for e in ops),
          'operation events: %r' % [e['action'] for e in ops])
    ids = [e['id'] for e in ev.events()]
    check(ids == sorted(ids) and len(set(ids)) == len(ids), 'event ids: %r' % ids)
    ev.close()
    # Last-Event-ID replays what came after it; types filters.
    mid = ids[len(ids) // 2]
    ev2 = Events(d.sock, query='?types=lifecycle', last_id=mid)
    got2 = wait_for(lambda: ev2.events(), 5, 'the replay')
    check(all(e['id'] > mid and e['type'] == 'lifecycle' for e in got2) and got2[-1]['action'] == 'instance-deleted',
          'replay: %r' % [(e['id'], e['action']) for e in got2])
    ev2.close()


@test
@with_daemon
def metrics_are_prometheus_text(d):
    from prometheus_client.parser import text_string_to_metric_families
    d.create('m', 'container', {'bundle': bundle(['sh', '-c', 'while true; do :; done'])})
    d.action('m', 'start')
    time.sleep(2.5)
    status, text, r = d.request('GET', '/metrics')
    check(status == 200 and r.getheader('Content-Type').startswith('text/plain; version=0.0.4'), 'metrics: %d' % status)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ('casulo_instance_up', 'casulo_instance_cpu_seconds', 'casulo_instance_memory_bytes',
                 'casulo_instance_disk_read_bytes', 'casulo_instance_network_receive_bytes', 'casulod_instances',
                 'casulod_http_requests'):
        check(name in fams, 'no %s in %r' % (name, sorted(fams)))
    up = {s.labels['name']: s.value for s in fams['casulo_instance_up'].samples}
    cpu = [s.value for s in fams['casulo_instance_cpu_seconds'].samples if s.labels == {'name': 'm', 'type': 'container'}]
    check(up == {'m': 1.0} and cpu and cpu[0] > 0.1, 'up %r, cpu %r' % (up, cpu))
    inst = d.instance('m')
    check(inst['usage']['cpu_percent'] > 5, 'a busy loop at %.1f%% CPU' % inst['usage']['cpu_percent'])


@test
@with_daemon
def reattach_after_sigkill(d):
    names = ['r1', 'r2', 'r3', 'short']
    for n in names[:3]:
        d.create(n, 'container', {'bundle': bundle(ECHO)})
        d.action(n, 'start')
    d.create('short', 'container', {'bundle': bundle(['sh', '-c', 'read x; exit 42'])})
    d.action('short', 'start')
    pids = {n: d.instance(n)['pid'] for n in names}
    shims = sorted(d.shims())
    check(len(shims) == 4, 'shims: %r' % shims)
    d.kill9()
    # While casulod is away, one ends (its input closes when its shim's
    # clients go; here it is told to end through the runtime).
    subprocess.run([os.path.join(os.path.dirname(CASULOD), 'casulo-runtime'), '--root',
                    os.path.join(d.run, 'runtime'), 'kill', 'short', 'KILL'], check=True)
    wait_for(lambda: os.path.exists(os.path.join(d.run, 'instances', 'short', 'exit')), 10, "short's end")
    t = time.time()
    d.start()
    ready = time.time() - t
    info = d.get('/v1')
    check(info['reattach']['found'] == 3 and info['reattach']['lost'] == 1, 'reattach: %r' % info['reattach'])
    check(info['reattach']['ms'] < 1000 and ready < 2, 'reattach took %.0f ms (ready after %.2f s)' % (
        info['reattach']['ms'], ready))
    check(not info['first_start_since_boot'], 'not a first start')
    for n in names[:3]:
        inst = d.instance(n)
        check(inst['state'] == 'running' and inst['pid'] == pids[n], '%s after reattach: %r' % (n, inst))
    short = d.instance('short')
    check(short['state'] == 'stopped' and short['exit_status'] == 137, 'short: %r' % short)
    check(sorted(d.shims()) == [s for s in shims if s in d.shims()] and len(d.shims()) == 3, 'shims: %r' % d.shims())
    # The console works again, with what was said meanwhile in its history.
    w = WebSocket(d.sock, '/v1/instances/r1/console')
    w.send('again\n')
    w.read_until('got:again')
    w.close()
    d.action('r2', 'stop', timeout_s=1)
    check(d.instance('r2')['state'] == 'stopped', 'stop after reattach')
    # A second casulod on the same state directory is refused.
    p = subprocess.run(d.argv(), capture_output=True, text=True, timeout=30)
    check(p.returncode == 1 and 'in use by another casulod' in p.stderr, 'a second casulod: %d %r' % (p.returncode,
                                                                                                    p.stderr))
    check(d.p.poll() is None and d.get('/v1')['pid'] == d.p.pid, 'the first one suffered')


def kill_context(d, name):
    """What a kill that did not end an instance leaves to look at: the
    runtime's state of it, the processes of its name, casulod's log."""
    rt = os.path.join(d.run, 'runtime')
    st = subprocess.run([os.path.join(BUILD, 'casulo-runtime'), '--root', rt, 'state', name], capture_output=True,
                        text=True)
    ps = subprocess.run(['ps', '-eo', 'pid,ppid,stat,args'], capture_output=True, text=True).stdout
    mine = [line for line in ps.splitlines() if name in line or 'casulod-shim' in line]
    return 'runtime state: %s %s; processes: %s; casulod: %s' % (
        st.stdout.strip()[-600:], st.stderr.strip()[-200:], mine[-10:], d.log_tail())


@test
@with_daemon
def kill9_during_create_and_start_leaves_all_or_nothing(d):
    ref = import_busybox(d.images)
    b = bundle(SPIN)
    rng = random.Random(15)
    for round_ in range(16):
        kind = round_ % 4
        name = 'k%d' % round_
        if kind == 1:
            d.create(name, 'container', {'bundle': b})
        conn = UnixHTTP(d.sock)
        if kind == 0:
            body = {'name': name, 'type': 'container', 'container': {'bundle': b}}
            conn.request('POST', '/v1/instances', body=json.dumps(body))
        elif kind == 1:
            conn.request('PUT', '/v1/instances/%s/state' % name, body='{"action":"start"}')
        elif kind == 2:
            body = {'name': name, 'type': 'container', 'container': {'image': ref}, 'start': True}
            conn.request('POST', '/v1/instances', body=json.dumps(body))
        else:
            body = {'name': name, 'type': 'container', 'container': {'bundle': b}, 'start': True}
            conn.request('POST', '/v1/instances', body=json.dumps(body))
        time.sleep(rng.uniform(0, 0.15))
        d.kill9()
        conn.close()
        d.start()
        insts = {i['name']: i for i in d.get('/v1/instances')}
        state_dirs = set(os.listdir(os.path.join(d.state, 'instances')))
        containers = {n for n, i in insts.items() if i['type'] == 'container'}
        check(state_dirs == containers, 'round %d: bundles %r for instances %r' % (round_, state_dirs, containers))
        if name in insts:
            # Whole: it starts (or runs already) and stops.
            if insts[name]['state'] == 'stopped':
                d.action(name, 'start')
            check(d.instance(name)['state'] == 'running', 'round %d: %r' % (round_, d.instance(name)))
            try:
                d.action(name, 'kill')
            except Failure as e:
                # Seen once under load: "still running 10 s after SIGKILL".
                raise Failure('round %d (kind %d): %s; %s' % (round_, kind, e, kill_context(d, name)))
        # Nothing runs that casulod does not know of.
        running = {i['name'] for i in d.get('/v1/instances') if i['state'] != 'stopped'}
        check(len(d.shims()) == len(running), 'round %d: %d shims for %r' % (round_, len(d.shims()), running))
        rt = os.path.join(d.run, 'runtime')
        leftover = set(os.listdir(rt)) - running if os.path.isdir(rt) else set()
        check(not leftover, 'round %d: runtime containers left: %r' % (round_, leftover))


@test
@with_daemon
def fifty_concurrent_clients_over_a_hundred_instances(d):
    b = bundle(SPIN)
    errors = []
    created = set()
    lock = threading.Lock()

    def client(k):
        try:
            for j in range(2):
                name = 'c%02d-%d' % (k, j)
                status, payload, _ = d.request('POST', '/v1/instances', {'name': name, 'type': 'container',
                                                                         'container': {'bundle': b}, 'start': j == 0})
                if status == 202:
                    done = d.wait_op(payload)
                    if done['status'] != 'success':
                        errors.append('%s: %s' % (name, done['error']))
                elif status != 201:
                    errors.append('%s: HTTP %d %r' % (name, status, payload))
                with lock:
                    created.add(name)
                status, lst, _ = d.request('GET', '/v1/instances')
                if status != 200:
                    errors.append('list: %d' % status)
            # A name another client is creating: exactly one of them wins.
            status, _, _ = d.request('POST', '/v1/instances', {'name': 'shared', 'type': 'container',
                                                               'container': {'bundle': b}})
            if status not in (201, 409):
                errors.append('shared: %d' % status)
            for j in range(2):
                name = 'c%02d-%d' % (k, j)
                status, payload, _ = d.request('DELETE', '/v1/instances/%s?force=true' % name)
                if status == 202:
                    d.wait_op(payload)
                elif status != 204:
                    errors.append('delete %s: %d %r' % (name, status, payload))
        except Exception as e:  # noqa: BLE001 - collected, reported below
            errors.append('client %d: %r' % (k, e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(50)]
    t = time.time()
    for th in threads:
        th.start()
    for th in threads:
        th.join(600)
    took = time.time() - t
    # A failure says whether casulod itself went away, and what it logged.
    check(not errors, '%d errors, first %r; casulod %s; its log ends: %s' % (
        len(errors), errors[:3], 'runs' if d.p.poll() is None else 'exited %d' % d.p.returncode, d.log_tail()))
    check(len(created) == 100, 'created %d' % len(created))
    names = [i['name'] for i in d.get('/v1/instances')]
    check(names == ['shared'], 'left: %r' % names)
    check(not d.shims(), 'orphan shims: %r' % d.shims())
    rt = os.path.join(d.run, 'runtime')
    check(not os.listdir(rt), 'runtime containers left: %r' % os.listdir(rt))
    check(sorted(os.listdir(os.path.join(d.state, 'instances'))) == ['shared'], 'bundles left')
    # The same after a restart: what is on disk is what was listed.
    d.stop()
    d.start()
    check([i['name'] for i in d.get('/v1/instances')] == ['shared'], 'after restart')
    print('# 50 clients, 100 instances created, 50 started, all deleted in %.1f s' % took)


@test
def tls_listener_needs_its_token():
    base = tempfile.mkdtemp(prefix='cd-tls-', dir='/tmp')
    from imagetest import make_ca
    make_ca(base)
    token = os.path.join(base, 'token')
    with open(token, 'w') as f:
        f.write('s3cret-token-0123456789\n')
    port = free_port()
    # No TCP without TLS and a token.
    p = subprocess.run([CASULOD, '--state-dir', base + '/s', '--run-dir', base + '/r', '--listen', '127.0.0.1:1'],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 2 and 'needs --tls-cert, --tls-key and --token-file' in p.stderr, 'plain TCP: %r' % p.stderr)
    d = Daemon(base=base, extra=['--listen', '127.0.0.1:%d' % port, '--tls-cert', base + '/server.crt',
                                 '--tls-key', base + '/server.key', '--token-file', token])
    try:
        ctx = ssl.create_default_context(cafile=base + '/ca/ca.crt')

        def req(method, path, headers=None, body=None):
            import http.client
            c = http.client.HTTPSConnection('127.0.0.1', port, context=ctx, timeout=20)
            try:
                return http_request(c, method, path, body=body, headers=headers)
            finally:
                c.close()
        status, payload, r = req('GET', '/v1')
        check(status == 401 and r.getheader('WWW-Authenticate', '').startswith('Bearer'), 'no token: %d' % status)
        validate(payload, 'Error')
        status, _, _ = req('GET', '/v1', {'Authorization': 'Bearer wrong-token-0123456789'})
        check(status == 401, 'a wrong token: %d' % status)
        status, info, _ = req('GET', '/v1', {'Authorization': 'Bearer s3cret-token-0123456789'})
        check(status == 200 and info['auth'] == 'token', 'the token: %d %r' % (status, info))
        # The session cookie, and the Origin it needs.
        status, _, r = req('POST', '/v1/session', body={'token': 'nope'})
        check(status == 401, 'a wrong session token: %d' % status)
        status, _, r = req('POST', '/v1/session', body={'token': 's3cret-token-0123456789'})
        cookie = r.getheader('Set-Cookie', '')
        check(status == 204 and 'HttpOnly' in cookie and 'Secure' in cookie and 'SameSite=Strict' in cookie,
              'session: %d %r' % (status, cookie))
        jar = cookie.split(';')[0]
        status, _, _ = req('GET', '/v1/instances', {'Cookie': jar})
        check(status == 200, 'the cookie: %d' % status)
        status, _, _ = req('GET', '/v1/instances', {'Cookie': jar, 'Origin': 'https://evil.example'})
        check(status == 403, 'another Origin: %d' % status)
        # The CLI over TLS.
        env = dict(os.environ, CASULOD_URL='https://127.0.0.1:%d' % port, CASULOD_TOKEN_FILE=token,
                   CASULOD_TLS_CA=base + '/ca/ca.crt')
        env.pop('CASULOD_SOCKET', None)
        p = subprocess.run([CASULO, 'ls', '--json'], capture_output=True, text=True, env=env, timeout=30)
        check(p.returncode == 0 and json.loads(p.stdout) == [], 'casulo ls over TLS: %r' % p.stderr)
        p = subprocess.run([CASULO, 'ls', '--url', 'http://127.0.0.1:%d' % port], capture_output=True, text=True,
                           env=env, timeout=30)
        check(p.returncode == 1 and 'TLS only' in p.stderr, 'http: %r' % p.stderr)
    finally:
        d.cleanup()


@test
def unix_socket_is_for_root_and_its_group():
    d = Daemon(extra=['--group', 'nogroup'])
    try:
        os.chmod(d.base, 0o711)
        mode = os.stat(d.sock).st_mode & 0o777
        check(mode == 0o660, 'socket mode %o' % mode)
        probe = ['/usr/bin/python3', '-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); '
                 's.sendall(b"GET /v1 HTTP/1.0\\r\\n\\r\\n"); print(s.recv(100).split()[1].decode())', d.sock]
        p = subprocess.run(['setpriv', '--reuid=nobody', '--regid=daemon', '--clear-groups'] + probe,
                           capture_output=True, text=True)
        check(p.returncode != 0 and 'Permission denied' in p.stderr, 'a stranger connected: %r %r' % (p.stdout,
                                                                                                      p.stderr))
        p = subprocess.run(['setpriv', '--reuid=nobody', '--regid=daemon', '--groups=nogroup'] + probe,
                           capture_output=True, text=True)
        check(p.returncode == 0 and p.stdout.strip() == '200', 'a group member: %r %r' % (p.stdout, p.stderr))
    finally:
        d.cleanup()


@test
@with_daemon
def fifty_readers_on_kept_alive_connections(d):
    """50 processes reading the list and single instances over connections
    they keep, while instances are created and deleted: casulod answers
    every one (json-c's reference counts are not atomic: a definition
    shared between the server's threads crashed it in one run in four of
    bench/casulod.py's API phase, less often here)."""
    import multiprocessing
    b = bundle(SPIN)
    for i in range(100):
        d.create('r%03d' % i, 'container', {'bundle': b}, start=i < 30)
    ctx = multiprocessing.get_context('fork')
    results = ctx.Queue()
    barrier = ctx.Barrier(51)

    def reader(k):
        failures, conn = [], UnixHTTP(d.sock, timeout=60)
        barrier.wait()
        for i in range(60):
            path = '/v1/instances' if i % 4 else '/v1/instances/r%03d' % ((k + i) % 100)
            try:
                conn.request('GET', path)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200 or not json.loads(body):
                    failures.append('%s: %d' % (path, r.status))
            except Exception as e:  # noqa: BLE001 - reported by the parent
                failures.append('%s: %r' % (path, e))
                conn.close()
                conn = UnixHTTP(d.sock, timeout=60)
        results.put(failures)

    procs = [ctx.Process(target=reader, args=(k,)) for k in range(50)]
    for p in procs:
        p.start()
    barrier.wait()
    # Meanwhile, instances come and go.
    for i in range(10):
        d.create('w%d' % i, 'container', {'bundle': b})
        check(d.request('DELETE', '/v1/instances/w%d' % i)[0] == 204, 'delete w%d' % i)
    failures = []
    for _ in procs:
        failures += results.get(timeout=300)
    for p in procs:
        p.join()
    check(d.p.poll() is None, 'casulod died (%s): %s' % (d.p.returncode, d.log_tail()))
    check(not failures, '%d failed requests, first %r' % (len(failures), failures[:3]))


@test
@with_daemon
def autostart_at_the_first_start_since_boot(d):
    for n, order in (('late', 20), ('early', 10), ('off', 0)):
        d.create(n, 'container', {'bundle': bundle(SPIN)})
    d.cli('autostart', 'on', 'late', '--order', '20', check_rc=0)
    d.cli('autostart', 'on', 'early', '--order', '10', '--delay', '1', check_rc=0)
    inst = json.loads(d.cli('autostart', 'on', 'off', '--json', check_rc=0).stdout)
    check(inst['autostart']['enabled'], 'autostart on: %r' % inst)
    d.cli('autostart', 'off', 'off', check_rc=0)
    check(d.instance('early')['autostart'] == {'enabled': True, 'order': 10, 'delay_s': 1.0}, 'early')
    # A restart in the same boot starts nothing.
    d.stop()
    d.start()
    time.sleep(0.5)
    check(all(i['state'] == 'stopped' for i in d.get('/v1/instances')), 'a restart autostarted')
    # As after a reboot: casulod's record of the boot differs.
    d.stop()
    import sqlite3
    db = sqlite3.connect(os.path.join(d.state, 'casulod.db'))
    db.execute("UPDATE meta SET value = 'another-boot' WHERE key = 'boot_id'")
    db.commit()
    db.close()
    d.start()
    check(d.get('/v1')['first_start_since_boot'], 'not a first start')
    wait_for(lambda: d.instance('late')['state'] == 'running', 20, 'late to start')
    early, late = d.instance('early'), d.instance('late')
    check(d.instance('off')['state'] == 'stopped', 'off started')
    check(late['started_at'] - early['started_at'] >= 1.0, 'order or delay: early %.2f, late %.2f' % (
        early['started_at'], late['started_at']))


@test
@with_daemon
def systemd_unit_stops_casulod_alone(d):
    """build/casulod.service: valid for systemd, and what its stop does
    (KillMode=process: SIGTERM to casulod alone) leaves the instances
    running for the next casulod."""
    unit_path = os.path.join(os.path.dirname(CASULOD), 'casulod.service')
    unit = open(unit_path).read()
    settings = dict(line.split('=', 1) for line in unit.splitlines() if '=' in line and not line.startswith('#'))
    check(settings.get('KillMode') == 'process', 'KillMode: %r' % settings.get('KillMode'))
    check('RuntimeDirectory' not in settings, 'systemd would empty the run directory at a stop')
    for n in ('u1', 'u2'):
        d.create(n, 'container', {'bundle': bundle(SPIN)}, start=True)
    pids = {n: d.instance(n)['pid'] for n in ('u1', 'u2')}
    d.stop()
    check(len(d.shims()) == 2 and all(os.path.exists('/proc/%d' % p) for p in pids.values()),
          'instances ended with casulod')
    d.start()
    info = d.get('/v1')
    check(info['reattach']['found'] == 2, 'reattach: %r' % info['reattach'])
    check({n: d.instance(n)['pid'] for n in pids} == pids, 'pids changed')
    analyze = shutil.which('systemd-analyze')
    if not analyze:
        raise Skip('systemd-analyze is missing: the unit is not verified (the stop was)')
    # The unit names the installed casulod; verify it with this build's.
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, 'casulod.service')
        with open(local, 'w') as f:
            f.write(re.sub(r'(?m)^ExecStart=\S+', 'ExecStart=' + CASULOD, unit))
        p = subprocess.run([analyze, 'verify', local], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and not p.stderr.strip() and not p.stdout.strip(),
          'systemd-analyze verify: %d %s%s' % (p.returncode, p.stdout, p.stderr))


if __name__ == '__main__':
    raise SystemExit(main())
