#!/usr/bin/python3
"""casulo-jailer (docs/jailer.md).  Prints TAP.

--part host: what needs no KVM, as root here: bad input gets a one-line
  error naming the object and leaves nothing behind; a jailed program (the
  static busybox) sees only its jail, runs as the given uid with no
  capabilities and no_new_privs; the directory and the cgroup are gone
  after it ends, after kill -9 of the program, and after kill -9 of the
  jailer and `--cleanup ID`.
--part vm: casulo-vmm jailed, where /dev/kvm works (in the lab here:
  tests/jailer/meson.build): the default guest boots and writes its disk;
  the VMM runs as the uid with no capabilities; a snapshot named by the API
  lands inside the jail, one naming a host path outside it fails; nothing
  is left after the VM ends or after kill -9 of the VMM.

usage: test_jailer.py --part host|vm --jailer build/casulo-jailer
                      [--vmm build/casulo-vmm --guest build/guest]
"""
import argparse
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), '..', 'common'))
import taprun  # noqa: E402
from taprun import Failure, Skip, check  # noqa: E402

UID, GID = 4321, 4322
PARENT_CGROUP = 'casulo-jailer-test'
BUSYBOX = '/usr/bin/busybox'
QUIET = 'console=ttyS0 quiet reboot=k panic=-1'
HOST_TESTS, VM_TESTS = [], []
A = None  # the parsed arguments


def host_test(fn):
    HOST_TESTS.append(fn)
    return fn


def vm_test(fn):
    VM_TESTS.append(fn)
    return fn


def mount_cgroups():
    """The lab's L1 mounts no cgroups: a cgroup2 hierarchy then."""
    if os.path.isdir('/sys/fs/cgroup') and not os.listdir('/sys/fs/cgroup'):
        subprocess.run(['mount', '-t', 'cgroup2', 'none', '/sys/fs/cgroup'], check=False)


def cgroup_dirs(jail_id):
    """Every directory of the jail's cgroup that exists (v1, hybrid or v2)."""
    pats = ['/sys/fs/cgroup/%s/%s' % (PARENT_CGROUP, jail_id), '/sys/fs/cgroup/*/%s/%s' % (PARENT_CGROUP, jail_id)]
    return [d for p in pats for d in glob.glob(p)]


class Jail:
    """One jail under a fresh chroot base on tmpfs (/run: a Unix socket
    cannot be bound on the lab's 9p share)."""

    def __init__(self, exec_file, jail_id=None):
        self.base = tempfile.mkdtemp(prefix='jailer-test-', dir='/run')
        self.id = jail_id or 'j%d' % os.getpid()
        self.exec_file = exec_file
        self.dir = os.path.join(self.base, os.path.basename(exec_file), self.id)
        self.root = os.path.join(self.dir, 'root')

    def argv(self, files=(), rw_files=(), extra=(), args=(), uid=UID, gid=GID):
        a = [A.jailer, '--id', self.id, '--exec-file', self.exec_file, '--uid', str(uid), '--gid', str(gid),
             '--chroot-base', self.base, '--parent-cgroup', PARENT_CGROUP]
        for f in files:
            a += ['--file', f]
        for f in rw_files:
            a += ['--rw-file', f]
        return a + list(extra) + ['--'] + list(args)

    def run(self, timeout=60, **kw):
        p = subprocess.run(self.argv(**kw), capture_output=True, timeout=timeout)
        p.out = p.stdout.decode(errors='replace').replace('\r\n', '\n')
        p.err = p.stderr.decode(errors='replace')
        return p

    def start(self, **kw):
        return subprocess.Popen(self.argv(**kw), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def leftovers(self):
        left = cgroup_dirs(self.id)
        if os.path.lexists(self.dir):
            left.append(self.dir)
        return left

    def check_clean(self, when):
        left = self.leftovers()
        check(not left, '%s, left behind: %r' % (when, left))

    def cleanup(self):
        subprocess.run([A.jailer, '--cleanup', self.id, '--chroot-base', self.base, '--exec-file', self.exec_file,
                        '--parent-cgroup', PARENT_CGROUP], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def program_of(jailer, name, timeout=30):
    """The jailed program: the jailer's child once it runs name (before
    that, the jailer's children are its dynamic loader listing libraries,
    then the child setting up the jail)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if jailer.poll() is not None:
            raise Failure('the jailer exited %d before %s ran: %r' % (jailer.returncode, name,
                                                                      jailer.stderr.read()[-800:]))
        try:
            with open('/proc/%d/task/%d/children' % (jailer.pid, jailer.pid)) as f:
                kids = [int(k) for k in f.read().split()]
        except FileNotFoundError:
            kids = []
        for k in kids:
            try:
                with open('/proc/%d/comm' % k) as f:
                    if f.read().strip() == name:
                        return k
            except (FileNotFoundError, ProcessLookupError):
                pass  # the loader's run, ended
        time.sleep(0.05)
    raise Failure('the jailer %d did not run %s in %d s' % (jailer.pid, name, timeout))


def status_fields(pid):
    with open('/proc/%d/status' % pid) as f:
        return dict(line.rstrip('\n').split(':\t', 1) for line in f if ':\t' in line)


def check_confined_status(st, what):
    check(st['Uid'].split() == [str(UID)] * 4 and st['Gid'].split() == [str(GID)] * 4,
          '%s runs as %s / %s, wanted %d/%d' % (what, st['Uid'], st['Gid'], UID, GID))
    for cap in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'):
        check(int(st[cap], 16) == 0, '%s has %s %s' % (what, cap, st[cap]))
    check(st.get('NoNewPrivs') == '1', '%s: NoNewPrivs %r' % (what, st.get('NoNewPrivs')))
    check(st.get('Groups', '').strip() == '', '%s keeps groups %r' % (what, st.get('Groups')))


def one_line_error(p, *words):
    lines = [line for line in p.err.splitlines() if line.strip()]
    check(p.returncode != 0, 'exit 0 for bad input; stderr %r' % p.err)
    check(len(lines) == 1, 'not a one-line error: %r' % p.err)
    for w in words:
        check(w in lines[0], 'error %r does not say %r' % (lines[0], w))
    return lines[0]


def bad_input(jail, words, **kw):
    try:
        p = jail.run(**kw)
        msg = one_line_error(p, *words)
        jail.check_clean('after the refusal %r' % msg)
        return msg
    finally:
        jail.cleanup()


# ---- host: bad input ----

@host_test
def missing_file_is_refused():
    return bad_input(Jail(BUSYBOX), ["file '/nonexistent/kernel'", 'No such file'], files=['/nonexistent/kernel'])


@host_test
def missing_exec_file_is_refused():
    return bad_input(Jail('/nonexistent/casulo-vmm'), ["exec file '/nonexistent/casulo-vmm'", 'No such file'])


@host_test
def bad_uid_is_refused():
    msgs = [bad_input(Jail(BUSYBOX), ["uid 'nobody'", 'not a numeric id'], uid='nobody'),
            bad_input(Jail(BUSYBOX), ["uid '4294967295'"], uid=4294967295),
            bad_input(Jail(BUSYBOX), ["gid '-1'"], gid=-1)]
    return '; '.join(msgs)


@host_test
def bad_id_is_refused():
    return bad_input(Jail(BUSYBOX, jail_id='../escape'), ["jail id '../escape'", 'only letters'])


@host_test
def chroot_base_that_is_a_file_is_refused():
    j = Jail(BUSYBOX)
    f = os.path.join(j.base, 'a-file')
    open(f, 'w').close()
    top, j.base = j.base, f
    try:
        return bad_input(j, ["chroot base '%s'" % f, 'Not a directory'])
    finally:
        shutil.rmtree(top, ignore_errors=True)


@host_test
def bad_limits_are_refused():
    """The cgroup limits go through the one parser of src/cgroup: a bad
    value or a key given twice is refused before anything is made."""
    return '; '.join([
        bad_input(Jail(BUSYBOX), ['cgroup limits', "memory", 'lots'], extra=['--limits', 'memory=lots']),
        bad_input(Jail(BUSYBOX), ['cgroup limits', 'memory'], extra=['--memory', '64M', '--limits', 'memory=1G']),
        bad_input(Jail(BUSYBOX), ["--cpus '0'"], extra=['--cpus', '0']),
        bad_input(Jail(BUSYBOX), ["--pids '1,memory=2'", 'one value'], extra=['--pids', '1,memory=2'])])


@host_test
def missing_netns_is_refused():
    return bad_input(Jail(BUSYBOX), ["network namespace '/run/netns/none-such'", 'No such file'],
                     extra=['--netns', '/run/netns/none-such'])


@host_test
def existing_id_is_refused():
    """A second jail of a running id is refused and leaves the first one
    alone; the first is cleaned up when it ends."""
    first = Jail(BUSYBOX)
    try:
        # PID 1 of its namespace: SIGTERM reaches it only through a handler.
        p = first.start(args=['sh', '-c', 'trap \"exit 7\" TERM; while :; do sleep 0.2; done'])
        prog = program_of(p, 'busybox')
        second = Jail(BUSYBOX, jail_id=first.id)
        second.base = first.base
        second.dir = first.dir
        q = second.run()
        msg = one_line_error(q, "jail '%s'" % first.id, 'already exists')
        check(os.path.isdir(first.root) and cgroup_dirs(first.id), 'the refusal touched the running jail')
        check(os.path.exists('/proc/%d' % prog), 'the refusal killed the running program')
        p.send_signal(signal.SIGTERM)  # forwarded to the program
        rc = p.wait(timeout=20)
        check(rc == 7, 'jailer exit %d after SIGTERM, wanted 7 (the program\'s trap)' % rc)
        first.check_clean('after the program ended')
        return msg
    finally:
        first.cleanup()


# ---- host: the jail itself, with busybox ----

@host_test
def jailed_program_sees_only_its_jail():
    j = Jail(BUSYBOX)
    try:
        secret = tempfile.NamedTemporaryFile(prefix='jailer-secret-', dir='/tmp', delete=False)
        secret.write(b'host secret\n')
        secret.close()
        os.chmod(secret.name, 0o644)
        data = tempfile.NamedTemporaryFile(prefix='jailer-data-', dir='/tmp', delete=False)
        data.write(b'jail data\n')
        data.close()
        os.chmod(data.name, 0o644)
        script = ('ls -a /; echo ---; ls /dev /dev/net; echo ---; cat /%s; cat %s; echo cat=$?; '
                  'cat /proc/1/status; touch /x 2>/dev/null; echo touch-root=$?; '
                  'touch /run/y; echo touch-run=$?; hostname') % (os.path.basename(data.name), secret.name)
        p = j.run(files=[data.name], args=['sh', '-c', script])
        check(p.returncode == 0, 'exit %d: %r %r' % (p.returncode, p.out[-500:], p.err))
        top, devs, rest = p.out.split('---\n', 2)
        names = set(top.split()) - {'.', '..'}
        want = {'busybox', 'dev', 'proc', 'run', os.path.basename(data.name)}
        check(names == want, 'the jail root holds %r, wanted %r' % (sorted(names), sorted(want)))
        check(set(devs.split()) >= {'kvm', 'net', 'urandom', 'tun'} and 'null' not in devs.split(),
              'devices: %r' % devs)
        check('jail data' in rest and 'host secret' not in rest and 'cat=1' in rest,
              'file access in the jail: %r' % rest[:300])
        check('touch-root=1' in rest and 'touch-run=0' in rest, 'writable places: %r' % rest[-300:])
        check(rest.strip().endswith(j.id), 'hostname is not the jail id: %r' % rest[-100:])
        st = dict(line.split(':\t', 1) for line in rest.splitlines() if ':\t' in line)
        check(st.get('NSpid', '').strip() == '1' and st.get('Name', '').strip() == 'busybox',
              'PID 1 of its namespace is not the program: %r' % st.get('Name'))
        check_confined_status({k: v.strip() if k == 'Groups' else v for k, v in st.items()}, 'the program')
        j.check_clean('after the program ended')
        return 'root: %s' % ' '.join(sorted(names))
    finally:
        j.cleanup()
        for f in (secret.name, data.name):
            os.unlink(f)


@host_test
def joins_the_network_namespace_given():
    if not shutil.which('ip'):
        raise Skip('ip (iproute2) is missing')
    ns = 'jailer-test-%d' % os.getpid()
    j = Jail(BUSYBOX)
    try:
        subprocess.run(['ip', 'netns', 'add', ns], check=True)
        subprocess.run(['ip', '-n', ns, 'tuntap', 'add', 'jailtest0', 'mode', 'tap'], check=True)
        p = j.run(extra=['--netns', '/run/netns/' + ns], args=['cat', '/proc/net/dev'])
        check(p.returncode == 0, 'exit %d: %r' % (p.returncode, p.err))
        names = sorted(line.split(':')[0].strip() for line in p.out.splitlines() if ':' in line)
        check(names == ['jailtest0', 'lo'], 'the jail sees interfaces %r, wanted its namespace\'s' % names)
        j.check_clean('after the program ended')
        return 'interfaces: %s' % ' '.join(names)
    finally:
        subprocess.run(['ip', 'netns', 'del', ns], capture_output=True)
        j.cleanup()


@host_test
def program_runs_in_the_cgroup_with_limits():
    j = Jail(BUSYBOX)
    try:
        p = j.start(args=['sleep', '30'], extra=['--memory', '64M', '--limits', 'pids=16', '--cpus', '0.5'])
        prog = program_of(p, 'busybox')
        with open('/proc/%d/cgroup' % prog) as f:
            cg = f.read()
        check('/%s/%s' % (PARENT_CGROUP, j.id) in cg, 'not in its cgroup: %r' % cg)
        dirs = cgroup_dirs(j.id)
        found = {}
        for d in dirs:
            for name in ('memory.max', 'memory.limit_in_bytes', 'pids.max', 'cpu.max', 'cpu.cfs_quota_us'):
                if os.path.exists(os.path.join(d, name)):
                    with open(os.path.join(d, name)) as f:
                        found[name] = f.read().strip()
        mem = found.get('memory.max') or found.get('memory.limit_in_bytes')
        check(mem == str(64 << 20), 'memory limit %r' % found)
        check(found.get('pids.max') == '16', 'pids limit %r' % found)
        cpu = found.get('cpu.max') or found.get('cpu.cfs_quota_us')
        check(cpu and cpu.split()[0] == '50000', 'cpu quota %r' % found)
        p.kill()  # the jailer itself: kill -9
        p.wait()
        check(os.path.exists('/proc/%d' % prog), 'the program died with the jailer')
        check(os.path.isdir(j.dir) and cgroup_dirs(j.id), 'nothing to clean up after kill -9 of the jailer')
        c = subprocess.run([A.jailer, '--cleanup', j.id, '--chroot-base', j.base, '--exec-file', BUSYBOX,
                            '--parent-cgroup', PARENT_CGROUP], capture_output=True, text=True)
        check(c.returncode == 0, '--cleanup: exit %d %r' % (c.returncode, c.stderr))
        time.sleep(0.2)
        check(not os.path.exists('/proc/%d' % prog) or open('/proc/%d/stat' % prog).read().split()[2] == 'Z',
              '--cleanup left the program running')
        j.check_clean('after kill -9 of the jailer and --cleanup')
        c = subprocess.run([A.jailer, '--cleanup', j.id, '--chroot-base', j.base, '--exec-file', BUSYBOX,
                            '--parent-cgroup', PARENT_CGROUP], capture_output=True, text=True)
        check(c.returncode == 1 and 'nothing to clean up' in c.stderr, 'second --cleanup: %r' % c.stderr)
        return ', '.join('%s=%s' % kv for kv in sorted(found.items()))
    finally:
        j.cleanup()


@host_test
def kill_9_of_the_program_leaves_nothing():
    j = Jail(BUSYBOX)
    try:
        p = j.start(args=['sleep', '30'])
        prog = program_of(p, 'busybox')
        os.kill(prog, signal.SIGKILL)
        rc = p.wait(timeout=20)
        check(rc == 137, 'jailer exit %d after kill -9 of the program, wanted 137' % rc)
        j.check_clean('after kill -9 of the program')
    finally:
        j.cleanup()


# ---- the VM (KVM) ----

class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__('localhost', timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def api(sock, method, path, body=None):
    c = UnixHTTP(sock)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={'Content-Type': 'application/json'})
    r = c.getresponse()
    text = r.read().decode(errors='replace')
    c.close()
    return r.status, text


def need_kvm():
    why = taprun.kvm_missing()
    if why:
        raise Skip(why)


def vm_files(work):
    """Copies of the default guest's kernel and initrd, and a raw disk."""
    disk = os.path.join(work, 'disk.img')
    with open(disk, 'wb') as f:
        f.truncate(16 << 20)
    return [os.path.join(A.guest, 'vmlinuz'), os.path.join(A.guest, 'initrd.img')], disk


def vmm_args(command, extra=()):
    return ['--kernel', '/vmlinuz', '--initrd', '/initrd.img', '--memory', '128M', '--disk', 'path=/disk.img',
            '--cmdline', QUIET + ' -- /bin/sh -c "%s"' % command] + list(extra)


@vm_test
def jailed_vm_boots_and_writes_its_disk():
    need_kvm()
    j = Jail(A.vmm)
    work = tempfile.mkdtemp(prefix='jailer-vm-', dir='/tmp')
    try:
        files, disk = vm_files(work)
        start = time.monotonic()
        p = j.run(timeout=300, files=files, rw_files=[disk],
                  args=vmm_args('echo JAILED-BOOT; echo JAILED-DISK-OK | dd of=/dev/vda conv=fsync 2>/dev/null; '
                                'echo done'))
        secs = time.monotonic() - start
        check(p.returncode == 0, 'exit %d: %r %r' % (p.returncode, p.out[-600:], p.err[-600:]))
        check('JAILED-BOOT' in p.out, 'no output from the guest: %r' % p.out[-600:])
        with open(disk, 'rb') as f:
            head = f.read(64)
        check(head.startswith(b'JAILED-DISK-OK\n'), 'the disk holds %r' % head[:20])
        check(os.stat(disk).st_uid == UID, 'the writable disk is not the jailed user\'s')
        j.check_clean('after the VM powered off')
        return 'booted and powered off in %.1f s' % secs
    finally:
        j.cleanup()
        shutil.rmtree(work, ignore_errors=True)


@vm_test
def jailed_vmm_is_confined_and_its_api_paths_are_inside():
    need_kvm()
    j = Jail(A.vmm)
    work = tempfile.mkdtemp(prefix='jailer-vm-', dir='/tmp')
    outside = os.path.join(work, 'escaped-snapshot')
    try:
        files, disk = vm_files(work)
        p = j.start(files=files, rw_files=[disk],
                    args=vmm_args('echo JAILED-UP; sleep 600', ['--api-socket', '/run/api.sock', '--snapshot-dir', '/run']))
        vmm = program_of(p, 'casulo-vmm')
        sock = os.path.join(j.root, 'run', 'api.sock')
        end = time.monotonic() + 120
        while not os.path.exists(sock):
            check(time.monotonic() < end and p.poll() is None,
                  'no API socket at %s (jailer %r): %r' % (sock, p.poll(), p.stderr.read1(2000) if p.poll() else ''))
            time.sleep(0.1)
        check_confined_status(status_fields(vmm), 'casulo-vmm')
        with open('/proc/%d/cgroup' % vmm) as f:
            check('/%s/%s' % (PARENT_CGROUP, j.id) in f.read(), 'the VMM is not in its cgroup')
        check(os.readlink('/proc/%d/root' % vmm) == '/', 'root link')  # as the host sees it: its own root
        out_status, out_text = api(sock, 'PUT', '/snapshot/create', {'path': outside})
        check(out_status >= 400, 'a snapshot to the host path %s was accepted: %d %s' % (outside, out_status, out_text))
        check(not os.path.exists(outside), 'the VMM wrote %s outside its jail' % outside)
        status, text = api(sock, 'PUT', '/snapshot/create', {'path': '/run/snap'})
        check(status < 300, 'a snapshot inside the jail failed: %d %s' % (status, text))
        inside = os.path.join(j.root, 'run', 'snap')
        check(os.path.isdir(inside) and os.listdir(inside), 'the snapshot is not at %s' % inside)
        snap_files = sorted(os.listdir(inside))
        os.kill(vmm, signal.SIGKILL)
        rc = p.wait(timeout=30)
        check(rc == 137, 'jailer exit %d after kill -9 of the VMM' % rc)
        j.check_clean('after kill -9 of the VMM')
        return 'a host path: %d %s; /run/snap: %d, %s' % (out_status, out_text.strip()[:120], status, ' '.join(snap_files))
    finally:
        j.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument('--part', choices=('host', 'vm'), required=True)
    ap.add_argument('--jailer', required=True)
    ap.add_argument('--vmm')
    ap.add_argument('--guest')
    ap.add_argument('--filter')
    A = ap.parse_args()
    A.jailer = os.path.abspath(A.jailer)
    if A.vmm:
        A.vmm = os.path.abspath(A.vmm)
    tests = HOST_TESTS if A.part == 'host' else VM_TESTS
    if A.filter:
        tests = [t for t in tests if A.filter in t.__name__]
    skip = None
    if os.geteuid() != 0:
        skip = 'casulo-jailer needs root (namespaces, mounts, cgroups)'
    elif A.part == 'host' and not os.path.exists(BUSYBOX):
        skip = '%s is missing (busybox-static)' % BUSYBOX
    mount_cgroups()

    def run(t):
        return t()
    return taprun.run_tests(tests, run, skip)


if __name__ == '__main__':
    sys.exit(main())
