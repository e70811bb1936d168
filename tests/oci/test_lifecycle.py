#!/usr/bin/env python3
"""Lifecycle: run, create/start/state/kill/delete, list, ps, pause/resume,
exec, logs, signals, pid files, preserved fds, features and spec."""
import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (RUNTIME, STATE_ROOT, VM, WORK, Bundle, Clean, container_cgroup_dirs, contains, eq,  # noqa: E402
                     fails, main, ok_run, reap, rt, run, start_detached, state, test, unique_id, wait_status)


@test
def run_exit_status_is_the_containers():
    b = Bundle(['sh', '-c', 'exit 7'])
    cid = unique_id()
    clean = Clean(cid)
    eq(run(b, cid).returncode, 7, 'exit status')
    clean.check()
    b.set_args('true')
    eq(run(b).returncode, 0, 'true')
    # The init of a pid namespace cannot SIGKILL itself: share the host's.
    b.namespaces('network', 'ipc', 'uts', 'mount')
    b.set_args('sh', '-c', 'kill -9 $$')
    eq(run(b).returncode, 128 + 9, 'killed by SIGKILL')


@test
def run_output_and_environment():
    b = Bundle(['sh', '-c', 'echo out; echo err >&2; echo "$HOME $TERM"; hostname; pwd'])
    b.process['cwd'] = '/tmp'
    b.write()
    p = run(b)
    eq(p.stdout, 'out\n/root xterm\ncasulo-test\n/tmp\n', 'stdout')
    contains(p.stderr, 'err', 'stderr')


@test
def create_start_state_delete():
    b = Bundle(['sleep', '30'])
    cid = unique_id()
    clean = Clean(cid)
    pidfile = os.path.join(WORK, cid + '.pid')
    ok_run(rt('create', '--bundle', b.dir, '--pid-file', pidfile, cid), 'create')
    st = state(cid)
    eq(st['status'], 'created', 'status after create')
    eq(st['id'], cid, 'id')
    eq(st['bundle'], b.dir, 'bundle')
    eq(int(open(pidfile).read()), st['pid'], 'pid file')
    for key in ('ociVersion', 'rootfs', 'created', 'owner'):
        if key not in st:
            raise AssertionError(f'state lacks {key}')
    # The init has not run the user process yet.
    contains(open(f'/proc/{st["pid"]}/cmdline').read(), 'casulo-runtime', 'init before start')
    ok_run(rt('start', cid), 'start')
    st = wait_status(cid, 'running')
    time.sleep(0.05)
    if VM:
        # The pid is the VM's monitor; the user process runs in the guest.
        contains(ok_run(rt('exec', cid, 'cat', '/proc/1/cmdline')), 'sleep', 'user process after start')
    else:
        contains(open(f'/proc/{st["pid"]}/cmdline').read(), 'sleep', 'user process after start')
    fails(rt('start', cid), 'cannot start', what='second start')
    fails(rt('delete', cid), 'not stopped', what='delete of a running container')
    ok_run(rt('kill', cid, 'KILL'), 'kill')
    wait_status(cid, 'stopped')
    eq(state(cid)['pid'], 0, 'pid of a stopped container')
    fails(rt('kill', cid), 'not running', what='kill of a stopped container')
    ok_run(rt('delete', cid), 'delete')
    fails(rt('state', cid), 'does not exist', what='state after delete')
    clean.check()


@test
def delete_created_container_without_force():
    b = Bundle(['true'])
    cid = unique_id()
    clean = Clean(cid)
    ok_run(rt('create', '--bundle', b.dir, cid))
    ok_run(rt('delete', cid), 'delete of a created container')
    clean.check()


@test
def delete_force_running_and_missing():
    b = Bundle(['sleep', '30'])
    cid = unique_id()
    clean = Clean(cid)
    ok_run(rt('run', '--detach', '--bundle', b.dir, cid))
    wait_status(cid, 'running')
    ok_run(rt('delete', '--force', cid), 'delete --force')
    clean.check()
    ok_run(rt('delete', '--force', 'no-such-container'), 'delete --force of a missing container')
    fails(rt('delete', 'no-such-container'), 'does not exist', what='delete of a missing container')


@test
def duplicate_id_is_refused():
    b = Bundle(['sleep', '30'])
    cid = unique_id()
    ok_run(rt('create', '--bundle', b.dir, cid))
    fails(rt('create', '--bundle', b.dir, cid), 'exists', what='second create')
    eq(state(cid)['status'], 'created', 'first container untouched')
    ok_run(rt('delete', '--force', cid))


@test
def invalid_ids_are_refused():
    b = Bundle(['true'])
    for bad in ('a/b', '..', 'a b'):
        fails(rt('create', '--bundle', b.dir, bad), 'invalid', what=f'id {bad!r}')


@test
def list_formats():
    b = Bundle(['sleep', '30'])
    a, c = unique_id('la'), unique_id('lb')
    ok_run(rt('run', '-d', '--bundle', b.dir, a))
    ok_run(rt('create', '--bundle', b.dir, c))
    table = ok_run(rt('list')).splitlines()
    eq(table[0].split(), ['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], 'header')
    rows = {line.split()[0]: line.split() for line in table[1:]}
    eq(rows[a][2], 'running', 'status of a')
    eq(rows[c][2], 'created', 'status of c')
    eq(rows[a][5], 'root', 'owner')
    js = json.loads(ok_run(rt('list', '--format', 'json')))
    eq(sorted(x['id'] for x in js), sorted([a, c]), 'json ids')
    for x in js:
        for key in ('ociVersion', 'id', 'pid', 'status', 'bundle', 'rootfs', 'created', 'owner'):
            if key not in x:
                raise AssertionError(f'list json lacks {key}')
    eq(sorted(ok_run(rt('list', '-q')).split()), sorted([a, c]), 'quiet')
    empty_root = os.path.join(WORK, 'empty-root')
    eq(ok_run(rt('list', '-f', 'json', root=empty_root)).strip(), 'null', 'json of no containers')


@test
def ps_lists_the_containers_processes():
    b = Bundle(['sh', '-c', 'sleep 30 & sleep 31'])
    cid = unique_id()
    ok_run(rt('run', '-d', '--bundle', b.dir, cid))
    st = wait_status(cid, 'running')
    for _ in range(100):
        pids = json.loads(ok_run(rt('ps', '--format', 'json', cid)))
        if len(pids) == 2:
            break
        time.sleep(0.02)
    eq(len(pids), 2, 'two processes')
    if VM:
        # Pids in the guest: its init's is the one exec's pid namespace
        # calls 1.
        init = ok_run(rt('exec', cid, 'sh', '-c', 'cat /proc/1/stat')).split()[0]
        eq(init, '1', 'exec sees the init as pid 1')
    elif st['pid'] not in pids:
        raise AssertionError(f'init {st["pid"]} not in {pids}')
    table = ok_run(rt('ps', cid)).splitlines()
    contains(table[0], 'PID', 'ps header')
    eq(len(table), 3, 'ps table rows')
    contains(ok_run(rt('ps', cid, '-o', 'pid,comm')), 'sleep', 'ps with options')


@test
def pause_and_resume_freeze_the_processes():
    b = Bundle(['sleep', '30'])
    cid = unique_id()
    ok_run(rt('run', '-d', '--bundle', b.dir, cid))
    st = wait_status(cid, 'running')
    ok_run(rt('pause', cid), 'pause')
    eq(state(cid)['status'], 'paused', 'status')
    with open(f'/proc/{st["pid"]}/status') as f:
        status = f.read()
    fails(rt('pause', cid), 'not running', what='pause of a paused container')
    fails(rt('exec', cid, 'true'), 'paused', what='exec into a paused container')
    ok_run(rt('resume', cid), 'resume')
    eq(state(cid)['status'], 'running', 'status after resume')
    fails(rt('resume', cid), 'not paused', what='resume of a running container')
    # A paused container can be deleted with --force.
    ok_run(rt('pause', cid))
    clean = Clean(cid)
    ok_run(rt('delete', '-f', cid), 'delete --force of a paused container')
    clean.check()
    _ = status


@test
def kill_signals_and_all():
    b = Bundle(['sh', '-c', 'trap "echo got-usr1 > /dev/shm/sig" USR1; sleep 30 & sleep 31 & while true; do sleep 0.05; '
                            '[ -e /dev/shm/sig ] && exit 0; done'])
    cid = unique_id()
    ok_run(rt('run', '-d', '--bundle', b.dir, cid))
    st = wait_status(cid, 'running')
    time.sleep(0.2)
    ok_run(rt('kill', cid, 'SIGUSR1'), 'kill USR1')
    wait_status(cid, 'stopped')
    ok_run(rt('delete', cid))
    b.set_args('sh', '-c', 'sleep 30 & sleep 31')
    cid = unique_id()
    ok_run(rt('run', '-d', '--bundle', b.dir, cid))
    st = wait_status(cid, 'running')
    time.sleep(0.1)
    ok_run(rt('kill', '--all', cid, 'KILL'), 'kill --all')
    wait_status(cid, 'stopped')
    fails(rt('kill', cid, 'NOSUCHSIG'), 'unknown signal', what='bad signal')
    _ = st


def cgroup_members(cid):
    pids = set()
    for d in container_cgroup_dirs(cid):
        try:
            with open(os.path.join(d, 'cgroup.procs')) as f:
                pids.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return pids


@test
def kill_all_reaches_what_a_stopped_init_left():
    # Without a PID namespace of its own, a container's background process
    # outlives its init; containerd's shim then sends `kill --all ID KILL`
    # to the stopped container, and runc kills what is left in the cgroup.
    b = Bundle(['sh', '-c', 'sleep 300 & exit 0'])
    b.namespaces('network', 'ipc', 'uts', 'mount')
    cid = unique_id()
    ok_run(rt('run', '-d', '--bundle', b.dir, cid))
    wait_status(cid, 'stopped')
    left = cgroup_members(cid)
    # In a VM the orphan goes with the VM, which stops when the init has
    # exited: kill --all finds nothing, and says so by succeeding.
    eq(len(left), 0 if VM else 1, 'the orphaned sleep in the container\'s cgroup')
    ok_run(rt('kill', '--all', cid, 'KILL'), 'kill --all of a stopped container')
    # Gone when kill returns (containerd closes the container's stdio then).
    eq(cgroup_members(cid), set(), 'the cgroup once kill --all KILL has returned')
    reap()
    fails(rt('kill', cid, 'KILL'), 'not running', what='kill without --all of a stopped container')
    clean = Clean(cid)
    ok_run(rt('delete', cid))
    clean.check()


@test
def exec_runs_in_the_container():
    cid, init = start_detached(Bundle(['sleep', '30']))
    out = ok_run(rt('exec', cid, 'sh', '-c', 'hostname; cat /proc/1/cmdline; echo; readlink /proc/self/ns/net'))
    lines = out.splitlines()
    eq(lines[0], 'casulo-test', 'hostname')
    eq(lines[1].replace('\0', ' ').strip(), 'sleep 30', 'pid 1 is the init')
    if VM:
        # The init's namespace, as the guest names it.
        eq(lines[2], ok_run(rt('exec', cid, 'readlink', '/proc/1/ns/net')).strip(), 'network namespace')
    else:
        eq(lines[2], os.readlink(f'/proc/{init}/ns/net'), 'network namespace')
    eq(rt('exec', cid, 'sh', '-c', 'exit 5').returncode, 5, 'exec exit status')
    out = ok_run(rt('exec', '--env', 'FOO=bar', '--cwd', '/tmp', '--user', '1000:1000', '--additional-gids', '5',
                    cid, 'sh', '-c', 'echo $FOO; pwd; id'))
    eq(out.splitlines()[:2], ['bar', '/tmp'], 'env and cwd')
    contains(out, 'uid=1000', 'user')
    contains(out, 'groups=5', 'additional gids')
    # --process FILE
    proc = {'terminal': False, 'user': {'uid': 0, 'gid': 0}, 'args': ['sh', '-c', 'echo from-process-file; exit 3'],
            'env': ['PATH=/bin'], 'cwd': '/'}
    pf = os.path.join(WORK, cid + '-process.json')
    with open(pf, 'w') as f:
        json.dump(proc, f)
    p = rt('exec', '--process', pf, cid)
    eq((p.returncode, p.stdout), (3, 'from-process-file\n'), '--process')
    # --detach --pid-file
    pidf = os.path.join(WORK, cid + '-exec.pid')
    ok_run(rt('exec', '--detach', '--pid-file', pidf, cid, 'sleep', '20'), 'exec --detach')
    epid = int(open(pidf).read())
    if VM:
        # The pid is the process's monitor on the host; the process runs
        # in the container in the guest.
        contains(ok_run(rt('exec', cid, 'ps')), 'sleep 20', 'detached exec in the container')
        if not os.path.exists(f'/proc/{epid}'):
            raise AssertionError('the detached exec\'s monitor is gone')
    else:
        with open(f'/proc/{epid}/cgroup') as f:
            contains(f.read(), cid, 'exec process in the container cgroup')
        eq(os.readlink(f'/proc/{epid}/ns/pid'), os.readlink(f'/proc/{init}/ns/pid'), 'pid namespace')
    fails(rt('exec', cid, 'no-such-binary'), 'executable file not found', what='exec of a missing binary')
    ok_run(rt('kill', cid, 'KILL'))
    wait_status(cid, 'stopped')
    fails(rt('exec', cid, 'true'), 'stopped', what='exec into a stopped container')


@test
def exec_capabilities_and_no_new_privs():
    b = Bundle(['sleep', '30'])
    b.process['noNewPrivileges'] = False
    b.write()
    cid = unique_id()
    ok_run(rt('run', '-d', '--bundle', b.dir, cid))
    wait_status(cid, 'running')
    out = ok_run(rt('exec', cid, 'grep', '-E', '^(CapEff|NoNewPrivs)', '/proc/self/status'))
    contains(out, 'NoNewPrivs:\t0', 'no no_new_privs')
    eff = int(out.split('CapEff:\t')[1].split()[0], 16)
    if eff & (1 << 25):  # CAP_SYS_TIME
        raise AssertionError('CAP_SYS_TIME without --cap')
    out = ok_run(rt('exec', '--cap', 'CAP_SYS_TIME', '--no-new-privs', cid, 'grep', '-E', '^(CapEff|NoNewPrivs)',
                    '/proc/self/status'))
    contains(out, 'NoNewPrivs:\t1', '--no-new-privs')
    eff = int(out.split('CapEff:\t')[1].split()[0], 16)
    if not eff & (1 << 25):
        raise AssertionError('--cap CAP_SYS_TIME not effective')


@test
def foreground_run_forwards_signals():
    b = Bundle(['sh', '-c', 'trap "exit 42" TERM; echo ready; while true; do sleep 0.05; done'])
    cid = unique_id()
    p = subprocess.Popen([RUNTIME, '--root', STATE_ROOT, 'run', '--bundle', b.dir, cid], stdout=subprocess.PIPE,
                         text=True)
    eq(p.stdout.readline(), 'ready\n', 'container started')
    p.send_signal(signal.SIGTERM)
    eq(p.wait(timeout=120 if VM else 10), 42, 'exit status after SIGTERM')


@test
def signal_dispositions_start_as_defaults():
    b = Bundle(['grep', '-E', '^Sig(Ign|Blk)', '/proc/self/status'])
    # The caller ignores SIGPIPE and blocks SIGUSR1: the container must not inherit either.
    p = subprocess.run(['python3', '-c', 'import os, signal, sys; signal.signal(signal.SIGPIPE, signal.SIG_IGN); '
                        'signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1}); os.execv(sys.argv[1], sys.argv[1:])',
                        RUNTIME, '--root', STATE_ROOT, 'run', '--bundle', b.dir, unique_id()],
                       capture_output=True, text=True, timeout=300 if VM else 30)
    ok_run(p)
    for line in p.stdout.splitlines():
        eq(int(line.split()[1], 16), 0, line.split(':')[0])


@test
def run_keep_leaves_a_stopped_container():
    b = Bundle(['true'])
    cid = unique_id()
    ok_run(run(b, cid, extra=['--keep']))
    eq(state(cid)['status'], 'stopped', 'kept container')
    ok_run(rt('delete', cid))


@test
def preserve_fds_passes_descriptors():
    b = Bundle(['sh', '-c', 'echo through-fd3 >&3; ls /proc/self/fd'])
    if VM:
        # A host's descriptor cannot reach a process in a VM: a clear error.
        cid = unique_id()
        clean = Clean(cid)
        fails(run(b, cid, extra=['--preserve-fds', '1']), 'preserve-fds', 'VM', what='--preserve-fds in a VM')
        clean.check()
        return
    r0, w0 = os.pipe()
    r = fcntl.fcntl(r0, fcntl.F_DUPFD_CLOEXEC, 20)
    os.close(r0)
    w = 3
    if w0 != 3:
        os.dup2(w0, 3, inheritable=True)
        os.close(w0)
    p = run(b, extra=['--preserve-fds', '1'], pass_fds=(3,))
    os.close(w)
    with os.fdopen(r) as f:
        eq(f.read(), 'through-fd3\n', 'data through fd 3')
    ok_run(p)
    fds = sorted(int(x) for x in p.stdout.split())
    eq(fds[:4], [0, 1, 2, 3], 'fds in the container')
    if len(fds) > 5:  # ls opens one for /proc/self/fd
        raise AssertionError(f'extra fds leaked into the container: {fds}')


@test
def logs_are_runc_shaped():
    log = os.path.join(WORK, 'log.json')
    p = subprocess.run([RUNTIME, '--root', STATE_ROOT, '--log', log, '--log-format', 'json', 'state', 'nope'],
                       capture_output=True, text=True)
    eq(p.returncode, 1, 'exit status')
    contains(p.stderr, 'container does not exist', 'stderr when logging to a file')
    line = json.loads(open(log).read().splitlines()[-1])
    eq(line['level'], 'error', 'level')
    contains(line['msg'], 'does not exist', 'msg')
    if not line['time'].endswith('Z'):
        raise AssertionError(f'time {line["time"]}')
    p = subprocess.run([RUNTIME, '--root', STATE_ROOT, 'state', 'nope'], capture_output=True, text=True)
    if not (p.stderr.startswith('time="') and 'level=error msg="' in p.stderr):
        raise AssertionError(f'text log line: {p.stderr!r}')
    p = subprocess.run([RUNTIME, '--log-format', 'yaml', 'list'], capture_output=True, text=True)
    fails(p, 'yaml', what='unknown log format')
    p = subprocess.run([RUNTIME, 'no-such-verb'], capture_output=True, text=True)
    fails(p, 'no-such-verb', what='unknown verb')


@test
def systemd_cgroup_is_a_clear_error_without_systemd():
    if os.path.isdir('/run/systemd/system'):
        from ocitest import Skip
        raise Skip('systemd runs on this host')
    b = Bundle(['true'])
    cid = unique_id()
    clean = Clean(cid)
    p = subprocess.run([RUNTIME, '--root', STATE_ROOT, '--systemd-cgroup', 'run', '--bundle', b.dir, cid],
                       capture_output=True, text=True)
    fails(p, 'systemd is not running', what='--systemd-cgroup')
    clean.check()


@test
def features_document():
    f = json.loads(ok_run(rt('features')))
    eq(f['ociVersionMin'], '1.0.0', 'ociVersionMin')
    for h in ('prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'):
        contains(f['hooks'], h, 'hooks')
    contains(f['linux']['namespaces'], 'time', 'namespaces')
    contains(f['linux']['capabilities'], 'CAP_SYS_ADMIN', 'capabilities')
    contains(f['linux']['seccomp']['actions'], 'SCMP_ACT_NOTIFY', 'seccomp actions')
    contains(f['mountOptions'], 'rbind', 'mount options')
    eq(f['linux']['cgroup']['v1'], True, 'cgroup v1')


@test
def spec_writes_a_config_that_runs():
    d = tempfile.mkdtemp(dir=WORK)
    ok_run(subprocess.run([RUNTIME, 'spec', '--bundle', d], capture_output=True, text=True), 'spec')
    cfg = json.load(open(os.path.join(d, 'config.json')))
    eq(cfg['process']['args'], ['sh'], 'default args')
    fails(subprocess.run([RUNTIME, 'spec', '--bundle', d], capture_output=True, text=True), 'exists',
          what='spec over an existing config')
    from ocitest import rootfs_template
    cfg['root']['path'] = rootfs_template()
    cfg['process']['terminal'] = False
    cfg['process']['args'] = ['sh', '-c', 'echo spec-ok']
    json.dump(cfg, open(os.path.join(d, 'config.json'), 'w'))
    eq(ok_run(rt('run', '--bundle', d, unique_id())), 'spec-ok\n', 'output')
    d2 = tempfile.mkdtemp(dir=WORK)
    ok_run(subprocess.run([RUNTIME, 'spec', '--rootless', '--bundle', d2], capture_output=True, text=True))
    cfg = json.load(open(os.path.join(d2, 'config.json')))
    contains([n['type'] for n in cfg['linux']['namespaces']], 'user', 'rootless spec has a user namespace')


if __name__ == '__main__':
    sys.exit(main())
