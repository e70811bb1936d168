#!/usr/bin/env python3
"""Hooks: all six kinds, in order, each with the state on its stdin, args,
env and timeouts; a failing hook stops the container and leaves nothing,
except poststart and poststop failures, which only warn."""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (WORK, Bundle, Clean, contains, eq, fails_clean, main, ok_run, rt, state, test,  # noqa: E402
                     unique_id, wait_status)

KINDS = ('prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop')


def recording_bundle(args=('sleep', '30')):
    """Each hook appends its kind to order.log and saves its stdin."""
    out = tempfile.mkdtemp(dir=WORK)
    os.chmod(out, 0o777)
    b = Bundle(list(args))
    b.config['mounts'].append({'destination': '/hooks', 'type': 'bind', 'source': out, 'options': ['rbind']})
    b.config['annotations'] = {'org.example.key': 'value'}
    hooks = {}
    for k in KINDS:
        # startContainer runs inside the container: its paths are the container's.
        d = '/hooks' if k == 'startContainer' else out
        hooks[k] = [{'path': '/bin/sh', 'args': ['sh', '-c', f'cat > {d}/{k}.json; echo {k} >> {d}/order.log']}]
    b.config['hooks'] = hooks
    b.write()
    return b, out


@test
def all_hooks_run_in_order_with_the_state():
    b, out = recording_bundle()
    cid = unique_id()
    ok_run(rt('create', '--bundle', b.dir, cid))
    pid = state(cid)['pid']
    eq(open(os.path.join(out, 'order.log')).read().split(), ['prestart', 'createRuntime', 'createContainer'],
       'hooks run by create')
    ok_run(rt('start', cid))
    wait_status(cid, 'running')
    for _ in range(100):
        if os.path.exists(os.path.join(out, 'poststart.json')):
            break
        time.sleep(0.02)
    ok_run(rt('delete', '--force', cid))
    eq(open(os.path.join(out, 'order.log')).read().split(), list(KINDS), 'order of all hooks')
    want = {'prestart': 'creating', 'createRuntime': 'creating', 'createContainer': 'creating',
            'startContainer': 'created', 'poststart': 'running', 'poststop': 'stopped'}
    for k in KINDS:
        s = json.load(open(os.path.join(out, f'{k}.json')))
        eq(s['id'], cid, f'{k} id')
        eq(s['status'], want[k], f'{k} status')
        eq(s['bundle'], b.dir, f'{k} bundle')
        eq(s['annotations'], {'org.example.key': 'value'}, f'{k} annotations')
        if k != 'poststop':
            eq(s['pid'], pid, f'{k} pid')
        contains(s, 'ociVersion', f'{k} ociVersion')


@test
def hook_args_env_and_timeout():
    out = tempfile.mkdtemp(dir=WORK)
    b = Bundle(['true'])
    b.config['hooks'] = {'prestart': [{'path': '/bin/sh', 'args': ['sh', '-c', f'echo "$0 $FOO $1" > {out}/args', 'zero', 'one'],
                                       'env': ['FOO=bar']}]}
    b.write()
    ok_run(rt('run', '--bundle', b.dir, unique_id()))
    eq(open(os.path.join(out, 'args')).read(), 'zero bar one\n', 'args and env')
    b.config['hooks'] = {'createRuntime': [{'path': '/bin/sleep', 'args': ['sleep', '10'], 'timeout': 1}]}
    b.write()
    start = time.time()
    fails_clean(b, 'createRuntime[0]', 'timed out', what='hook past its timeout')
    if time.time() - start > 5:
        raise AssertionError('the timeout was not enforced')


@test
def failing_hooks_stop_the_container_and_leave_nothing():
    for kind in ('prestart', 'createRuntime', 'createContainer'):
        b = Bundle(['true'])
        b.config['hooks'] = {kind: [{'path': '/bin/sh', 'args': ['sh', '-c', 'exit 3']}]}
        b.write()
        fails_clean(b, f'{kind}[0]', 'status 3', verb='create', what=f'failing {kind} hook')
    b = Bundle(['true'])
    b.config['hooks'] = {'prestart': [{'path': '/no/such/hook'}]}
    b.write()
    fails_clean(b, 'prestart[0]', '/no/such/hook', what='missing hook binary')


@test
def failing_start_container_hook_keeps_the_process_from_running():
    out = tempfile.mkdtemp(dir=WORK)
    os.chmod(out, 0o777)
    b = Bundle(['sh', '-c', 'touch /out/ran'])
    b.config['mounts'].append({'destination': '/out', 'type': 'bind', 'source': out, 'options': ['rbind']})
    b.config['hooks'] = {'startContainer': [{'path': '/bin/sh', 'args': ['sh', '-c', 'exit 1']}]}
    b.write()
    cid = unique_id()
    p = rt('run', '--bundle', b.dir, cid)
    contains(p.stderr, 'startContainer[0]', 'error names the hook')
    if p.returncode == 0:
        raise AssertionError('run succeeded though startContainer failed')
    if os.path.exists(os.path.join(out, 'ran')):
        raise AssertionError('the user process ran')
    Clean(cid).check()


@test
def poststart_and_poststop_failures_only_warn():
    b = Bundle(['sleep', '30'])
    b.config['hooks'] = {'poststart': [{'path': '/bin/false'}], 'poststop': [{'path': '/bin/false'}]}
    b.write()
    cid = unique_id()
    clean = Clean(cid)
    p = rt('run', '-d', '--bundle', b.dir, cid)
    ok_run(p, 'run -d with a failing poststart hook')
    contains(p.stderr, 'poststart[0]', 'warning')
    contains(p.stderr, 'level=warning', 'a warning, not an error')
    wait_status(cid, 'running')
    p = rt('delete', '-f', cid)
    ok_run(p, 'delete with a failing poststop hook')
    contains(p.stderr, 'poststop[0]', 'warning')
    clean.check()


if __name__ == '__main__':
    sys.exit(main())
