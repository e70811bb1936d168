#!/usr/bin/env python3
"""checkpoint and restore through Debian's CRIU (issue 16 item 3), run in
the lab (tests/oci/lab-criu.sh under tests/lab/run: Debian's 6.1 kernel,
where CRIU 3.17 works; it cannot dump on the 6.18 hosts): a process that
counts goes on counting after a restore, with --leave-running,
--image-path and --work-path, --pre-dump and --parent-path (a bad one
refused), the restoring caller's pipes, --tcp-established (also from the
container's CRIU configuration file, the org.criu.config annotation),
--manage-cgroups-mode, a bind mount whose destination is a symlink,
nested bind mounts, a cgroup namespace; runc 1.1 beside it where it runs."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (RUNC, RUNC_ROOT, RUNTIME, STATE_ROOT, WORK, Bundle, Clean, Skip, contains, eq, fails,  # noqa: E402
                     main, ok_run, rt, runc, state, test, unique_id, wait_status)

CRIU = shutil.which('criu')
_criu_ok = []


def criu_works():
    """None when CRIU works on this kernel, else why not: `criu check`,
    then a real dump of a sleeping process (CRIU 3.17's check passes on
    kernels where every dump fails)."""
    p = subprocess.run([CRIU, 'check'], capture_output=True, text=True)
    if p.returncode:
        return next((line for line in (p.stdout + p.stderr).splitlines() if 'Error' in line), 'criu check failed')
    images = tempfile.mkdtemp(dir=WORK)
    sleeper = subprocess.Popen(['sleep', '60'], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        p = subprocess.run([CRIU, 'dump', '--tree', str(sleeper.pid), '--images-dir', images, '--leave-running',
                            '--shell-job', '--log-file', 'probe.log'], capture_output=True, text=True)
    finally:
        sleeper.kill()
        sleeper.wait()
    if p.returncode:
        log = open(os.path.join(images, 'probe.log')).read().splitlines()
        return next((line for line in log if 'Error' in line), 'criu dump of a sleeping process failed')
    return None


def need_criu():
    if not CRIU:
        raise Skip('criu is not installed')
    if not _criu_ok:
        _criu_ok.append(criu_works())
    if _criu_ok[0]:
        # tests/lab/run --or-skip says why the lab did not run it instead.
        lab = os.environ.get('CASULO_NO_KVM')
        raise Skip(f'CRIU does not work on this kernel ({os.uname().release}): {_criu_ok[0]}' +
                   (f' ({lab})' if lab else ''))


def counter(out, extra_mounts=()):
    """A container counting into out/count every 100 ms."""
    b = Bundle(['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /out/count; sleep 0.1; done'])
    b.config['mounts'].append({'destination': '/out', 'type': 'bind', 'source': out, 'options': ['rbind', 'rw']})
    b.config['mounts'].extend(extra_mounts)
    b.write()
    return b


def running_counter():
    """A counting container of casulo-runtime's, counting: (out, bundle, id)."""
    out = tempfile.mkdtemp(dir=WORK)
    b = counter(out)
    cid = unique_id('cr')
    start(rt, b, cid, STATE_ROOT, out)
    return out, b, cid


def count(out):
    for _ in range(50):
        try:
            return int(open(os.path.join(out, 'count')).read())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise AssertionError('no count written')


# The pipes the containers' stdio lead to, kept open for the whole run
# (a closed read end would kill a writer with SIGPIPE).
_pipes = []


def piped(args, what, timeout=120):
    """Run a runtime whose container inherits its stdio, as containerd's
    shim gives it: pipes (CRIU takes pipes that lead outside the
    container, and a restore hands over its own; a file of the host, such
    as its /dev/null, lies on a mount the container does not see)."""
    fds = [os.pipe() for _ in range(3)]
    p = subprocess.Popen(args, stdin=fds[0][0], stdout=fds[1][1], stderr=fds[2][1])
    for fd in (fds[0][0], fds[1][1], fds[2][1]):
        os.close(fd)
    rc = p.wait(timeout=timeout)
    _pipes.append(fds)
    os.set_blocking(fds[2][0], False)
    try:
        err = os.read(fds[2][0], 65536).decode(errors='replace')
    except BlockingIOError:
        err = ''
    if rc:
        raise AssertionError(f'{what}: exit {rc}: {err.strip()}')
    return fds


def start(runtime, b, cid, root, out=None):
    """run -d; with out, once the counter has written its first count (a
    dump before that would find nothing counted)."""
    piped([RUNC if runtime is runc else RUNTIME, '--root', root, 'run', '-d', '--bundle', b.dir, cid], f'run -d {cid}')
    if out:
        count(out)


def restored(runtime, b, cid, images, *extra):
    return piped([RUNC if runtime is runc else RUNTIME, '--root', RUNC_ROOT if runtime is runc else STATE_ROOT,
                  'restore', '-d', '--bundle', b.dir, '--image-path', images, *extra, cid], f'restore {cid}')


def goes_on(out, before, what):
    """The count after a restore: it went on from before, not from 1."""
    time.sleep(0.6)
    a = count(out)
    time.sleep(0.6)
    b = count(out)
    if not before <= a < b:
        raise AssertionError(f'{what}: count {before} at the checkpoint, then {a}, {b}')


def there_and_back(b, cid, out, between=None):
    """Checkpoint a counting container, call between(), restore it and
    see it go on counting from where it stopped."""
    images = tempfile.mkdtemp(dir=WORK)
    ok_run(rt('checkpoint', '--image-path', images, cid), 'checkpoint')
    before = count(out)
    if between:
        between()
    restored(rt, b, cid, images)
    goes_on(out, before, 'restored')


def checkpoint_restore(runtime, root, what):
    out = tempfile.mkdtemp(dir=WORK)
    b = counter(out)
    cid = unique_id('cr')
    start(runtime, b, cid, root, out)
    images = tempfile.mkdtemp(dir=WORK)
    ok_run(runtime('checkpoint', '--image-path', images, cid), f'{what}: checkpoint')
    before = count(out)
    time.sleep(0.4)
    eq(count(out), before, f'{what}: the counter stopped with the checkpoint')
    if runtime is rt:
        fails(rt('state', cid), 'does not exist', what=f'{what}: the container is gone after the checkpoint')
    for f in ('descriptors.json', 'inventory.img'):
        if not os.path.exists(os.path.join(images, f)):
            raise AssertionError(f'{what}: no {f} in the image path: {os.listdir(images)}')
    restored(runtime, b, cid, images)
    goes_on(out, before, what)
    st = json.loads(runtime('state', cid).stdout)
    eq(st['status'], 'running', f'{what}: status after restore')
    return cid


@test
def checkpoint_and_restore_a_counting_process():
    need_criu()
    cid = checkpoint_restore(rt, STATE_ROOT, 'casulo-runtime')
    # Back in the container's cgroups, and all of it removed by delete.
    pid = state(cid)['pid']
    contains(open(f'/proc/{pid}/cgroup').read(), f'/{cid}\n', 'the restored process in the container cgroup')
    clean = Clean(cid)
    ok_run(rt('delete', '-f', cid))
    clean.check()
    if RUNC:
        checkpoint_restore(runc, RUNC_ROOT, 'runc')


@test
def leave_running_image_and_work_paths():
    need_criu()
    out, b, cid = running_counter()
    images, work = tempfile.mkdtemp(dir=WORK), tempfile.mkdtemp(dir=WORK)
    ok_run(rt('checkpoint', '--leave-running', '--image-path', images, '--work-path', work, cid))
    eq(wait_status(cid, 'running')['status'], 'running', 'still running')
    goes_on(out, 0, 'with --leave-running')
    if 'dump.log' not in os.listdir(work) or 'dump.log' in os.listdir(images):
        raise AssertionError(f'dump.log goes to the work path: {os.listdir(work)} / {os.listdir(images)}')
    ok_run(rt('delete', '-f', cid))
    restored(rt, b, cid, images, '--work-path', work)
    goes_on(out, 0, 'restored from the left-running checkpoint')
    if 'restore.log' not in os.listdir(work):
        raise AssertionError(f'restore.log goes to the work path: {os.listdir(work)}')


@test
def pre_dump_then_dump_with_a_parent():
    need_criu()
    out, b, cid = running_counter()
    base = tempfile.mkdtemp(dir=WORK)
    pre, final = os.path.join(base, 'pre'), os.path.join(base, 'final')
    ok_run(rt('checkpoint', '--pre-dump', '--image-path', pre, cid), 'pre-dump')
    eq(state(cid)['status'], 'running', 'a pre-dump leaves it running')
    # A parent that is not there, or absolute: refused, nothing stopped.
    fails(rt('checkpoint', '--image-path', final, '--parent-path', '../nowhere', cid), 'invalid --parent-path',
          what='a missing parent')
    fails(rt('checkpoint', '--image-path', final, '--parent-path', pre, cid), 'invalid --parent-path',
          what='an absolute parent')
    eq(state(cid)['status'], 'running', 'still running after the refusals')
    ok_run(rt('checkpoint', '--image-path', final, '--parent-path', '../pre', cid), 'dump with a parent')
    before = count(out)
    if not os.path.islink(os.path.join(final, 'parent')):
        raise AssertionError(f'the dump does not link its parent: {os.listdir(final)}')
    restored(rt, b, cid, final)
    goes_on(out, before, 'restored from a dump with a parent')
    if RUNC:
        rid = unique_id('runc')
        start(runc, b, rid, RUNC_ROOT)
        fails(runc('checkpoint', '--image-path', final + '-runc', '--parent-path', '../nowhere', rid),
              'parent', what='runc with a missing parent')


@test
def the_restoring_callers_pipes_replace_the_old_ones():
    need_criu()
    b = Bundle(['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done'])
    cid = unique_id('cr')
    fds = piped([RUNTIME, '--root', STATE_ROOT, 'run', '-d', '--bundle', b.dir, cid], 'run -d')
    first = os.fdopen(os.dup(fds[1][0])).readline()
    images = tempfile.mkdtemp(dir=WORK)
    ok_run(rt('checkpoint', '--image-path', images, cid))
    descriptors = json.load(open(os.path.join(images, 'descriptors.json')))
    for i in range(3):
        contains(descriptors[i], 'pipe:', f'fd {i} was a pipe')
    fds = restored(rt, b, cid, images)
    line = os.fdopen(os.dup(fds[1][0])).readline()
    if not line or int(line) <= int(first):
        raise AssertionError(f'the count on the new pipe: {line!r} after {first!r}')


def tcp_bundle():
    """A server and a client inside the container, talking over an
    established TCP connection on its loopback (up: a new network
    namespace's is down); the server's stdin never ends (nc ends the
    connection at its end)."""
    b = Bundle(['sh', '-c', 'ip link set lo up; (sleep 100000 | nc -l -p 5000 > /tmp/got) & sleep 0.3; '
                            '(i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done) | nc 127.0.0.1 5000'])
    b.config['root']['readonly'] = False
    b.write()
    return b


@test
def established_tcp_connections_by_flag_or_by_criu_config():
    need_criu()
    b = tcp_bundle()
    cid = unique_id('cr')
    start(rt, b, cid, STATE_ROOT)
    time.sleep(0.8)
    images = tempfile.mkdtemp(dir=WORK)
    fails(rt('checkpoint', '--image-path', images, cid), 'criu dump failed', what='an established connection without '
          '--tcp-established')
    eq(state(cid)['status'], 'running', 'a failed dump leaves it running')
    ok_run(rt('checkpoint', '--tcp-established', '--image-path', images, cid), 'checkpoint --tcp-established')
    restored(rt, b, cid, images, '--tcp-established')
    pid = state(cid)['pid']
    a = os.path.getsize(f'/proc/{pid}/root/tmp/got')
    time.sleep(0.6)
    if os.path.getsize(f'/proc/{pid}/root/tmp/got') <= a:
        raise AssertionError('the restored connection carries nothing')
    ok_run(rt('delete', '-f', cid))
    # The same from the container's CRIU configuration (org.criu.config).
    conf = os.path.join(WORK, 'criu.conf')
    with open(conf, 'w') as f:
        f.write('tcp-established\n')
    b.config['annotations'] = {'org.criu.config': conf}
    b.write()
    cid = unique_id('cr')
    start(rt, b, cid, STATE_ROOT)
    time.sleep(0.8)
    images = tempfile.mkdtemp(dir=WORK)
    ok_run(rt('checkpoint', '--image-path', images, cid), 'checkpoint with tcp-established in org.criu.config')
    restored(rt, b, cid, images)
    eq(state(cid)['status'], 'running', 'restored with the configuration file')


@test
def manage_cgroups_modes():
    need_criu()
    out = tempfile.mkdtemp(dir=WORK)
    b = counter(out)
    b.linux['resources']['memory'] = {'limit': 64 << 20}
    b.write()
    fails(rt('checkpoint', '--manage-cgroups-mode', 'loose', 'x'), 'invalid --manage-cgroups-mode',
          what='an unknown mode')
    for mode in ('soft', 'full', 'strict', 'ignore'):
        cid = unique_id('cr')
        start(rt, b, cid, STATE_ROOT, out)
        images = tempfile.mkdtemp(dir=WORK)
        ok_run(rt('checkpoint', '--manage-cgroups-mode', mode, '--image-path', images, cid), f'checkpoint {mode}')
        restored(rt, b, cid, images, '--manage-cgroups-mode', mode)
        pid = state(cid)['pid']
        mem = [line for line in open(f'/proc/{pid}/cgroup') if ':memory:' in line][0].split(':')[2].strip()
        eq(os.path.basename(mem), cid, f'{mode}: back in the container memory cgroup')
        eq(int(open(f'/sys/fs/cgroup/memory{mem}/memory.limit_in_bytes').read()), 64 << 20, f'{mode}: the limit')
        clean = Clean(cid)
        ok_run(rt('delete', '-f', cid))
        clean.check()


@test
def a_bind_mount_whose_destination_is_a_symlink():
    need_criu()
    out = tempfile.mkdtemp(dir=WORK)
    data = tempfile.mkdtemp(dir=WORK)
    b = counter(out, [{'destination': '/data-link', 'type': 'bind', 'source': data, 'options': ['rbind', 'ro']}])
    rootfs = Bundle(['true'], own_rootfs=True).config['root']['path']
    os.makedirs(os.path.join(rootfs, 'data'))
    os.symlink('data', os.path.join(rootfs, 'data-link'))
    b.config['root']['path'] = rootfs
    b.write()
    with open(os.path.join(data, 'hello'), 'w') as f:
        f.write('hi')
    cid = unique_id('cr')
    start(rt, b, cid, STATE_ROOT, out)
    eq(open(f'/proc/{state(cid)["pid"]}/root/data/hello').read(), 'hi', 'the bind on the resolved destination')
    there_and_back(b, cid, out)
    eq(open(f'/proc/{state(cid)["pid"]}/root/data/hello').read(), 'hi', 'the bind after restore')


@test
def nested_bind_mounts():
    need_criu()
    out, outer, inner = (tempfile.mkdtemp(dir=WORK) for _ in range(3))
    with open(os.path.join(inner, 'file'), 'w') as f:
        f.write('inner')
    b = counter(out, [{'destination': '/outer', 'type': 'bind', 'source': outer, 'options': ['rbind', 'rw']},
                      {'destination': '/outer/in', 'type': 'bind', 'source': inner, 'options': ['rbind', 'ro']}])
    cid = unique_id('cr')
    start(rt, b, cid, STATE_ROOT, out)
    # As on another host: the inner mount point is not in the outer source.
    there_and_back(b, cid, out, lambda: os.rmdir(os.path.join(outer, 'in')))
    eq(open(f'/proc/{state(cid)["pid"]}/root/outer/in/file').read(), 'inner', 'the nested bind after restore')


@test
def a_container_with_a_cgroup_namespace():
    need_criu()
    out = tempfile.mkdtemp(dir=WORK)
    b = counter(out, [{'destination': '/sys/fs/cgroup', 'type': 'cgroup', 'source': 'cgroup',
                       'options': ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']}])
    b.linux['namespaces'].append({'type': 'cgroup'})
    b.write()
    cid = unique_id('cr')
    start(rt, b, cid, STATE_ROOT, out)
    there_and_back(b, cid, out)
    pid = state(cid)['pid']
    inside = subprocess.run(['nsenter', '-t', str(pid), '-C', '-m', 'cat', '/proc/self/cgroup'], capture_output=True,
                            text=True).stdout
    if any(not line.endswith(':/') for line in inside.splitlines()):
        raise AssertionError(f'the restored cgroup namespace shows its cgroups as roots: {inside!r}')



@test
def restore_refuses_what_is_not_a_checkpoint():
    # Before CRIU runs, so on any kernel: a missing image path (not made,
    # as a checkpoint makes it), a file, a directory without a checkpoint;
    # each refused in one line, nothing left behind.
    b = Bundle(['sleep', '10'])
    missing = os.path.join(WORK, 'no-checkpoint')
    for images, words in ((missing, 'No such file'), (os.path.join(b.dir, 'config.json'), 'Not a directory'),
                          (tempfile.mkdtemp(dir=WORK), 'is it a checkpoint?')):
        cid = unique_id('cr')
        clean = Clean(cid)
        fails(rt('restore', '-d', '--bundle', b.dir, '--image-path', images, cid), images, words,
              what=f'restore from {images}')
        clean.check()
    if os.path.exists(missing):
        raise AssertionError('restore made the missing image path')

if __name__ == '__main__':
    sys.exit(main())
