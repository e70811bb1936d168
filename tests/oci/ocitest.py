"""Helpers for casulo-runtime's integration tests (suite `root`).

Each test file registers functions with @test and calls main(); every test
prints one TAP line.  A test raises Skip("reason") when the host cannot run
it.  Bundles use a busybox rootfs built once per run from Debian's
busybox-static.  After a test, check_clean() proves that a container left
no state directory, cgroup, mount or process behind.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), '..', 'common'))
import taprun  # noqa: E402

RUNTIME = os.environ.get('CASULO_RUNTIME') or os.path.join(
    os.path.dirname(__file__), '..', '..', 'build', 'casulo-runtime')
RUNTIME = os.path.abspath(RUNTIME)
# tests/: a traceback's frames in the test files, for a failure's "# at".
TESTS_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
# VM mode (docs/vm-containers.md): the runtime started as casulo-runtime-vm
# runs every container in its own VM; tests check the guest's side where
# the host's would differ.  tests/oci/test_vm.py runs them so in the lab.
VM = os.path.basename(RUNTIME) == 'casulo-runtime-vm'
BUSYBOX = shutil.which('busybox') or '/bin/busybox'
WORK = tempfile.mkdtemp(prefix='casulo-oci-test.')
STATE_ROOT = os.path.join(WORK, 'state')

_tests = []
_counter = [0]


class Skip(Exception):
    pass


def test(fn):
    _tests.append(fn)
    return fn


def unique_id(tag='c'):
    _counter[0] += 1
    return f'{tag}-{os.getpid()}-{_counter[0]}'


def rootfs_template():
    """A busybox rootfs shared by the bundles that do not change it."""
    path = os.path.join(WORK, 'rootfs')
    if os.path.isdir(path):
        return path
    make_rootfs(path)
    return path


def make_rootfs(path):
    for d in ('bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'run', 'mnt', 'home/user', 'var'):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, 'tmp'), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(path, 'bin', 'busybox'))
    applets = subprocess.run([BUSYBOX, '--list'], capture_output=True, text=True).stdout.split()
    for a in applets:
        link = os.path.join(path, 'bin', a)
        if a != 'busybox' and not os.path.lexists(link):
            os.symlink('busybox', link)
    with open(os.path.join(path, 'etc', 'passwd'), 'w') as f:
        f.write('root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n'
                'nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n')
    with open(os.path.join(path, 'etc', 'group'), 'w') as f:
        f.write('root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n')
    return path


ALL_CAPS = None


def default_config(args, rootfs=None):
    return {
        'ociVersion': '1.1.0',
        'process': {
            'terminal': False,
            'user': {'uid': 0, 'gid': 0},
            'args': args,
            'env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
            'cwd': '/',
            'capabilities': {k: ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN',
                                 'CAP_MKNOD', 'CAP_SETUID', 'CAP_SETGID', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE',
                                 'CAP_SYS_CHROOT', 'CAP_NET_ADMIN', 'CAP_SETPCAP']
                             for k in ('bounding', 'effective', 'permitted')},
            'rlimits': [{'type': 'RLIMIT_NOFILE', 'hard': 1024, 'soft': 1024}],
            'noNewPrivileges': True,
        },
        'root': {'path': rootfs or rootfs_template(), 'readonly': True},
        'hostname': 'casulo-test',
        'mounts': [
            {'destination': '/proc', 'type': 'proc', 'source': 'proc'},
            {'destination': '/dev', 'type': 'tmpfs', 'source': 'tmpfs',
             'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
            {'destination': '/dev/pts', 'type': 'devpts', 'source': 'devpts',
             'options': ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']},
            {'destination': '/dev/shm', 'type': 'tmpfs', 'source': 'shm',
             'options': ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},
            {'destination': '/dev/mqueue', 'type': 'mqueue', 'source': 'mqueue',
             'options': ['nosuid', 'noexec', 'nodev']},
            {'destination': '/sys', 'type': 'sysfs', 'source': 'sysfs',
             'options': ['nosuid', 'noexec', 'nodev', 'ro']},
            {'destination': '/tmp', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['nosuid', 'nodev']},
        ],
        'linux': {
            'resources': {'devices': [{'allow': False, 'access': 'rwm'}]},
            'namespaces': [{'type': t} for t in ('pid', 'network', 'ipc', 'uts', 'mount')],
            'maskedPaths': ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware', '/proc/scsi'],
            'readonlyPaths': ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
        },
    }


class Bundle:
    def __init__(self, args=('true',), config=None, own_rootfs=False):
        self.dir = tempfile.mkdtemp(prefix='bundle.', dir=WORK)
        rootfs = make_rootfs(os.path.join(self.dir, 'rootfs')) if own_rootfs else None
        self.config = config or default_config(list(args), rootfs)
        self.write()

    def write(self):
        with open(os.path.join(self.dir, 'config.json'), 'w') as f:
            json.dump(self.config, f, indent=1)

    @property
    def process(self):
        return self.config['process']

    @property
    def linux(self):
        return self.config['linux']

    def set_args(self, *args):
        self.config['process']['args'] = list(args)
        self.write()

    def namespaces(self, *kinds):
        self.config['linux']['namespaces'] = [{'type': k} for k in kinds]
        self.write()


def rt(*args, input=None, timeout=None, env=None, pass_fds=(), check=False, root=None, stdin=None, binary=None):
    """Run casulo-runtime; returns CompletedProcess (text).  Output goes
    through files, not pipes: a detached container keeps its stdio open."""
    cmd = [binary or RUNTIME, '--root', root or STATE_ROOT] + [str(a) for a in args]
    with tempfile.TemporaryFile(mode='w+') as out, tempfile.TemporaryFile(mode='w+') as err:
        if input is not None:
            stdin = tempfile.TemporaryFile(mode='w+')
            stdin.write(input)
            stdin.seek(0)
        p = subprocess.run(cmd, stdout=out, stderr=err, timeout=timeout or (300 if VM else 60), env=env, pass_fds=pass_fds,
                           stdin=stdin if stdin is not None else subprocess.DEVNULL)
        out.seek(0)
        err.seek(0)
        p.stdout, p.stderr = out.read(), err.read()
    if check and p.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} exited {p.returncode}: {p.stderr.strip()}')
    return p


RUNC = shutil.which('runc')
RUNC_ROOT = os.path.join(WORK, 'runc-state')


def need_runc():
    """The peer for behaviour meant to match runc's (Debian's runc 1.1)."""
    if not RUNC:
        raise Skip('runc is not installed (the peer these tests compare with)')


def runc(*args, **kw):
    """Run runc with a state root of its own, as rt() runs casulo-runtime."""
    return rt(*args, root=RUNC_ROOT, binary=RUNC, **kw)


def run(bundle, cid=None, extra=(), **kw):
    return rt('run', '--bundle', bundle.dir, *extra, cid or unique_id(), **kw)


def start_detached(bundle, cid=None):
    """run --detach; returns (id, pid of the init) once it runs."""
    cid = cid or unique_id()
    ok_run(rt('run', '--detach', '--bundle', bundle.dir, cid), 'run --detach')
    return cid, wait_status(cid, 'running')['pid']


def unix_listener(handler):
    """A Unix socket in WORK served once by handler(conn) in a thread;
    returns (path, thread).  Join the thread, then the socket is closed."""
    import socket
    import threading
    path = os.path.join(tempfile.mkdtemp(dir=WORK), 'sock')
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(30)

    def serve():
        try:
            conn, _ = srv.accept()
            with conn:
                handler(conn)
        finally:
            srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return path, t


def state(cid):
    p = rt('state', cid)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)


def wait_status(cid, want, timeout=None):
    # A VM boots and powers off in seconds (more in the lab).
    end = time.time() + (timeout or (60 if VM else 5))
    st = None
    while time.time() < end:
        st = state(cid)
        if st and st['status'] == want:
            return st
        reap()  # a dying pid namespace waits for its members to be reaped
        time.sleep(0.02)
    raise AssertionError(f'container {cid}: status {st and st["status"]}, wanted {want}')


def eq(a, b, what=''):
    if a != b:
        raise AssertionError(f'{what}: {a!r} != {b!r}')


def contains(haystack, needle, what=''):
    if needle not in haystack:
        raise AssertionError(f'{what}: {needle!r} not in {haystack!r}')


def ok_run(p, what='run'):
    if p.returncode != 0:
        raise AssertionError(f'{what} exited {p.returncode}: stdout={p.stdout!r} stderr={p.stderr!r}')
    return p.stdout


def fails(p, *needles, what='command'):
    """The runtime failed with exit code 1 and an error naming each needle."""
    if p.returncode == 0:
        raise AssertionError(f'{what} succeeded, expected failure: {p.stdout!r}')
    for n in needles:
        if n not in p.stderr:
            raise AssertionError(f'{what}: error {p.stderr.strip()!r} does not mention {n!r}')
    return p.stderr


# ---- cgroups ----

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


# cgroup v2 on this hybrid host: a mount namespace whose /sys/fs/cgroup is
# cgroup2 (the hierarchy the host mounts at /sys/fs/cgroup/unified).
V2_PREFIX = ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
             'umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"', 'sh']


def v2_available():
    if not shutil.which('unshare'):
        raise Skip('no unshare(1)')
    p = subprocess.run(V2_PREFIX + ['cat', '/sys/fs/cgroup/cgroup.controllers'], capture_output=True, text=True)
    if p.returncode != 0:
        raise Skip(f'cannot mount cgroup2 at /sys/fs/cgroup in a mount namespace: {p.stderr.strip()}')
    return p.stdout.split()


def rt2(*args, timeout=60, input=None, **kw):
    """casulo-runtime where /sys/fs/cgroup is cgroup2."""
    cmd = V2_PREFIX + [RUNTIME, '--root', STATE_ROOT] + [str(a) for a in args]
    with tempfile.TemporaryFile(mode='w+') as out, tempfile.TemporaryFile(mode='w+') as err, \
            tempfile.TemporaryFile(mode='w+') as stdin:
        if input is not None:
            stdin.write(input)
            stdin.seek(0)
        p = subprocess.run(cmd, stdout=out, stderr=err, stdin=stdin, timeout=timeout, **kw)
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


# ---- leftovers ----

def own_cgroups():
    """controller-set -> path of this process, from /proc/self/cgroup."""
    out = {}
    with open('/proc/self/cgroup') as f:
        for line in f:
            _, ctrls, path = line.rstrip('\n').split(':', 2)
            out[ctrls] = path
    return out


def cgroup_mounts():
    """[(controllers, mountpoint)] for every cgroup mount (controllers '' = v2)."""
    res = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            pre, post = line.split(' - ', 1)
            fields = pre.split()
            fstype, _, opts = post.split()[:3]
            if fstype == 'cgroup2':
                res.append(('', fields[4]))
            elif fstype == 'cgroup':
                ctrls = ','.join(o for o in opts.split(',') if o not in ('rw', 'ro', 'clone_children'))
                res.append((ctrls, fields[4]))
    return res


def container_cgroup_dirs(cid, cgroups_path=None):
    """Where the runtime puts a container's cgroups (runc's rules)."""
    own = own_cgroups()
    dirs = []
    for ctrls, mnt in cgroup_mounts():
        rel = cgroups_path or cid
        base = '' if rel.startswith('/') else own.get(ctrls, '/')
        dirs.append(os.path.normpath(mnt + '/' + base + '/' + rel))
    return dirs


def mounts_under(prefix):
    """Host mount points below prefix (our bundles and rootfs live there)."""
    out = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            mnt = line.split()[4].replace('\\040', ' ')
            if mnt == prefix or mnt.startswith(prefix + '/'):
                out.append(mnt)
    return out


def processes_with(marker):
    """Pids whose command line holds marker."""
    pids = []
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            with open(f'/proc/{p}/cmdline', 'rb') as f:
                if marker.encode() in f.read():
                    pids.append(int(p))
        except OSError:
            pass
    return pids


def processes_in(directory):
    """Pids whose working directory is (or was) directory."""
    pids = []
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            cwd = os.readlink(f'/proc/{p}/cwd')
        except OSError:
            continue
        if cwd == directory or cwd.startswith(directory + '/') or cwd == directory + ' (deleted)':
            pids.append(int(p))
    return pids


class Clean:
    """check() proves a container left no state, cgroup, process or mount."""

    def __init__(self, cid, cgroups_path=None):
        self.cid = cid
        self.cgroups_path = cgroups_path

    def check(self):
        sd = os.path.join(STATE_ROOT, self.cid)
        if os.path.exists(sd):
            raise AssertionError(f'state directory {sd} left behind')
        for d in container_cgroup_dirs(self.cid, self.cgroups_path):
            if os.path.exists(d):
                raise AssertionError(f'cgroup {d} left behind')
        left = [p for p in processes_with(self.cid) if p != os.getpid()]
        if left:
            raise AssertionError(f'processes {left} left behind')
        # A VM's monitor and VMM work in the container's state directory.
        left = processes_in(sd)
        if left:
            raise AssertionError(f'processes {left} (a VMM?) left behind in {sd}')
        # Other suites (podman, the VMM's) mount things beside us: what must
        # not be left is a mount from one of our bundles in the host's table.
        left = mounts_under(WORK)
        if left:
            raise AssertionError(f'mounts left in the host namespace: {left}')


def fails_clean(bundle, *needles, verb='run', what=None):
    """run (or create) fails naming each needle, and leaves nothing behind."""
    cid = unique_id()
    clean = Clean(cid)
    if verb == 'run':
        p = run(bundle, cid)
    else:
        p = rt(verb, '--bundle', bundle.dir, cid)
    err = fails(p, *needles, what=what or verb)
    clean.check()
    return err


def cleanup_all():
    if os.path.isdir(STATE_ROOT):
        for cid in os.listdir(STATE_ROOT):
            rt('delete', '--force', cid)
    if RUNC and os.path.isdir(RUNC_ROOT):
        for cid in os.listdir(RUNC_ROOT):
            runc('delete', '--force', cid)


# A guest that stops in the lab (taprun.run_with_lab_retries()): seen as a
# VM whose agent never came or a triple fault.
LAB_FAULTS = ('did not start its agent within', 'triple fault')


def run_with_lab_retries(fn):
    """fn(); again after a lab guest fault (in the lab), with every
    container and process of the last try cleaned up.  What to add to the
    result line: '' or how many faults there were."""
    def lab_fault(e):
        return 'a guest stopped in the lab (%s)' % str(e)[-300:] if any(f in str(e) for f in LAB_FAULTS) else None

    def clean():
        cleanup_all()
        reap()
    _, faults = taprun.run_with_lab_retries(fn, lab_fault, fn.__name__, clean)
    note = taprun.with_fault_note(None, faults)
    return ' ' + note if note else ''


def main():
    if os.geteuid() != 0:
        print('1..1')
        print('ok 1 - root suite # SKIP needs root')
        return 0
    # Containers started with create/start are re-parented to us.
    try:
        import ctypes
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except OSError:
        pass
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # TEST_FILTER: the tests whose name holds it, or one of its comma-separated parts
    only = [part for part in os.environ.get('TEST_FILTER', '').split(',') if part]
    tests = [t for t in _tests if not only or any(part in t.__name__ for part in only)]
    # tests/lab/run --tap: a lab that died was booted again, and the first
    # results (and the plan) are printed already.
    done = int(os.environ.get('CASULO_TAP_DONE', '0') or 0)
    if done == 0:
        print(f'1..{len(tests)}', flush=True)
    failed = 0
    for i, fn in enumerate(tests, 1):
        if i <= done:
            continue
        name = fn.__name__
        if i <= done:
            continue
        start = time.time()
        try:
            again = run_with_lab_retries(fn)
            print(f'ok {i} - {name} ({time.time() - start:.2f}s){again}', flush=True)
        except Skip as s:
            print(f'ok {i} - {name} # SKIP {s}', flush=True)
        except Exception as e:  # noqa: BLE001 - a test's failure, reported in TAP
            failed += 1
            print(f'not ok {i} - {name}', flush=True)
            for line in (''.join(traceback.format_exception_only(type(e), e))).splitlines():
                print(f'# {line}', flush=True)
            tb = traceback.extract_tb(e.__traceback__)
            if tb:
                # The failing line of the test itself, and where it ended
                # (a check here, or a library's frame: a gRPC deadline)
                # when elsewhere.
                ours = [f for f in tb if os.path.realpath(f.filename).startswith(TESTS_DIR + os.sep)
                        and os.path.realpath(f.filename) != os.path.realpath(__file__)]
                where = [ours[-1]] if ours and ours[-1] is not tb[-1] else []
                print('# at ' + ' -> '.join(f'{f.filename}:{f.lineno}' for f in where + [tb[-1]]), flush=True)
        finally:
            cleanup_all()
            reap()
    shutil.rmtree(WORK, ignore_errors=True)
    return 1 if failed else 0


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
