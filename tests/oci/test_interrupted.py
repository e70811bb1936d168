#!/usr/bin/env python3
"""A create killed with SIGKILL at any step (during each hook that create
runs, and at random points) leaves an id that `state` and `list` describe
truthfully and that `delete --force` frees: no state directory, cgroup,
mount or process is left, and the id can be created again (issue 17: the
id used to stay taken for good).  A `run` whose container process is
killed during its setup (which shares the runtime's memory until its
execve) says so and ends, never hangs, and `delete --force` frees it."""
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (RUNTIME, STATE_ROOT, WORK, Bundle, Clean, eq, main, ok_run, reap, rt, test,  # noqa: E402
                     unique_id)


def start_create(bundle, cid):
    return subprocess.Popen([RUNTIME, '--root', STATE_ROOT, 'create', '--bundle', bundle.dir, cid],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def told(cid):
    """What `state` and `list` say of cid, checked against each other and
    against the processes: None when it does not exist, else its status."""
    p = rt('state', cid)
    listed = [c for c in json.loads(ok_run(rt('list', '--format', 'json'), 'list') or 'null') or []
              if c['id'] == cid]
    if p.returncode != 0:
        if 'does not exist' not in p.stderr:
            raise AssertionError(f'state {cid}: {p.stderr.strip()}')
        if listed:
            raise AssertionError(f'list shows {listed} while state says it does not exist')
        return None
    st = json.loads(p.stdout)
    if not listed or listed[0]['status'] != st['status'] or listed[0]['pid'] != st['pid']:
        raise AssertionError(f'list says {listed}, state says {st}')
    if st['status'] == 'stopped' and st['pid'] != 0:
        raise AssertionError(f'stopped with pid {st["pid"]}')
    if st['status'] == 'created' and not os.path.exists(f'/proc/{st["pid"]}'):
        raise AssertionError(f'created, but its process {st["pid"]} is gone')
    if st['status'] not in ('stopped', 'created'):
        # The runtime that created it is dead: it cannot be "creating".
        raise AssertionError(f'status {st["status"]!r} after the create was killed')
    return st['status']


def free(cid, plain):
    """delete --force frees everything, and the id can be used again."""
    clean = Clean(cid)
    ok_run(rt('delete', '--force', cid), 'delete --force')
    clean.check()
    ok_run(rt('create', '--bundle', plain.dir, cid), 'create again with the same id')
    ok_run(rt('delete', '--force', cid), 'delete')
    clean.check()


@test
def killed_during_each_hook_of_create():
    plain = Bundle(['true'])
    for kind in ('prestart', 'createRuntime', 'createContainer'):
        marker = os.path.join(tempfile.mkdtemp(dir=WORK), 'started')
        b = Bundle(['true'])
        b.config['hooks'] = {kind: [{'path': '/bin/sh', 'args': ['sh', '-c', f'touch {marker}; exec sleep 3']}]}
        b.write()
        cid = unique_id()
        proc = start_create(b, cid)
        end = time.time() + 10
        while not os.path.exists(marker) and time.time() < end and proc.poll() is None:
            time.sleep(0.005)
        if not os.path.exists(marker):
            proc.kill()
            raise AssertionError(f'{kind} hook did not start (create exited {proc.poll()})')
        proc.kill()
        proc.wait()
        eq(told(cid), 'stopped', f'status after a kill during the {kind} hook')
        try:
            free(cid, plain)
        except AssertionError as e:
            raise AssertionError(f'killed during the {kind} hook: {e}')


@test
def killed_at_random_points_of_create():
    plain = Bundle(['true'])
    # How long a create takes here, from fork to exit.
    took = []
    for _ in range(3):
        cid = unique_id()
        start = time.time()
        start_create(plain, cid).wait()
        took.append(time.time() - start)
        ok_run(rt('delete', '--force', cid))
    span = 1.2 * sorted(took)[1]
    seed = int(os.environ.get('TEST_SEED') or time.time())
    rng = random.Random(seed)
    seen = {}
    end = time.time() + 30
    for i in range(40):
        if time.time() > end:
            break
        cid = unique_id()
        delay = rng.uniform(0, span)
        proc = start_create(plain, cid)
        time.sleep(delay)
        proc.kill()
        proc.wait()
        reap()
        try:
            status = told(cid)
            seen[status] = seen.get(status, 0) + 1
            free(cid, plain)
        except AssertionError as e:
            raise AssertionError(f'kill {delay * 1000:.2f} ms into create (TEST_SEED={seed}, run {i}): {e}')
    print(f'# kills ended as: {seen} (creates take {span / 1.2 * 1000:.1f} ms, TEST_SEED={seed})', flush=True)
    if not seen.get('stopped'):
        raise AssertionError(f'no kill landed inside a create ({seen}): the test proved nothing')


def comm_and_ppid(pid):
    with open(f'/proc/{pid}/stat') as f:
        st = f.read()
    return st[st.index('(') + 1:st.rindex(')')], int(st[st.rindex(')') + 2:].split()[1])


def kill_children_of(runs, stop):
    """SIGKILL every casulo-runtime process whose parent is the `run` this
    test started last (runs[-1]): its container process before its execve.
    Only ours: other tests' runtimes may run beside this one."""
    name = os.path.basename(RUNTIME)[:15]
    while not stop.is_set():
        parent = runs[-1] if runs else None
        if parent is None:
            time.sleep(0.001)
            continue
        for pid in filter(str.isdigit, os.listdir('/proc')):
            try:
                comm, ppid = comm_and_ppid(pid)
                if ppid == parent and comm == name:
                    os.kill(int(pid), 9)
            except (OSError, ValueError):
                pass


@test
def run_whose_process_is_killed_during_setup():
    plain = Bundle(['true'])
    stop = threading.Event()
    runs = []
    killer = threading.Thread(target=kill_children_of, args=(runs, stop), daemon=True)
    killer.start()
    seen = {}
    try:
        for _ in range(60):
            cid = unique_id()
            p = subprocess.Popen([RUNTIME, '--root', STATE_ROOT, 'run', '--bundle', plain.dir, cid],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            runs.append(p.pid)
            try:
                _, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                raise AssertionError(f'run {cid}: still running after 30 s (its process killed during setup?)')
            finally:
                runs.append(None)
            if p.returncode == 1:
                eq('killed by signal 9 during its setup' in err, True, f'run {cid}: the message: {err!r}')
                outcome = 'killed during setup'
            elif p.returncode in (0, 137):
                outcome = 'ran' if p.returncode == 0 else 'killed after its execve'
            else:
                raise AssertionError(f'run {cid}: exit {p.returncode}: {err!r}')
            seen[outcome] = seen.get(outcome, 0) + 1
            clean = Clean(cid)
            ok_run(rt('delete', '--force', cid), 'delete --force')
            clean.check()
    finally:
        stop.set()
        killer.join()
    print(f'# runs ended as: {seen}', flush=True)


if __name__ == '__main__':
    sys.exit(main())
