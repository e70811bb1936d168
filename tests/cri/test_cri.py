#!/usr/bin/env python3
"""The cri suite: pods through containerd's CRI with casulo-runtime as the
`casulo` runtime handler, as a kubelet would drive them.

One private containerd (crilib.Containerd) serves every test; each test runs
its own pods and proves, through the CRI and from the host, what a pod gets:
the sandbox, containers of an imported busybox image, exit codes, ExecSync,
the CRI log format, the shared network namespace and the pod IP, the security
context, resources in cgroups, graceful stops, and that removing a pod leaves
no process, mount, cgroup, network device or runtime state behind.
"""
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'oci'))
from ocitest import RUNTIME, Skip, cgroup_mounts, contains, eq, main, processes_with, test  # noqa: E402

try:
    import grpc
    import crilib
    from crilib import pb
except ImportError as e:  # the suite's meson.build only runs us with these present
    crilib = None
    IMPORT_ERROR = str(e)

# The handler under test and its runtime binary (CASULO_RUNTIME).  The VM
# handler (issue 14) is one more run of these tests, in the lab, with
# CRI_HANDLER=casulo-vm and its binary; CASULO_RUNTIME=/usr/sbin/runc runs
# them on runc, as a reference.
HANDLER = os.environ.get('CRI_HANDLER', 'casulo')
PAUSE = os.environ.get('CASULO_PAUSE') or os.path.join(os.path.dirname(__file__), '..', '..', 'build', 'tests',
                                                       'cri', 'casulo-pause')
CGROUP_ROOT = f'/casulo-cri-test-{os.getpid()}'  # every pod's cgroup_parent is below this

# What a kubelet asks for an unprivileged container (its default ProcMount).
KUBELET_MASKED_PATHS = ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
                        '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware']
KUBELET_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']

_daemon = []


def daemon():
    if not _daemon:
        if crilib is None:
            raise Skip(f'the CRI client cannot be loaded: {IMPORT_ERROR}')
        try:
            _daemon.append(crilib.Containerd(tempfile.mkdtemp(prefix='casulo-cri-test.'), {HANDLER: RUNTIME}, PAUSE))
        except crilib.Unavailable as e:
            raise Skip(str(e))
    return _daemon[0]


# ---- pods ----

class Pod:
    """A pod of the casulo handler, with a cgroup parent of its own as a
    kubelet's cgroupfs driver would give it; containers share its network
    and IPC namespaces and (unless share_pid) have their own PID namespace,
    as a kubelet asks by default."""

    def __init__(self, name, share_pid=False, security=None, annotations=None):
        self.d = daemon()
        self.name = name
        self.pid_mode = pb.POD if share_pid else pb.CONTAINER
        sec = security or pb.LinuxSandboxSecurityContext()
        sec.namespace_options.CopyFrom(pb.NamespaceOption(network=pb.POD, pid=self.pid_mode, ipc=pb.POD))
        self.cgroup_parent = f'{CGROUP_ROOT}/{name}'
        self.config = self.d.pod_config(name, cgroup_parent=self.cgroup_parent, security=sec,
                                        annotations=annotations)
        self.id = self.d.run_pod(self.config, HANDLER)
        self.containers = []

    def info(self):
        return json.loads(self.d.pod_status(self.id, verbose=True).info['info'])

    def ip(self):
        return self.d.pod_status(self.id).status.network.ip

    def container(self, name, args, security=None, resources=None, start=True, **kw):
        sec = security or pb.LinuxContainerSecurityContext()
        sec.namespace_options.CopyFrom(pb.NamespaceOption(network=pb.POD, pid=self.pid_mode, ipc=pb.POD))
        if not sec.privileged:
            # The kubelet sends its masked and read-only paths (containerd
            # 1.6 has no default of its own).
            sec.masked_paths.extend(KUBELET_MASKED_PATHS)
            sec.readonly_paths.extend(KUBELET_READONLY_PATHS)
        cid = self.d.create_container(self.id, self.config, name, args, security=sec, resources=resources, **kw)
        self.containers.append(cid)
        if start:
            self.d.start_container(cid)
        return cid

    def run(self, name, script, wait=30, **kw):
        """A container that runs a shell script to its end, within wait
        seconds: (status, its stdout)."""
        cid = self.container(name, ['sh', '-c', script], **kw)
        st = self.d.wait_exited(cid, timeout=wait)
        return st, log_text(st.log_path, 'stdout')

    def remove(self):
        self.d.stop_pod(self.id)
        self.d.remove_pod(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.remove()
        except grpc.RpcError:
            pass
        crilib.remove_cgroup_parents(self.cgroup_parent)


LOG_LINE = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF]) (.*)$')


def log_entries(path):
    """[(stream, tag, text)] of a CRI-format log, each line checked."""
    out = []
    with open(path) as f:
        text = f.read()
    if text and not text.endswith('\n'):
        raise AssertionError(f'log {path}: the last line is not complete: {text[-100:]!r}')
    for line in text.split('\n')[:-1]:  # not splitlines(): a terminal's \r is part of a line
        m = LOG_LINE.match(line)
        if not m:
            raise AssertionError(f'log {path}: not in CRI format: {line!r}')
        out.append((m.group(4), m.group(5), m.group(6)))
    return out


def log_text(path, stream=None):
    return '\n'.join(t for s, _, t in log_entries(path) if stream in (None, s))


def exec_ok(d, cid, script):
    r = d.exec_sync(cid, ['sh', '-c', script], timeout=30)
    if r.exit_code != 0:
        raise AssertionError(f'exec {script!r}: exit {r.exit_code}: {r.stderr.decode().strip()}')
    return r.stdout.decode()


def rpc_fails(call, needle, what):
    """call() is refused by containerd with an error that names needle."""
    try:
        call()
    except grpc.RpcError as e:
        contains(e.details(), needle, what)
        return
    raise AssertionError(f'{what} succeeded')


def wait_for(what, fn, timeout=10):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f'{what}: not after {timeout}s')
        time.sleep(0.05)


# ---- the tests ----

@test
def imported_images_are_the_cris():
    d = daemon()
    for name in (crilib.BUSYBOX_IMAGE, crilib.PAUSE_IMAGE):
        image = d.images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=name)), timeout=30).image
        contains(list(image.repo_tags), name, 'ImageStatus of an image imported with ctr')
        if not image.id.startswith('sha256:') or not image.size:
            raise AssertionError(f'image {name}: id {image.id!r}, size {image.size}')
    tags = [t for i in d.images.ListImages(pb.ListImagesRequest(), timeout=30).images for t in i.repo_tags]
    eq(sorted(tags), sorted([crilib.BUSYBOX_IMAGE, crilib.PAUSE_IMAGE]), 'ListImages')
    missing = d.images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image='localhost/no/such:1')), timeout=30)
    eq(missing.HasField('image'), False, 'ImageStatus of a missing image')


@test
def pod_runs_with_the_casulo_handler():
    d = daemon()
    with Pod('handler') as pod:
        st = d.pod_status(pod.id).status
        eq(pb.PodSandboxState.Name(st.state), 'SANDBOX_READY', 'pod state')
        eq(st.runtime_handler, HANDLER, 'runtime handler in the status')
        info = pod.info()
        eq(info['runtimeOptions'].get('binary_name'), RUNTIME, 'the shim\'s runtime binary')
        # casulo-runtime itself holds the sandbox: its state has the pause process.
        root = os.path.join(d.runtime_roots[HANDLER], crilib.NAMESPACE)
        state = json.loads(crilib.sh(RUNTIME, '--root', root, 'state', pod.id).stdout)
        eq((state['status'], state['pid']), ('running', info['pid']), 'casulo-runtime state of the sandbox')

        if HANDLER == 'casulo-vm':
            # The sandbox boots the pod's VM: its pid is its monitor on the
            # host, the pause process runs in the guest.
            table = crilib.sh(RUNTIME, '--root', root, 'ps', pod.id).stdout
            contains(table, '/pause', 'the pause process in the pod\'s VM')
            eq(len(processes_with('casulo-vmm')) >= 1, True, 'the pod\'s VM')
        else:
            def cmdline():
                with open(f'/proc/{info["pid"]}/cmdline', 'rb') as f:
                    return f.read()
            # (runc's init may still be between its start and the execve.)
            wait_for(f'the sandbox running the pause image (cmdline {cmdline()!r})',
                     lambda: cmdline() == b'/pause\0')
    rpc_fails(lambda: d.run_pod(d.pod_config('nohandler'), 'no-such-handler'), 'no-such-handler',
              'RunPodSandbox with an unknown handler')


@test
def pod_annotations_reach_the_runtime():
    # The VM handler's pods size their VM with io.casulo.vm.* annotations:
    # containerd passes those its runtime entry lists, no others.
    d = daemon()
    root = os.path.join(d.runtime_roots[HANDLER], crilib.NAMESPACE)
    with Pod('annotated', annotations={'io.casulo.vm.memory': '256M', 'example.com/other': 'x'}) as pod:
        cid = pod.container('c', ['sleep', '300'])
        for what, i in (('sandbox', pod.id), ('container', cid)):
            annotations = json.loads(crilib.sh(RUNTIME, '--root', root, 'state', i).stdout)['annotations']
            eq(annotations.get('io.casulo.vm.memory'), '256M', f'the {what}\'s annotation')
            eq(annotations.get('io.kubernetes.cri.container-type'), what, f'the {what}\'s container type')
            eq('example.com/other' in annotations, False, f'an annotation the handler does not pass, in the {what}')


@test
def container_exit_codes_and_status():
    d = daemon()
    with Pod('exit') as pod:
        st, log = pod.run('fails', 'echo to-stdout; echo to-stderr >&2; exit 7')
        eq((st.exit_code, st.reason), (7, 'Error'), 'exit code and reason')
        # (started_at is containerd's clock once the start returned, finished_at
        # the exit's: a process this quick may end before the first is taken.)
        if not (0 < st.created_at <= st.started_at and st.created_at <= st.finished_at):
            raise AssertionError(f'timestamps out of order: {st.created_at} {st.started_at} {st.finished_at}')
        eq(st.image.image, crilib.BUSYBOX_IMAGE, 'image in the status')
        contains(log, 'to-stdout', 'log')
        st, _ = pod.run('succeeds', 'exit 0')
        eq((st.exit_code, st.reason), (0, 'Completed'), 'exit 0')
        cid = pod.container('killed', ['sleep', '300'])
        os.kill(json.loads(d.container_status(cid, verbose=True).info['info'])['pid'], signal.SIGKILL)
        eq(d.wait_exited(cid).exit_code, 128 + signal.SIGKILL, 'killed by SIGKILL')
        rpc_fails(lambda: pod.container('missing', ['no-such-command']), 'executable file not found',
                  'StartContainer of a missing executable (containerd reads runc\'s wording)')


@test
def log_file_in_cri_format():
    d = daemon()
    with Pod('logs') as pod:
        long_line = 'x' * 20000  # longer than containerd's 16 KiB line limit: split, tagged P then F
        st, _ = pod.run('talks', f'echo out-1; echo err-1 >&2; echo out-2; echo {long_line}')
        entries = log_entries(st.log_path)
        eq(os.path.dirname(st.log_path), pod.config.log_directory, 'log under the pod\'s log directory')
        # stdout and stderr are separate pipes: the order within each holds.
        eq([e for e in entries if e[0] == 'stdout'][:2], [('stdout', 'F', 'out-1'), ('stdout', 'F', 'out-2')],
           'stdout lines')
        eq([e for e in entries if e[0] == 'stderr'], [('stderr', 'F', 'err-1')], 'stderr lines')
        parts = [e for e in entries if e[2].startswith('xxx')]
        eq([t for _, t, _ in parts][-1], 'F', 'the long line ends with a full tag')
        eq({t for _, t, _ in parts[:-1]}, {'P'}, 'the long line\'s first parts are partial')
        eq(''.join(p[2] for p in parts), long_line, 'the long line rejoined')


@test
def terminal_container():
    # tty: the shim passes a console socket; the log holds what the pty says.
    with Pod('tty') as pod:
        st, out = pod.run('tty', 'tty', tty=True)
        eq(st.exit_code, 0, 'exit code')
        eq(out, '/dev/pts/0', 'a terminal (containerd drops the \\r of its \\r\\n)')


@test
def exec_sync_output_exit_code_and_timeout():
    d = daemon()
    with Pod('exec') as pod:
        cid = pod.container('sleeper', ['sleep', '300'])
        r = d.exec_sync(cid, ['sh', '-c', 'echo out; echo err >&2; exit 3'])
        eq((r.stdout, r.stderr, r.exit_code), (b'out\n', b'err\n', 3), 'ExecSync result')
        eq(exec_ok(d, cid, 'cat /proc/1/cmdline'), 'sleep\x00300\x00', 'exec runs in the container')
        # containerd 1.6 reports the runtime's failure as an error, not an exit code.
        rpc_fails(lambda: d.exec_sync(cid, ['no-such-command']), 'executable file not found',
                  'ExecSync of a missing command')
        start = time.time()
        rpc_fails(lambda: d.exec_sync(cid, ['sh', '-c', 'echo begun; sleep 120'], timeout=1), 'timeout 1s exceeded',
                  'ExecSync past its timeout')
        took = time.time() - start
        if not 1 <= took < 15:
            raise AssertionError(f'ExecSync with a 1 s timeout took {took:.1f}s')
        # The timed-out process is killed, not left running in the container.
        wait_for('the timed-out exec killed', lambda: 'sleep 120' not in exec_ok(d, cid, 'ps -o args'))


@test
def containers_of_a_pod_share_its_network():
    d = daemon()
    with Pod('net') as pod:
        server = pod.container('server', ['nc', '-ll', '-p', '8080', '-e', 'echo', 'hello-from-the-pod'])
        client = pod.container('client', ['sleep', '300'])
        ns = {exec_ok(d, c, 'readlink /proc/self/ns/net') for c in (server, client)}
        eq(len(ns), 1, 'one network namespace for both containers')
        if ns == {os.readlink('/proc/self/ns/net') + '\n'}:
            raise AssertionError('the pod shares the host\'s network namespace')
        out = wait_for('localhost between containers',
                       lambda: d.exec_sync(client, ['nc', '127.0.0.1', '8080'], timeout=10).stdout.decode())
        eq(out, 'hello-from-the-pod\n', 'reply over localhost')
        ip = pod.ip()
        contains(exec_ok(d, client, 'ip -4 -o addr show eth0'), f'inet {ip}/', 'the pod IP on eth0')

        def from_host():
            try:
                with socket.create_connection((ip, 8080), timeout=5) as s:
                    return s.recv(100)
            except OSError:
                return None
        eq(wait_for('the pod IP from the host', from_host), b'hello-from-the-pod\n', 'reply to the host')


@test
def run_as_user_and_read_only_rootfs():
    d = daemon()
    with Pod('user') as pod:
        sec = pb.LinuxContainerSecurityContext(run_as_user=pb.Int64Value(value=1000),
                                               run_as_group=pb.Int64Value(value=1000), readonly_rootfs=True)
        st, log = pod.run('user', 'id -u; id -g; touch /new-file || echo write-refused; '
                          # the mount at / (in a VM a subdirectory of the shared
                          # filesystem: its root field is not /)
                          'awk \'$5 == "/"\' /proc/self/mountinfo | tail -n 1', security=sec)
        eq(st.exit_code, 0, f'exit code; log: {log}')
        lines = log.splitlines()
        eq(lines[:3], ['1000', '1000', 'write-refused'], 'uid, gid, write to the root')
        contains(lines[3], ' ro,', 'the root mount is read-only')
        st, log = pod.run('root', 'id -u; touch /new-file && echo written')
        eq(log.splitlines(), ['0', 'written'], 'the default: root and a writable root filesystem')


def cap_set(log, which='CapEff'):
    for line in log.splitlines():
        if line.startswith(which + ':'):
            return int(line.split()[1], 16)
    raise AssertionError(f'{which} not in {log!r}')


CAP_CHOWN, CAP_NET_ADMIN, CAP_SYS_TIME, CAP_NET_RAW = 0, 12, 25, 13


@test
def capabilities_dropped_and_added():
    d = daemon()
    with Pod('caps') as pod:
        _, log = pod.run('default', 'grep ^Cap /proc/self/status')
        default = cap_set(log)
        eq(default & (1 << CAP_CHOWN | 1 << CAP_NET_RAW), 1 << CAP_CHOWN | 1 << CAP_NET_RAW, 'containerd\'s defaults')
        eq(default & (1 << CAP_NET_ADMIN), 0, 'NET_ADMIN is not a default')
        sec = pb.LinuxContainerSecurityContext(capabilities=pb.Capability(
            add_capabilities=['NET_ADMIN', 'SYS_TIME'], drop_capabilities=['CHOWN']))
        st, log = pod.run('changed', 'grep ^Cap /proc/self/status; touch /f; chown 1 /f || echo chown-refused; '
                          'ip link set lo mtu 1400 && echo net-admin-ok', security=sec)
        eff = cap_set(log)
        eq(eff, (default | 1 << CAP_NET_ADMIN | 1 << CAP_SYS_TIME) & ~(1 << CAP_CHOWN), 'CapEff')
        eq(cap_set(log, 'CapBnd'), eff, 'CapBnd')
        contains(log, 'chown-refused', 'chown without CAP_CHOWN')
        contains(log, 'net-admin-ok', 'NET_ADMIN works')
        sec = pb.LinuxContainerSecurityContext(capabilities=pb.Capability(drop_capabilities=['ALL']))
        _, log = pod.run('none', 'grep ^Cap /proc/self/status', security=sec)
        eq((cap_set(log), cap_set(log, 'CapBnd')), (0, 0), 'drop ALL')


@test
def unprivileged_containers_have_masked_and_read_only_paths():
    d = daemon()
    with Pod('masks') as pod:
        # (/proc/kcore is not in every kernel: /proc/keys and /proc/timer_list are.)
        script = ('cat /proc/keys /proc/timer_list | wc -c; ls /sys/firmware | wc -l; '
                  'echo 1 > /proc/sys/kernel/ns_last_pid '
                  '|| echo sysctl-refused; echo x > /proc/sysrq-trigger || echo sysrq-refused; '
                  'mkdir /sys/fs/x || echo sys-refused; ls /dev')
        st, log = pod.run('unprivileged', script)
        lines = log.splitlines()
        eq(lines[:2], ['0', '0'], '/proc/keys, /proc/timer_list and /sys/firmware masked')
        for what in ('sysctl-refused', 'sysrq-refused', 'sys-refused'):
            contains(lines, what, 'read-only paths')
        devices = set(lines[5:])
        if not devices <= {'core', 'fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin',
                           'stdout', 'termination-log', 'tty', 'urandom', 'zero'}:
            raise AssertionError(f'host devices in an unprivileged container: {sorted(devices)}')


def cgroup_file(d, cid, controller, name):
    """A container's cgroup file as the host sees it."""
    spec = json.loads(d.container_status(cid, verbose=True).info['info'])['runtimeSpec']
    path = spec['linux']['cgroupsPath']
    mounts = cgroup_mounts()
    for ctrls, mnt in mounts:
        if controller in ctrls.split(','):
            with open(f'{mnt}{path}/{name}') as f:
                return f.read().strip()
    for ctrls, mnt in mounts:
        if ctrls == '' and name in V2_FILES:
            # v2: the file that holds the same value, and its field
            v2_name, field = V2_FILES[name]
            with open(f'{mnt}{path}/{v2_name}') as f:
                return f.read().split()[field]
    raise Skip(f'no {controller} cgroup on this host')


# v1's cgroup files as v2 holds them: (file, field).
V2_FILES = {'memory.limit_in_bytes': ('memory.max', 0), 'cpu.cfs_quota_us': ('cpu.max', 0)}


# What the container reads from its own cgroup, in v1's terms: CFS quota
# and period, shares, memory limit.  Under cgroup v2 (a v2 host, or the
# guest of a VM container) cpu.max, memory.max and cpu.weight, the weight
# given back as the shares runc's conversion makes of it.
LIMITS_SCRIPT = ('if [ -e /sys/fs/cgroup/cgroup.controllers ]; then echo v2; '
                 'cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/memory.max; '
                 'else echo v1; cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us '
                 '/sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/memory/memory.limit_in_bytes; fi')


def shares_to_weight(shares):
    return 1 + ((shares - 2) * 9999) // 262142


def limits_inside(d, cid, shares):
    """[quota, period, shares, memory limit] as the container reads them;
    under v2 the shares entry is the given shares when cpu.weight is
    their weight, else 'weight N'."""
    layout, *values = exec_ok(d, cid, LIMITS_SCRIPT).split()
    if layout == 'v1':
        return values
    quota, period, weight, memory = values
    return [quota, period, str(shares) if int(weight) == shares_to_weight(shares) else 'weight ' + weight, memory]


# VM mode (docs/vm-containers.md): the guest's RAM is the limit plus
# 64 MiB for its kernel and agent, rounded to 2 MiB; the host's cgroup
# holds the VMM too, 64 MiB more.
VM_GUEST_OVERHEAD = 64 << 20
VM_VMM_OVERHEAD = 64 << 20


def host_memory_limit(limit):
    if HANDLER != 'casulo-vm':
        return limit
    guest = (limit + VM_GUEST_OVERHEAD + (2 << 20) - 1) & ~((2 << 20) - 1)
    return guest + VM_VMM_OVERHEAD


@test
def cpu_and_memory_limits_in_the_cgroups():
    d = daemon()
    with Pod('limits') as pod:
        res = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000, cpu_shares=512,
                                         memory_limit_in_bytes=64 << 20)
        cid = pod.container('limited', ['sleep', '300'], resources=res)
        eq(limits_inside(d, cid, 512), ['50000', '100000', '512', str(64 << 20)], 'limits seen inside the container')
        eq(cgroup_file(d, cid, 'memory', 'memory.limit_in_bytes'), str(host_memory_limit(64 << 20)),
           'memory limit from the host')
        eq(cgroup_file(d, cid, 'cpu', 'cpu.cfs_quota_us'), '50000', 'cpu quota from the host')
        # UpdateContainerResources goes through `casulo-runtime update`.
        d.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
            container_id=cid, linux=pb.LinuxContainerResources(cpu_period=100000, cpu_quota=25000, cpu_shares=256,
                                                               memory_limit_in_bytes=32 << 20)), timeout=30)
        eq(limits_inside(d, cid, 256), ['25000', '100000', '256', str(32 << 20)], 'limits after UpdateContainerResources')
        # The kubelet's view: stats from the same cgroups.
        exec_ok(d, cid, 'dd if=/dev/zero of=/dev/null bs=1M count=200')
        stats = d.runtime.ContainerStats(pb.ContainerStatsRequest(container_id=cid), timeout=30).stats
        eq(stats.attributes.id, cid, 'stats attributes')
        if not stats.cpu.usage_core_nano_seconds.value or not stats.memory.usage_bytes.value:
            raise AssertionError(f'no cpu or memory usage in the stats: {stats}')
        # A VM's RAM is fixed when it is created: an update changes the
        # limit in the guest, and the host cgroup's stays.
        host_limit = host_memory_limit(64 << 20) if HANDLER == 'casulo-vm' else 32 << 20
        eq(stats.memory.available_bytes.value + stats.memory.working_set_bytes.value, host_limit,
           'available + working set = the memory limit (the host cgroup\'s)')
        # The limit holds: a process that outgrows it is killed.
        st, log = pod.run('oom', 'dd if=/dev/zero of=/dev/null bs=48M count=1 && echo survived',
                          resources=pb.LinuxContainerResources(memory_limit_in_bytes=32 << 20))
        eq((st.exit_code, st.reason), (137, 'OOMKilled'), f'memory limit enforced; log: {log!r}')


@test
def stop_container_honours_the_grace_period():
    d = daemon()
    with Pod('stop') as pod:
        # A shell that traps SIGTERM ends at once with the trap's status.
        cid = pod.container('polite', ['sh', '-c', 'trap "echo got-term; exit 0" TERM; while :; do sleep 0.1; done'])
        time.sleep(0.3)
        start = time.time()
        d.stop_container(cid, timeout=10)
        took = time.time() - start
        st = d.container_status(cid).status
        eq(st.exit_code, 0, 'exit code after SIGTERM')
        contains(log_text(st.log_path), 'got-term', 'the container saw SIGTERM')
        if took > 5:
            raise AssertionError(f'StopContainer of a container that exits on SIGTERM took {took:.1f}s')
        # PID 1 without a handler ignores SIGTERM: SIGKILL after the grace period.
        cid = pod.container('deaf', ['sh', '-c', 'while :; do sleep 0.1; done'])
        time.sleep(0.3)
        start = time.time()
        d.stop_container(cid, timeout=2)
        took = time.time() - start
        eq(d.container_status(cid).status.exit_code, 137, 'exit code after SIGKILL')
        if not 2 <= took < 8:
            raise AssertionError(f'StopContainer with a 2 s grace period took {took:.1f}s')


@test
def shared_pid_namespace_and_orphans():
    d = daemon()
    with Pod('sharedpid', share_pid=True) as pod:
        cid = pod.container('main', ['sleep', '300'])
        ps = exec_ok(d, cid, 'ps -o pid,args')
        contains(ps, '/pause', 'the pause process is visible')
        # A container whose init exits leaves a background child: the shim's
        # `kill --all` of the stopped container must kill it.
        st, _ = pod.run('leaver', 'sleep 301 & echo started')
        eq(st.exit_code, 0, 'exit code of the leaving container')
        wait_for('the orphan killed', lambda: 'sleep 301' not in exec_ok(d, cid, 'ps -o args'))
        eq(d.log_errors(st.id), [], 'containerd\'s errors about the leaving container')


def start_time(pid):
    """A process's start time (so that a reused pid is not taken for it), or None."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[19]
    except OSError:
        return None


def bridge_ports(bridge):
    """The host devices plugged into the pod network's bridge (other
    tests on this host make links of their own: only these are ours)."""
    return set(os.listdir(f'/sys/class/net/{bridge}/brif'))


@test
def removed_pod_leaves_nothing_behind():
    d = daemon()
    pod = Pod('cleanup')
    try:
        cids = [pod.container('a', ['sleep', '300']), pod.container('b', ['sh', '-c', 'sleep 300 & sleep 301'])]
        info = pod.info()
        netns = next(n['path'] for n in info['runtimeSpec']['linux']['namespaces'] if n['type'] == 'network')
        host_veths = [i for i, v in info['cniResult']['Interfaces'].items() if not v.get('Sandbox')
                      and i != d.bridge]
        eq(len(host_veths), 1, f'one host-side veth in the CNI result {info["cniResult"]["Interfaces"]}')
        eq(bridge_ports(d.bridge), set(host_veths), 'the bridge\'s ports while the pod runs')
        pids = [info['pid']] + [json.loads(d.container_status(c, verbose=True).info['info'])['pid'] for c in cids]
        started = {p: start_time(p) for p in pids}
        ids = [pod.id] + cids
        cgroups = [mnt + pod.cgroup_parent + '/' + i for _, mnt in cgroup_mounts() for i in ids]
        for p in cgroups:
            if not os.path.isdir(p):
                raise AssertionError(f'cgroup {p} missing while the pod runs')
        pod.remove()
    finally:
        crilib.remove_cgroup_parents(pod.cgroup_parent)
    for p in pids:
        if start_time(p) == started[p]:
            raise AssertionError(f'process {p} of the pod left behind')
    for i in ids:
        left = processes_with(i)
        if left:
            raise AssertionError(f'processes {left} of {i[:12]} left behind')
    with open('/proc/self/mountinfo') as f:
        left = [line.split()[4] for line in f if any(i in line for i in ids) or netns in line]
    if left:
        raise AssertionError(f'mounts left behind: {left}')
    if os.path.exists(netns):
        raise AssertionError(f'network namespace {netns} left behind')
    for p in cgroups:
        if os.path.exists(p):
            raise AssertionError(f'cgroup {p} left behind')
    eq(bridge_ports(d.bridge), set(), 'devices left on the pod network\'s bridge')
    left = [v for v in host_veths if crilib.link_exists(v)]
    eq(left, [], 'host-side veths left behind')
    root = os.path.join(d.runtime_roots[HANDLER], crilib.NAMESPACE)
    left = [i for i in ids if os.path.exists(os.path.join(root, i))]
    eq(left, [], 'casulo-runtime state left behind')


def vm_test(fn):
    """A test of the VM handler only: registered when CRI_HANDLER is
    casulo-vm (the cri-vm meson test, in the lab)."""
    return test(fn) if HANDLER == 'casulo-vm' else fn


@vm_test
def vm_handler_runs_each_pod_in_a_guest():
    # Through the CRI as a kubelet would: the pause sandbox boots the pod's
    # guest, its application containers run in it, with runc's statuses,
    # the CRI log, ExecSync inside the guest, two containers in one guest
    # (one VMM, localhost between them), and no VMM left once the pods are
    # removed; a terminal container too (its create once kept the shim's
    # output pipe open: StartContainer never came).
    d = daemon()
    host = os.uname().release
    with Pod('vm-exit') as pod:
        st, out = pod.run('c', 'echo in-the-vm; uname -r; exit 3', wait=240)
        eq(st.exit_code, 3, 'the exit code through the CRI')
        lines = out.splitlines()
        eq(lines[:1], ['in-the-vm'], 'the CRI log of the container')
        if len(lines) < 2 or lines[1] == host:
            raise AssertionError(f'the container ran on the host kernel {host}: {lines!r}')
    with Pod('vm-tty') as pod:
        st, out = pod.run('tty', 'tty; uname -r', tty=True, wait=240)
        eq(st.exit_code, 0, 'the terminal container\'s exit code')
        eq(out.splitlines(), ['/dev/pts/0', lines[1]], 'a terminal in the guest (the CRI log)')
    with Pod('vm-exec') as pod:
        cid = pod.container('c', ['sleep', '300'])
        wait_for('the container running', lambda: pb.ContainerState.Name(d.container_status(cid).status.state)
                 == 'CONTAINER_RUNNING', timeout=240)
        r = d.exec_sync(cid, ['sh', '-c', 'uname -r; echo err >&2; exit 4'], timeout=120)
        eq((r.exit_code, r.stderr.decode().strip()), (4, 'err'), 'ExecSync status and stderr')
        eq(r.stdout.decode().strip(), lines[1], 'ExecSync runs in the guest kernel')
        eq(len(processes_with('casulo-vmm')) >= 1, True, 'a VMM for the container')
    with Pod('vm-pod') as pod:
        a = pod.container('a', ['nc', '-ll', '-p', '7070', '-e', 'echo', 'from-a'])
        b = pod.container('b', ['sleep', '300'])
        for cid in (a, b):
            wait_for('the container running', lambda: pb.ContainerState.Name(d.container_status(cid).status.state)
                     == 'CONTAINER_RUNNING', timeout=240)

        def boot_id(cid):
            return d.exec_sync(cid, ['cat', '/proc/sys/kernel/random/boot_id'], timeout=120).stdout.decode().strip()
        eq(boot_id(a), boot_id(b), 'two containers of the pod in one guest')
        eq(len([p for p in processes_with('casulo-vmm') if p != os.getpid()]), 1, 'one VMM for the pod')
        wait_for('localhost between the containers',
                 lambda: b'from-a' in d.exec_sync(b, ['nc', '127.0.0.1', '7070'], timeout=60).stdout, timeout=60)
    left = [p for p in processes_with('casulo-vmm') if p != os.getpid()]
    eq(left, [], 'VMMs left after the pods were removed')


def close_daemon():
    if _daemon:
        _daemon[0].close()
        shutil.rmtree(_daemon[0].dir, ignore_errors=True)


if __name__ == '__main__':
    try:
        rc = main()
    finally:
        close_daemon()
    sys.exit(rc)
