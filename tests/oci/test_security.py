#!/usr/bin/env python3
"""Process security and identity: capabilities, noNewPrivileges, seccomp
(every action, argument rules, notify), user namespaces and id maps,
rlimits, OOM score, personality, users and groups, namespaces created or
joined by path, time and cgroup namespaces, the console socket."""
import array
import json
import os
import pty
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (RUNC, RUNTIME, STATE_ROOT, VM, WORK, Bundle, Skip, contains, eq, fails_clean, main, ok_run,  # noqa: E402
                     rt, run, runc, start_detached, test, unique_id, unix_listener, wait_status)

CAP = {'CAP_CHOWN': 0, 'CAP_DAC_OVERRIDE': 1, 'CAP_KILL': 5, 'CAP_SETGID': 6, 'CAP_SETUID': 7,
       'CAP_NET_BIND_SERVICE': 10, 'CAP_NET_RAW': 13, 'CAP_SYS_ADMIN': 21, 'CAP_SYS_TIME': 25,
       'CAP_AUDIT_WRITE': 29}


def mask(*names):
    v = 0
    for n in names:
        v |= 1 << CAP[n]
    return v


def status_fields(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(':')
        out[k] = v.strip()
    return out


@test
def capabilities_all_five_sets():
    b = Bundle(['cat', '/proc/self/status'])
    b.process['capabilities'] = {
        'bounding': ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_TIME'],
        'effective': ['CAP_CHOWN', 'CAP_KILL'],
        'permitted': ['CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        'inheritable': ['CAP_KILL', 'CAP_NET_BIND_SERVICE'],
        'ambient': ['CAP_NET_BIND_SERVICE'],
    }
    b.write()
    st = status_fields(ok_run(run(b)))
    # execve: P' = (P(inh) & F(inh)) | ambient, E' = ambient for a non-setuid binary as root... as
    # root every file capability counts, so the sets after exec are the kernel's rules for uid 0.
    eq(int(st['CapBnd'], 16), mask('CAP_CHOWN', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SYS_TIME'),
       'bounding')
    eq(int(st['CapInh'], 16), mask('CAP_KILL', 'CAP_NET_BIND_SERVICE'), 'inheritable')
    eq(int(st['CapAmb'], 16), mask('CAP_NET_BIND_SERVICE'), 'ambient')
    # Non-root user: the sets are exactly what was asked (plus ambient in P and E).
    b.process['user'] = {'uid': 1000, 'gid': 1000}
    b.write()
    st = status_fields(ok_run(run(b)))
    eq(int(st['CapPrm'], 16), mask('CAP_NET_BIND_SERVICE'), 'permitted of uid 1000 after exec (ambient only)')
    eq(int(st['CapEff'], 16), mask('CAP_NET_BIND_SERVICE'), 'effective of uid 1000 after exec')
    eq(int(st['CapAmb'], 16), mask('CAP_NET_BIND_SERVICE'), 'ambient of uid 1000')


@test
def missing_capability_is_enforced():
    b = Bundle(['sh', '-c', 'hostname other 2>&1; echo rc=$?'])
    for k in b.process['capabilities']:
        b.process['capabilities'][k] = [c for c in b.process['capabilities'][k] if c != 'CAP_SYS_ADMIN']
    b.write()
    out = ok_run(run(b))
    contains(out, 'rc=1', 'sethostname without CAP_SYS_ADMIN fails')


@test
def denied_capability_setup_fails_cleanly():
    # effective must be a subset of permitted: capset refuses, nothing is left.
    b = Bundle(['true'])
    b.process['capabilities'] = {'bounding': ['CAP_KILL'], 'effective': ['CAP_KILL', 'CAP_SYS_TIME'],
                                 'permitted': ['CAP_KILL']}
    b.process['user'] = {'uid': 1000, 'gid': 1000}
    b.write()
    fails_clean(b, 'process.capabilities', what='effective outside permitted')
    # A capability the runtime does not know is ignored with a warning, as
    # runc does (a newer kernel's capability must not break old configs).
    b.process['capabilities'] = {'bounding': ['CAP_KILL', 'CAP_NOT_A_CAP'], 'effective': ['CAP_KILL'],
                                 'permitted': ['CAP_KILL']}
    b.process['user'] = {'uid': 0, 'gid': 0}
    b.write()
    p = run(b)
    ok_run(p, 'unknown capability')
    contains(p.stderr, "process.capabilities.bounding[1]: unknown capability 'CAP_NOT_A_CAP', ignored", 'warning')


@test
def no_new_privileges():
    b = Bundle(['grep', 'NoNewPrivs', '/proc/self/status'])
    contains(ok_run(run(b)), '1', 'noNewPrivileges true')
    b.process['noNewPrivileges'] = False
    b.write()
    contains(ok_run(run(b)), '0', 'noNewPrivileges false')


def seccomp_bundle(script, rules, default='SCMP_ACT_ALLOW', **extra):
    b = Bundle(['sh', '-c', script])
    b.linux['seccomp'] = dict({'defaultAction': default, 'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
                               'syscalls': rules}, **extra)
    b.write()
    return b


@test
def seccomp_errno_and_default_errno():
    b = seccomp_bundle('mkdir /tmp/d 2>&1; echo rc=$?',
                       [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 13}])
    out = ok_run(run(b))
    contains(out, 'Permission denied', 'errnoRet 13 (EACCES)')
    contains(out, 'rc=1', 'mkdir failed')
    b = seccomp_bundle('mkdir /tmp/d 2>&1; echo rc=$?', [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO'}])
    contains(ok_run(run(b)), 'Operation not permitted', 'default errno EPERM')
    # Everything not listed fails with defaultErrnoRet.
    allow = ['execve', 'brk', 'arch_prctl', 'set_tid_address', 'set_robust_list', 'rseq', 'prlimit64', 'mprotect',
             'exit_group', 'write', 'getuid', 'geteuid', 'getpid', 'getppid', 'uname', 'readlink', 'newfstatat',
             'fstat', 'stat', 'mmap', 'munmap', 'rt_sigaction', 'rt_sigprocmask', 'ioctl', 'fcntl', 'close',
             'read', 'openat', 'getcwd', 'futex', 'sigaltstack', 'statx']
    b = Bundle(['sh', '-c', 'true'])
    b.set_args('busybox', 'mkdir', '/tmp/x')
    b.linux['seccomp'] = {'defaultAction': 'SCMP_ACT_ERRNO', 'defaultErrnoRet': 28,
                          'syscalls': [{'names': allow, 'action': 'SCMP_ACT_ALLOW'}]}
    b.write()
    p = run(b)
    contains(p.stderr, 'No space left on device', 'defaultErrnoRet 28 (ENOSPC)')


def syscall_numbers():
    """{name: number} of x86_64's syscalls, from the kernel headers."""
    header = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h'
    if os.uname().machine != 'x86_64' or not os.path.exists(header):
        raise Skip('needs x86_64 and its asm/unistd_64.h')
    out = {}
    for line in open(header):
        parts = line.split()
        if len(parts) == 3 and parts[0] == '#define' and parts[1].startswith('__NR_') and parts[2].isdigit():
            out[parts[1][5:]] = int(parts[2])
    return out


@test
def seccomp_newer_syscalls_get_enosys():
    # issue 16 item 10: runc's stub: a syscall above every one the profile
    # names gets ENOSYS (a program falls back, as on an older kernel), one
    # the profile leaves out below them gets the default action.
    nums = syscall_numbers()
    probe = os.environ.get('SYSCALL_PROBE')
    if not probe:
        raise Skip('SYSCALL_PROBE (tests/oci/syscall-probe) is not built')
    top = nums['rseq']
    allow = sorted(n for n, nr in nums.items() if nr <= top and n != 'getppid')
    b = Bundle(['/probe', str(nums['getppid']), str(nums['clone3']), str(nums['process_madvise']), '1000', '-1'],
               own_rootfs=True)
    shutil.copy(probe, os.path.join(b.config['root']['path'], 'probe'))
    b.linux['seccomp'] = {'defaultAction': 'SCMP_ACT_ERRNO', 'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
                          'syscalls': [{'names': allow + ['no_such_syscall'], 'action': 'SCMP_ACT_ALLOW'}]}
    b.write()
    want = (f"{nums['getppid']}=EPERM\n{nums['clone3']}=ENOSYS\n{nums['process_madvise']}=ENOSYS\n"
            "1000=ENOSYS\n-1=EPERM\n")
    eq(ok_run(run(b)), want, 'the default for a syscall left out, ENOSYS above the profile')
    if RUNC:
        eq(ok_run(runc('run', '--bundle', b.dir, unique_id('runc'))), want, 'runc')
    # A profile that lists no architecture gets no stub (runc's rule).
    del b.linux['seccomp']['architectures']
    b.write()
    eq(ok_run(run(b)).split()[1:4], [f"{nums['clone3']}=EPERM", f"{nums['process_madvise']}=EPERM", '1000=EPERM'],
       'no architectures, no stub')
    # With an allowing default there is nothing to stub.
    b.linux['seccomp'] = {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['getppid'],
                                                                           'action': 'SCMP_ACT_ERRNO'}]}
    b.write()
    eq(ok_run(run(b)).split()[:2], [f"{nums['getppid']}=EPERM", f"{nums['clone3']}=EINVAL"], 'no stub')


@test
def seccomp_start_container_hooks_run_inside_the_filter():
    # runc loads the filter before waiting for start: the startContainer
    # hooks, which run in the container, are filtered too.
    out = tempfile.mkdtemp(dir=WORK)
    b = seccomp_bundle('true', [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO'}])
    b.config['mounts'].append({'destination': '/out', 'type': 'bind', 'source': out, 'options': ['rbind', 'rw']})
    b.config['hooks'] = {'startContainer': [{'path': '/bin/sh',
                                             'args': ['sh', '-c', 'mkdir /out/made 2>/dev/null || touch /out/denied']}]}
    b.write()
    for runtime in (rt, runc) if RUNC else (rt,):
        for name in ('made', 'denied'):
            if os.path.exists(os.path.join(out, name)):
                os.rmdir(os.path.join(out, name)) if name == 'made' else os.unlink(os.path.join(out, name))
        ok_run(runtime('run', '--bundle', b.dir, unique_id()), f'{runtime.__name__} run')
        eq(sorted(os.listdir(out)), ['denied'], f'{runtime.__name__}: the hook under the filter')


@test
def seccomp_listener_path_without_notify_is_ignored_with_a_warning():
    b = seccomp_bundle('echo ran', [{'names': ['mkdir'], 'action': 'SCMP_ACT_ERRNO'}],
                       listenerPath=os.path.join(WORK, 'nobody.sock'))
    p = run(b)
    eq(ok_run(p), 'ran\n', 'ran without a listener')
    contains(p.stderr, 'level=warning', 'a warning')
    contains(p.stderr, 'listenerPath', 'naming listenerPath')
    if RUNC:
        eq(ok_run(runc('run', '--bundle', b.dir, unique_id('runc'))), 'ran\n', 'runc runs it too')


@test
def seccomp_kill_trap_log_trace():
    b = seccomp_bundle('sh -c "mkdir /tmp/a"; echo rc=$?',
                       [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_KILL_PROCESS'}])
    eq(ok_run(run(b)).strip(), f'rc={128 + 31}', 'killed by SIGSYS')
    b = seccomp_bundle('sh -c "mkdir /tmp/a"; echo rc=$?',
                       [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_KILL'}])
    eq(ok_run(run(b)).strip(), f'rc={128 + 31}', 'KILL (thread) also ends a single-threaded process')
    b = seccomp_bundle('sh -c "mkdir /tmp/a"; echo rc=$?',
                       [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_TRAP'}])
    eq(ok_run(run(b)).strip(), f'rc={128 + 31}', 'TRAP sends SIGSYS')
    b = seccomp_bundle('mkdir /tmp/a && echo made',
                       [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_LOG'}], flags=['SECCOMP_FILTER_FLAG_LOG'])
    eq(ok_run(run(b)).strip(), 'made', 'LOG allows')
    # TRACE without a tracer: the syscall fails with ENOSYS.
    b = seccomp_bundle('mkdir /tmp/a 2>&1; echo rc=$?', [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_TRACE'}])
    contains(ok_run(run(b)), 'Function not implemented', 'TRACE without a tracer')


@test
def seccomp_argument_rules():
    # Refuse chmod only to mode 0700: chmod 755 works, chmod 700 fails.
    rules = [{'names': ['chmod'], 'action': 'SCMP_ACT_ERRNO',
              'args': [{'index': 1, 'value': 0o700, 'op': 'SCMP_CMP_EQ'}]},
             {'names': ['fchmodat'], 'action': 'SCMP_ACT_ERRNO',
              'args': [{'index': 2, 'value': 0o700, 'op': 'SCMP_CMP_EQ'}]}]
    script = 'touch /tmp/a; chmod 755 /tmp/a && echo a-ok; chmod 700 /tmp/a 2>/dev/null || echo b-refused'
    b = seccomp_bundle(script, rules)
    eq(ok_run(run(b)).split(), ['a-ok', 'b-refused'], 'argument comparison')
    # Masked equality, and two conditions on one argument (one rule each).
    rules = [{'names': ['chmod'], 'action': 'SCMP_ACT_ERRNO',
              'args': [{'index': 1, 'value': 0o070, 'valueTwo': 0o070, 'op': 'SCMP_CMP_MASKED_EQ'}]},
             {'names': ['chmod'], 'action': 'SCMP_ACT_ERRNO',
              'args': [{'index': 1, 'value': 0o700, 'op': 'SCMP_CMP_EQ'}, {'index': 1, 'value': 0o750, 'op': 'SCMP_CMP_EQ'}]}]
    script = ('touch /tmp/a; chmod 707 /tmp/a && echo a-ok; chmod 770 /tmp/a 2>/dev/null || echo b-refused; '
              'chmod 750 /tmp/a 2>/dev/null || echo c-refused; chmod 640 /tmp/a && echo d-ok')
    b = seccomp_bundle(script, rules)
    eq(ok_run(run(b)).split(), ['a-ok', 'b-refused', 'c-refused', 'd-ok'], 'masked and repeated argument rules')


def recv_fds(sock, size=8192):
    fds = array.array('i')
    msg, anc, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


@test
def seccomp_notify_sends_the_listener():
    got = {}

    def serve(conn):
        msg, fds = recv_fds(conn)
        got['msg'], got['fds'] = msg, fds
        for fd in fds:
            got['link'] = os.readlink(f'/proc/self/fd/{fd}')
            os.close(fd)  # no supervisor: pending syscalls fail with ENOSYS

    path, t = unix_listener(serve)
    b = seccomp_bundle('mkdir /tmp/n 2>&1; echo rc=$?', [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_NOTIFY'}],
                       listenerPath=path, listenerMetadata='meta-data')
    cid = unique_id()
    out = ok_run(run(b, cid))
    t.join(10)
    eq(len(got.get('fds', [])), 1, 'one fd received')
    contains(got['link'], 'seccomp', 'the fd is a seccomp listener')
    doc = json.loads(got['msg'])
    eq(doc['fds'], ['seccompFd'], 'fds')
    eq(doc['metadata'], 'meta-data', 'metadata')
    eq(doc['state']['id'], cid, 'state id')
    eq(doc['state']['status'], 'creating', 'state status')
    if doc['pid'] <= 0:
        raise AssertionError('no pid in the listener message')
    contains(out, 'rc=1', 'the notified syscall failed once the listener went away')
    b.linux['seccomp']['listenerPath'] = os.path.join(WORK, 'nobody-listens.sock')
    b.write()
    fails_clean(b, 'listenerPath', what='unreachable listener')


@test
def user_namespace_with_id_maps():
    host = tempfile.mkdtemp(dir=WORK)
    os.chmod(host, 0o777)
    os.chmod(WORK, 0o755)  # the mapped root must reach the rootfs
    b = Bundle(['sh', '-c', 'id -u; cat /proc/self/uid_map /proc/self/gid_map; touch /data/f; ls -ln /data/f; '
                            'stat -c %u /proc/1'], own_rootfs=True)
    rootfs = os.path.join(b.dir, 'rootfs')
    os.chmod(b.dir, 0o755)
    subprocess.run(['chown', '-R', '100000:100000', rootfs], check=True)
    b.config['mounts'] = [m for m in b.config['mounts'] if m['destination'] not in ('/sys',)]
    b.config['mounts'].append({'destination': '/data', 'type': 'bind', 'source': host, 'options': ['rbind']})
    b.linux['namespaces'].append({'type': 'user'})
    b.linux['uidMappings'] = [{'containerID': 0, 'hostID': 100000, 'size': 65536}]
    b.linux['gidMappings'] = [{'containerID': 0, 'hostID': 100000, 'size': 65536}]
    b.linux['resources'] = {}
    b.write()
    out = ok_run(run(b)).split('\n')
    eq(out[0], '0', 'root inside')
    eq(out[1].split(), ['0', '100000', '65536'], 'uid_map')
    eq(out[2].split(), ['0', '100000', '65536'], 'gid_map')
    eq(os.stat(os.path.join(host, 'f')).st_uid, 100000, 'file owned by the mapped uid on the host')
    # Root of the container is not the host's root: it cannot touch a host-root file.
    secret = os.path.join(host, 'secret')
    open(secret, 'w').write('x')
    os.chmod(secret, 0o600)
    b.set_args('sh', '-c', 'cat /data/secret 2>&1; echo rc=$?')
    contains(ok_run(run(b)), 'Permission denied', 'host root file protected')
    # Missing mappings for a new user namespace: refused before anything starts.
    del b.linux['uidMappings']
    b.write()
    fails_clean(b, 'uidMappings', what='user namespace without mappings')


@test
def rlimits_oom_score_personality_umask():
    b = Bundle(['sh', '-c', 'ulimit -n; ulimit -H -n; ulimit -c; cat /proc/self/oom_score_adj; uname -m; umask'])
    b.process['rlimits'] = [{'type': 'RLIMIT_NOFILE', 'soft': 100, 'hard': 200},
                            {'type': 'RLIMIT_CORE', 'soft': 0, 'hard': 0}]
    b.process['oomScoreAdj'] = 500
    b.process['user']['umask'] = 0o027
    b.linux['personality'] = {'domain': 'LINUX32'}
    b.write()
    eq(ok_run(run(b)).split(), ['100', '200', '0', '500', 'i686', '0027'], 'limits')
    # The runtime's own OOM score stays its caller's while the container
    # runs (the kernel copies a score to every process sharing the writer's
    # memory unless the writer is a vfork child, as a container process
    # cloned with the runtime's memory is).
    b.set_args('sleep', '5')
    b.write()
    cid = unique_id()
    fg = subprocess.Popen([RUNTIME, '--root', STATE_ROOT, 'run', '--bundle', b.dir, cid],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_status(cid, 'running')
        eq(open(f'/proc/{fg.pid}/oom_score_adj').read().strip(), open('/proc/self/oom_score_adj').read().strip(),
           "the foreground runtime's oom_score_adj beside a container's 500")
    finally:
        rt('kill', cid, 'KILL')
        fg.wait(timeout=30)
    b.process['rlimits'] = [{'type': 'RLIMIT_NOFILE', 'soft': 10, 'hard': 1 << 40}]
    b.write()
    fails_clean(b, 'process.rlimits[0]', 'setrlimit', what='rlimit above the hard limit we have')


@test
def memory_policy():
    if not os.path.exists('/proc/self/numa_maps'):
        raise Skip('no NUMA memory policies in this kernel')
    b = Bundle(['sh', '-c', 'head -1 /proc/self/numa_maps'])
    b.linux['memoryPolicy'] = {'mode': 'MPOL_BIND', 'nodes': '0', 'flags': ['MPOL_F_STATIC_NODES']}
    b.write()
    contains(ok_run(run(b)), ' bind=static:0 ', 'bind policy in numa_maps')
    b.linux['memoryPolicy'] = {'mode': 'MPOL_INTERLEAVE'}
    b.write()
    fails_clean(b, 'linux.memoryPolicy.nodes', 'needs nodes', what='interleave without nodes')


@test
def user_and_groups():
    b = Bundle(['sh', '-c', 'id; echo $HOME'])
    b.process['user'] = {'uid': 1000, 'gid': 1000, 'additionalGids': [5, 65534]}
    b.write()
    out = ok_run(run(b)).splitlines()
    contains(out[0], 'uid=1000', 'uid')
    contains(out[0], 'gid=1000', 'gid')
    contains(out[0], 'groups=5', 'additional gids')
    contains(out[0], '65534', 'second additional gid')
    eq(out[1], '/home/user', 'HOME from the container\'s /etc/passwd')


@test
def namespaces_joined_by_path():
    _, pid = start_detached(Bundle(['sleep', '30']))
    j = Bundle(['sh', '-c', 'for n in net ipc uts; do readlink /proc/self/ns/$n; done; hostname'])
    j.linux['namespaces'] = [{'type': 'pid'}, {'type': 'mount'}, {'type': 'network', 'path': f'/proc/{pid}/ns/net'},
                             {'type': 'ipc', 'path': f'/proc/{pid}/ns/ipc'}, {'type': 'uts', 'path': f'/proc/{pid}/ns/uts'}]
    del j.config['hostname']
    j.write()
    out = ok_run(run(j)).split()
    eq(out[:3], [os.readlink(f'/proc/{pid}/ns/{n}') for n in ('net', 'ipc', 'uts')], 'joined namespaces')
    eq(out[3], 'casulo-test', 'hostname of the joined uts namespace')
    j.linux['namespaces'][2]['path'] = f'/proc/{pid}/ns/ipc'
    j.write()
    fails_clean(j, 'not a network namespace', what='wrong namespace type')
    j.linux['namespaces'][2]['path'] = '/no/such/ns'
    j.write()
    fails_clean(j, '/no/such/ns', what='missing namespace path')


@test
def loopback_is_up_in_a_new_network_namespace():
    # runc brings lo up; programs that listen on 127.0.0.1 rely on it.
    contains(ok_run(run(Bundle(['ip', '-o', 'link', 'show', 'lo']))), ',UP', 'lo up')


@test
def net_devices_move_into_the_container():
    host, peer = f'cas{os.getpid() % 100000}a', f'cas{os.getpid() % 100000}b'
    p = subprocess.run(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', peer], capture_output=True, text=True)
    if p.returncode != 0:
        raise Skip(f'cannot make a veth pair here: {p.stderr.strip()}')
    try:
        b = Bundle(['sh', '-c', 'ip -o link show | cut -d: -f2 | cut -d@ -f1'])
        b.linux['netDevices'] = {host: {'name': 'ctr0'}}
        b.write()
        eq(ok_run(run(b)).split(), ['lo', 'ctr0'], 'devices in the container')
        gone = subprocess.run(['ip', 'link', 'show', host], capture_output=True).returncode != 0
        eq(gone, True, 'the device left the host namespace')
        b.linux['netDevices'] = {'no-such-dev0': {}}
        b.write()
        fails_clean(b, "linux.netDevices 'no-such-dev0'", what='a device the host lacks')
        b.linux['netDevices'] = {'eth0': {'name': 'bad/name'}}
        b.write()
        fails_clean(b, 'linux.netDevices.eth0.name', what='a bad device name')
    finally:
        subprocess.run(['ip', 'link', 'del', host], capture_output=True)
        subprocess.run(['ip', 'link', 'del', peer], capture_output=True)


@test
def time_and_cgroup_namespaces():
    if not os.path.exists('/proc/self/ns/time'):
        raise Skip('no time namespaces in this kernel')
    b = Bundle(['sh', '-c', 'cut -d. -f1 /proc/uptime; cat /proc/self/cgroup | cut -d: -f3 | sort -u'])
    b.linux['namespaces'] += [{'type': 'time'}, {'type': 'cgroup'}]
    b.linux['timeOffsets'] = {'boottime': {'secs': 864000, 'nanosecs': 0}, 'monotonic': {'secs': 3600}}
    b.write()
    out = ok_run(run(b)).split()
    host_up = float(open('/proc/uptime').read().split()[0])
    if not 863990 <= int(out[0]) - host_up <= 864010:
        raise AssertionError(f'uptime {out[0]} vs host {host_up}: boottime offset not applied')
    eq(out[1:], ['/'], 'cgroup namespace root')
    b.linux['namespaces'] = [n for n in b.linux['namespaces'] if n['type'] != 'time']
    b.write()
    fails_clean(b, 'timeOffsets', what='offsets without a time namespace')


@test
def console_socket_receives_the_pty():
    got = {}

    def serve(conn):
        _, fds = recv_fds(conn)
        data = b''
        try:
            while True:
                chunk = os.read(fds[0], 4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass  # EIO once the slave side closes
        got['out'] = data.decode(errors='replace')

    path, t = unix_listener(serve)
    b = Bundle(['sh', '-c', 'tty; stty size; ls -l /dev/console | cut -c1'])
    b.process['terminal'] = True
    b.process['consoleSize'] = {'height': 33, 'width': 111}
    b.write()
    cid = unique_id()
    ok_run(rt('create', '--bundle', b.dir, '--console-socket', path, cid), 'create with a console socket')
    ok_run(rt('start', cid))
    t.join(120 if VM else 10)
    out = got.get('out', '').replace('\r', '').split()
    eq(out, ['/dev/pts/0', '33', '111', 'c'], 'terminal output')
    b2 = Bundle(['true'])
    b2.process['terminal'] = True
    b2.write()
    fails_clean(b2, 'console-socket', verb='create', what='terminal without a console socket')


def pty_session(argv, send):
    """Run argv on a new pty; type send once a /dev/pts path shows; returns
    (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    out = b''
    deadline = time.time() + (240 if VM else 10)
    sent = False
    while time.time() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not sent and b'/dev/pts/' in out:
            os.write(fd, send)
            sent = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors='replace')


@test
def foreground_terminal_is_proxied():
    b = Bundle(['sh', '-c', 'tty; read line; echo "got $line"'])
    b.process['terminal'] = True
    b.write()
    rc, out = pty_session([RUNTIME, '--root', STATE_ROOT, 'run', '--bundle', b.dir, unique_id()], b'hello\r')
    # Seen once in VM mode under a fresh-clone run: 255, not reproduced.
    eq(rc, 0, f'exit status (the terminal showed {out[-400:]!r})')
    contains(out, 'got hello', 'input reached the container through the pty')


@test
def exec_tty_is_proxied():
    cid, _ = start_detached(Bundle(['sleep', '30']))
    rc, out = pty_session([RUNTIME, '--root', STATE_ROOT, 'exec', '-t', cid, 'sh', '-c', 'tty; read l; echo "exec $l"; exit 4'],
                          b'typed\r')
    eq(rc, 4, 'exit status of exec -t')
    contains(out, 'exec typed', 'input through the exec pty')


@test
def apparmor_and_selinux_where_the_host_has_them():
    if os.path.exists('/sys/kernel/security/apparmor') or os.path.exists('/sys/fs/selinux/enforce'):
        raise Skip('host has an LSM: covered by the conformance suites')
    # Without the LSM on the host, labels are ignored as runc does.
    b = Bundle(['true'])
    b.process['apparmorProfile'] = 'casulo-test'
    b.process['selinuxLabel'] = 'system_u:system_r:container_t:s0'
    b.write()
    ok_run(run(b))
    raise Skip('no AppArmor or SELinux on this host: labels accepted and ignored (checked)')


if __name__ == '__main__':
    sys.exit(main())
