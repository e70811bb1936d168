#!/usr/bin/env python3
"""Containers in their own VM (docs/vm-containers.md), in the lab.

The root suite's lifecycle, exit-status, signal, exec and terminal tests
run again with casulo-runtime started as casulo-runtime-vm (every
container in a VM of its own), beside tests of what only a VM has: the
selection, the VM's size, the shared rootfs and bind mounts, a guest that
panics, VMMs and monitors killed with SIGKILL, pause, the network
namespace's interface plugged into the VM.

usage: test_vm.py RUNTIME_VM   (tests/lab/run --tap -- python3 test_vm.py build/casulo-runtime-vm)
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
if len(sys.argv) > 1:
    os.environ['CASULO_RUNTIME'] = sys.argv[1]
sys.path.insert(0, HERE)

import ocitest  # noqa: E402
from ocitest import (RUNTIME, STATE_ROOT, WORK, Bundle, Clean, Skip, contains, eq, fails, ok_run, rt,  # noqa: E402
                     run, state, test, unique_id, wait_status)

PLAIN = os.path.join(os.path.dirname(RUNTIME), 'casulo-runtime')
GUEST = os.environ.get('CASULO_GUEST_DIR') or os.path.join(os.path.dirname(RUNTIME), 'guest')

# The root suite's tests that run again in VM mode.
import test_lifecycle  # noqa: E402,F401
import test_security  # noqa: E402,F401
import test_clients  # noqa: E402,F401  (its Containerd; its own tests stay out)

AGAIN = {
    # lifecycle, exit statuses, signals, exec
    'run_exit_status_is_the_containers', 'run_output_and_environment', 'create_start_state_delete',
    'delete_created_container_without_force', 'delete_force_running_and_missing', 'list_formats',
    'ps_lists_the_containers_processes', 'pause_and_resume_freeze_the_processes', 'kill_signals_and_all',
    'kill_all_reaches_what_a_stopped_init_left', 'exec_runs_in_the_container', 'exec_capabilities_and_no_new_privs',
    'foreground_run_forwards_signals', 'signal_dispositions_start_as_defaults', 'run_keep_leaves_a_stopped_container',
    'preserve_fds_passes_descriptors',
    # terminals
    'console_socket_receives_the_pty', 'foreground_terminal_is_proxied', 'exec_tty_is_proxied',
}
ocitest._tests[:] = [t for t in ocitest._tests if t.__name__ in AGAIN]


def guest_kernel(out):
    """The default guest runs Debian's cloud kernel; the lab's host does not."""
    return 'cloud' in out


def vmm_pid(cid):
    with open(os.path.join(STATE_ROOT, cid, 'vm.json')) as f:
        return json.load(f).get('vmm_pid', 0)


def alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


def run_detached(b, cid):
    ok_run(rt('run', '-d', '--bundle', b.dir, cid), 'run -d')
    return wait_status(cid, 'running')


@test
def vm_mode_by_annotation_name_and_flag():
    b = Bundle(['uname', '-r'])
    # The plain runtime: a plain container, unless the annotation asks.
    p = subprocess.run([PLAIN, '--root', STATE_ROOT, 'run', '--bundle', b.dir, unique_id()], capture_output=True,
                       text=True, timeout=300)
    host = ok_run(p).strip()
    if guest_kernel(host):
        raise Skip(f'this host runs a cloud kernel ({host}): the guest cannot be told apart')
    b.config['annotations'] = {'io.casulo.vm': 'on'}
    b.write()
    p = subprocess.run([PLAIN, '--root', STATE_ROOT, 'run', '--bundle', b.dir, unique_id()], capture_output=True,
                       text=True, timeout=300)
    contains(ok_run(p), 'cloud', 'io.casulo.vm=on with the plain runtime')
    # casulo-runtime-vm, or --vm: a VM, unless the annotation says off.
    b.config['annotations'] = {}
    b.write()
    contains(ok_run(run(b)), 'cloud', 'casulo-runtime-vm')
    p = subprocess.run([PLAIN, '--vm', '--root', STATE_ROOT, 'run', '--bundle', b.dir, unique_id()],
                       capture_output=True, text=True, timeout=300)
    contains(ok_run(p), 'cloud', '--vm')
    b.config['annotations'] = {'io.casulo.vm': 'off'}
    b.write()
    eq(ok_run(run(b)).strip(), host, 'io.casulo.vm=off under casulo-runtime-vm')
    b.config['annotations'] = {'io.casulo.vm': 'maybe'}
    b.write()
    fails(run(b), 'io.casulo.vm', 'maybe', what='a bad annotation')


@test
def vm_size_from_annotations_and_resources():
    script = 'nproc; grep MemTotal /proc/meminfo'
    b = Bundle(['sh', '-c', script])
    b.config['annotations'] = {'io.casulo.vm.cpus': '2', 'io.casulo.vm.memory': '320M'}
    b.write()
    out = ok_run(run(b)).split()
    eq(out[0], '2', 'vCPUs from io.casulo.vm.cpus')
    mem_kb = int(out[2])
    if not 200 * 1024 < mem_kb <= 320 * 1024:
        raise AssertionError(f'MemTotal {mem_kb} kB for a 320M VM')
    # From linux.resources: a quota of 1.5 CPUs is 2 vCPUs; a 128 MiB limit
    # is a VM of 128 + 64 MiB.
    b.config['annotations'] = {}
    b.linux['resources'].update({'cpu': {'quota': 150000, 'period': 100000}, 'memory': {'limit': 128 << 20}})
    b.write()
    out = ok_run(run(b)).split()
    eq(out[0], '2', 'vCPUs from the CPU quota')
    mem_kb = int(out[2])
    if not 120 * 1024 < mem_kb <= 192 * 1024:
        raise AssertionError(f'MemTotal {mem_kb} kB for a 128M limit')
    b.config['annotations'] = {'io.casulo.vm.memory': '1k'}
    b.write()
    fails(run(b), 'io.casulo.vm.memory', what='a VM too small')


@test
def rootfs_and_bind_mounts_are_shared_not_copied():
    b = Bundle(['sh', '-c', 'echo from-guest > /written; echo out > /data/out; cat /data/in; cat /etc/extra; '
                            'echo x > /ro/x 2>&1 || echo ro-refused; cat /ro/keep'], own_rootfs=True)
    b.config['root']['readonly'] = False
    data = os.path.join(WORK, unique_id('data'))
    ro = os.path.join(WORK, unique_id('ro'))
    os.makedirs(data)
    os.makedirs(ro)
    with open(os.path.join(data, 'in'), 'w') as f:
        f.write('host-data\n')
    with open(os.path.join(ro, 'keep'), 'w') as f:
        f.write('kept\n')
    extra = os.path.join(WORK, unique_id('extra'))
    with open(extra, 'w') as f:
        f.write('a-file-bind\n')
    b.config['mounts'] += [
        {'destination': '/data', 'type': 'bind', 'source': data, 'options': ['rbind', 'rw']},
        {'destination': '/ro', 'type': 'bind', 'source': ro, 'options': ['bind', 'ro']},
        {'destination': '/etc/extra', 'type': 'bind', 'source': extra, 'options': ['bind', 'ro']},
    ]
    b.write()
    cid = unique_id()
    clean = Clean(cid)
    out = ok_run(run(b, cid))
    eq(out.split(), ['host-data', 'a-file-bind', 'ro-refused', 'kept'], 'output')
    # What the container wrote is on the host, in place.
    eq(open(os.path.join(b.dir, 'rootfs', 'written')).read(), 'from-guest\n', 'rootfs write')
    eq(open(os.path.join(data, 'out')).read(), 'out\n', 'bind mount write')
    eq(sorted(os.listdir(ro)), ['keep'], 'read-only bind untouched')
    clean.check()
    # A device node cannot be shared: a clear error, nothing made.
    b.config['mounts'].append({'destination': '/dev/sda', 'type': 'bind', 'source': '/dev/null', 'options': ['bind']})
    b.write()
    cid = unique_id()
    clean = Clean(cid)
    fails(run(b, cid), 'device node', what='a bind mount of a device')
    clean.check()


@test
def exit_statuses_are_runcs():
    b = Bundle(['sh', '-c', 'exit 0'])
    eq(run(b).returncode, 0, 'exit 0')
    b.set_args('sh', '-c', 'exit 42')
    eq(run(b).returncode, 42, 'exit 42')
    b.set_args('no-such-program')
    p = run(b)
    eq(p.returncode, 1, 'a missing program: create fails')
    contains(p.stderr, 'executable file not found', 'runc\'s words (podman maps them to 127)')
    b.set_args('/etc/passwd')
    p = run(b)
    eq(p.returncode, 1, 'a program that is not executable')
    contains(p.stderr.lower(), 'permission denied', 'runc\'s words (podman maps them to 126)')
    b.set_args('sh', '-c', 'kill -TERM $$')
    b.namespaces('network', 'ipc', 'uts', 'mount')
    eq(run(b).returncode, 128 + 15, 'killed by SIGTERM')


@test
def a_guest_that_panics_ends_the_container():
    b = Bundle(['sh', '-c', 'echo before; echo c > /proc/sysrq-trigger; sleep 300'])
    b.linux['readonlyPaths'] = [p for p in b.linux['readonlyPaths'] if p != '/proc/sysrq-trigger']
    b.write()
    cid = unique_id()
    clean = Clean(cid)
    start = time.time()
    p = run(b, cid, timeout=240)
    eq(p.returncode, 255, f'exit status of a panicked guest (stderr {p.stderr.strip()!r})')
    contains(p.stdout, 'before', 'output before the panic')
    contains(p.stderr, 'panicked', 'the error says what happened')
    if time.time() - start > 200:
        raise AssertionError('the panic took too long to end the container')
    clean.check()


@test
def sigkill_of_the_vmm_or_the_monitor_leaves_nothing_after_delete():
    b = Bundle(['sleep', '300'])
    cid = unique_id()
    clean = Clean(cid)
    run_detached(b, cid)
    vmm = vmm_pid(cid)
    os.kill(vmm, signal.SIGKILL)
    wait_status(cid, 'stopped')
    ok_run(rt('delete', cid), 'delete after the VMM was killed')
    clean.check()
    cid = unique_id()
    clean = Clean(cid)
    st = run_detached(b, cid)
    vmm = vmm_pid(cid)
    os.kill(st['pid'], signal.SIGKILL)
    wait_status(cid, 'stopped')
    for _ in range(100):
        if not alive(vmm):
            break
        time.sleep(0.1)
    if alive(vmm):
        raise AssertionError('the VMM outlived its monitor')
    ok_run(rt('delete', cid), 'delete after the monitor was killed')
    clean.check()


@test
def sigkill_of_a_create_leaves_nothing_after_delete():
    b = Bundle(['sleep', '300'])
    for delay in (0.3, 2.0):
        cid = unique_id()
        clean = Clean(cid)
        p = subprocess.Popen([RUNTIME, '--root', STATE_ROOT, 'create', '--bundle', b.dir, cid],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        ocitest.reap()
        if state(cid) is not None:
            eq(state(cid)['status'], 'stopped', 'a killed create')
            ok_run(rt('delete', cid), 'delete of a killed create')
        clean.check()


@test
def pause_freezes_the_vm():
    b = Bundle(['sh', '-c', 'while true; do date +%s > /dev/shm/t; sleep 0.2; done'])
    cid = unique_id()
    run_detached(b, cid)
    vmm = vmm_pid(cid)
    ok_run(rt('pause', cid), 'pause')
    eq(state(cid)['status'], 'paused', 'status')
    dirs = ocitest.container_cgroup_dirs(cid)
    frozen = False
    for d in dirs:
        try:
            procs = open(os.path.join(d, 'cgroup.procs')).read().split()
        except OSError:
            continue
        if str(vmm) in procs:
            frozen = True
    if not frozen:
        raise AssertionError(f'the VMM {vmm} is not in the container\'s cgroups {dirs}')
    fails(rt('exec', cid, 'true'), 'paused', what='exec into a paused VM')
    ok_run(rt('resume', cid), 'resume')
    eq(state(cid)['status'], 'running', 'status after resume')
    ok_run(rt('exec', cid, 'cat', '/dev/shm/t'), 'exec after resume')
    ok_run(rt('delete', '-f', cid))


def ip(*args, check=True):
    p = subprocess.run(['ip'] + list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f'ip {" ".join(args)}: {p.stderr.strip()}')
    return p.stdout


@test
def the_network_namespaces_interface_reaches_the_vm():
    if not shutil.which('ip'):
        raise Skip('no ip (iproute2)')
    ns = f'casulo-vmt{os.getpid()}'
    host_if = f'cvh{os.getpid() % 100000}'
    ip('netns', 'add', ns)
    try:
        ip('link', 'add', host_if, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
        ip('addr', 'add', '10.77.0.1/24', 'dev', host_if)
        ip('link', 'set', host_if, 'up')
        ip('-n', ns, 'addr', 'add', '10.77.0.2/24', 'dev', 'eth0')
        ip('-n', ns, 'link', 'set', 'eth0', 'up')
        ip('-n', ns, 'link', 'set', 'lo', 'up')
        ip('-n', ns, 'route', 'add', 'default', 'via', '10.77.0.1')
        b = Bundle(['sh', '-c', 'ip addr show eth0; ip route; ping -c 1 -W 5 10.77.0.1 && echo ping-ok; sleep 300'])
        b.linux['namespaces'] = [n for n in b.linux['namespaces'] if n['type'] != 'network']
        b.linux['namespaces'].append({'type': 'network', 'path': f'/var/run/netns/{ns}'})
        for caps in b.config['process']['capabilities'].values():
            caps.append('CAP_NET_RAW')  # busybox's ping
        b.write()
        cid = unique_id()
        clean = Clean(cid)
        out_path = os.path.join(WORK, cid + '.out')
        with open(out_path, 'w') as out:
            p = subprocess.Popen([RUNTIME, '--root', STATE_ROOT, 'run', '--bundle', b.dir, cid], stdout=out,
                                 stderr=subprocess.STDOUT)
            for _ in range(600):
                if 'ping-ok' in open(out_path).read() or p.poll() is not None:
                    break
                time.sleep(0.2)
            text = open(out_path).read()
            contains(text, '10.77.0.2/24', 'the guest has the namespace\'s address')
            contains(text, 'default via 10.77.0.1', 'and its route')
            if 'ping-ok' not in text:
                raise AssertionError(f'the guest does not reach the host: {text!r}; '
                                     f'{net_diagnosis(f"/var/run/netns/{ns}")}')
            # The host reaches the guest at the address the veth had.
            r = subprocess.run(['ping', '-c', '1', '-W', '5', '10.77.0.2'], capture_output=True, text=True)
            eq(r.returncode, 0, f'ping from the host: {r.stdout.strip()[-200:]}')
            ok_run(rt('kill', cid, 'KILL'))
            p.wait(120)
        clean.check()
        # The namespace is as it was: no redirection left on its interface.
        qdiscs = subprocess.run(['tc', '-n', ns, 'qdisc', 'show', 'dev', 'eth0'], capture_output=True, text=True)
        if qdiscs.returncode != 0 or 'ingress' in qdiscs.stdout:
            raise AssertionError(f'the ingress qdisc is left on eth0: {qdiscs.stdout} {qdiscs.stderr}')
    finally:
        ip('netns', 'del', ns, check=False)
        ip('link', 'del', host_if, check=False)


def pod_bundle(args, kind, sandbox=None, netns=None, share_pid=False):
    """A bundle as containerd's CRI writes it for a pod: the sandbox, or an
    application container naming its sandbox and joining its namespaces
    by path (the host's paths: the runtime makes them the pod's in its VM)."""
    b = Bundle(args)
    b.config['annotations'] = {'io.kubernetes.cri.container-type': kind}
    if sandbox:
        b.config['annotations']['io.kubernetes.cri.sandbox-id'] = sandbox
    nss = [n for n in b.linux['namespaces'] if n['type'] not in ('network', 'pid')]
    nss.append({'type': 'network', 'path': netns})
    if sandbox:
        for t in ('ipc', 'uts') + (('pid',) if share_pid else ()):
            nss = [n for n in nss if n['type'] != t]
            nss.append({'type': t, 'path': f'/proc/1/ns/{t}'})
    if not (sandbox and share_pid):
        nss.append({'type': 'pid'})
    b.linux['namespaces'] = nss
    b.write()
    return b


def exec_out(cid, *args):
    p = rt('exec', cid, *args, timeout=240)
    eq(p.returncode, 0, f'exec {args} in {cid}: {p.stderr.strip()}')
    return p.stdout.strip()


@test
def a_pods_containers_share_its_sandboxs_vm():
    # Kata's model through runc's command line: the CRI sandbox boots the
    # pod's VM; a container naming it (io.kubernetes.cri.sandbox-id) is
    # created in that VM by its agent, in the pod's network (and pid)
    # namespace there, with a process of its own on the host as its pid.
    if not shutil.which('ip'):
        raise Skip('no ip (iproute2)')
    ns = f'casulo-pod{os.getpid()}'
    ip('netns', 'add', ns)
    netns = f'/var/run/netns/{ns}'
    sid, cid, cid2 = unique_id(), unique_id(), unique_id()
    try:
        sb = pod_bundle(['sleep', '300'], 'sandbox', netns=netns)
        ok_run(rt('create', '--bundle', sb.dir, sid), 'create the sandbox')
        ok_run(rt('start', sid), 'start the sandbox')
        vmm = vmm_pid(sid)
        if not alive(vmm):
            raise AssertionError('the sandbox has no VM')
        c = pod_bundle(['sh', '-c', 'echo member-up; exec sleep 301'], 'container', sandbox=sid, netns=netns,
                       share_pid=True)
        ok_run(rt('create', '--bundle', c.dir, cid), 'create a container of the pod')
        ok_run(rt('start', cid), 'start it')
        st = wait_status(cid, 'running')
        eq(vmm_pid(cid), 0, 'the pod\'s container has no VMM of its own')
        if not alive(st['pid']):
            raise AssertionError('the container has no process on the host')
        eq(len([p for p in ocitest.processes_with('casulo-vmm') if p != os.getpid()]) >= 1, True, 'a VMM')
        boot = exec_out(sid, 'cat', '/proc/sys/kernel/random/boot_id')
        eq(exec_out(cid, 'cat', '/proc/sys/kernel/random/boot_id'), boot, 'the same guest (boot id)')
        eq(exec_out(cid, 'readlink', '/proc/self/ns/net'), exec_out(sid, 'readlink', '/proc/self/ns/net'),
           'the pod\'s network namespace')
        contains(exec_out(cid, 'ps', '-o', 'args'), 'sleep 300', 'the sandbox\'s process, in the shared pid namespace')
        contains(exec_out(cid, 'uname', '-r'), 'cloud', 'the container runs on the guest\'s kernel')
        # A second container, its own pid namespace, exits with its status.
        c2 = pod_bundle(['sh', '-c', 'exit 7'], 'container', sandbox=sid, netns=netns)
        ok_run(rt('create', '--bundle', c2.dir, cid2), 'create a second container of the pod')
        ok_run(rt('start', cid2), 'start it')
        wait_status(cid2, 'stopped')
        ok_run(rt('delete', cid2), 'delete the second container')
        Clean(cid2).check()
        # The first ends by a signal; the sandbox's VM runs on.
        ok_run(rt('kill', cid, 'KILL'), 'kill the pod\'s container')
        wait_status(cid, 'stopped')
        ok_run(rt('delete', cid), 'delete it')
        Clean(cid).check()
        eq(alive(vmm), True, 'the pod\'s VM outlives its containers')
        eq(state(sid)['status'], 'running', 'the sandbox')
        ok_run(rt('kill', sid, 'KILL'), 'kill the sandbox')
        wait_status(sid, 'stopped')
        ok_run(rt('delete', sid), 'delete the sandbox')
        Clean(sid).check()
        for _ in range(100):
            if not alive(vmm):
                break
            time.sleep(0.1)
        eq(alive(vmm), False, 'the pod\'s VM ends with its sandbox')
    finally:
        for i in (cid2, cid, sid):
            rt('delete', '--force', i)
        ip('netns', 'del', ns, check=False)


# ---- clients: podman and containerd, with the host's binaries, in the lab ----

PODMAN_IMAGE = 'localhost/casulo-vm-busybox:latest'
# Root in this sandbox may lack CAP_SYS_RESOURCE (test_clients.py).
ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024']
VM_ON = ['--annotation', 'io.casulo.vm=on']
PODMAN_NET = 'casulovm'
PODMAN_SUBNET = '10.89.77'
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Podman:
    """podman with a store of its own (vfs: no overlay on the lab's
    overlay root), its CNI networks in a directory of its own (a bridge
    without masquerading: the lab has no netfilter), and a busybox image
    imported from a rootfs tarball."""
    _made = None

    @classmethod
    def get(cls):
        if cls._made is None:
            cls._made = cls()
        return cls._made

    def __init__(self):
        if not shutil.which('podman'):
            raise Skip('podman is not installed')
        self.dir = os.path.join(WORK, 'podman')
        self.net_dir = os.path.join(self.dir, 'cni')
        os.makedirs(self.net_dir, exist_ok=True)
        self.add_network(PODMAN_NET, 'cni-casulovm', PODMAN_SUBNET)
        rootfs = ocitest.make_rootfs(os.path.join(self.dir, 'rootfs'))
        tar = os.path.join(self.dir, 'busybox.tar')
        subprocess.run(['tar', '-C', rootfs, '-cf', tar, '.'], check=True)
        p = self.run('import', tar, PODMAN_IMAGE, runtime=None)
        if p.returncode != 0:
            raise Skip(f'podman import failed here: {p.stderr.strip()[-300:]}')

    def add_network(self, name, bridge, subnet, *plugins):
        """A CNI network NAME: a bridge without masquerading on SUBNET.0/24
        (the lab has no netfilter for it), then the plugins given."""
        with open(os.path.join(self.net_dir, f'{name}.conflist'), 'w') as f:
            json.dump({'cniVersion': '0.4.0', 'name': name, 'plugins': [{
                'type': 'bridge', 'bridge': bridge, 'isGateway': True, 'ipMasq': False,
                'ipam': {'type': 'host-local', 'routes': [{'dst': '0.0.0.0/0'}],
                         'ranges': [[{'subnet': f'{subnet}.0/24', 'gateway': f'{subnet}.1'}]]}}] + list(plugins)}, f)

    def run(self, *args, runtime=PLAIN, timeout=300, input=None):
        cmd = ['podman', '--root', os.path.join(self.dir, 'root'), '--runroot', os.path.join(self.dir, 'run'),
               '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--network-config-dir', self.net_dir,
               '--events-backend', 'file']
        if runtime:
            cmd += ['--runtime', runtime]
        return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def ok(self, *args, what=None, **kw):
        p = self.run(*args, **kw)
        if p.returncode != 0:
            raise AssertionError(f'podman {what or args[0]}: status {p.returncode}: {p.stderr.strip()[-400:]}')
        return p.stdout


def kernel_release_of(text):
    return text.strip().splitlines()[-1] if text.strip() else ''


@test
def podman_run_rm_in_a_vm():
    pm = Podman.get()
    host = os.uname().release
    out = pm.ok('run', '--rm', '--network', 'none', *VM_ON, *ULIMITS, PODMAN_IMAGE, 'sh', '-c',
                'echo hello from the vm; uname -r')
    lines = out.splitlines()
    eq(lines[0], 'hello from the vm', 'output')
    if lines[1] == host:
        raise AssertionError(f'the container ran on the host\'s kernel {host}')
    # Without the annotation, casulo-runtime-vm as the runtime: a VM too.
    out = pm.ok('run', '--rm', '--network', 'none', *ULIMITS, PODMAN_IMAGE, 'uname', '-r', runtime=RUNTIME)
    eq(out.strip(), lines[1], 'casulo-runtime-vm as podman\'s runtime')
    # runc's statuses, as podman maps them.
    p = pm.run('run', '--rm', '--network', 'none', *VM_ON, *ULIMITS, PODMAN_IMAGE, 'sh', '-c', 'exit 3')
    eq(p.returncode, 3, f'exit status (stderr {p.stderr.strip()[-200:]!r})')
    p = pm.run('run', '--rm', '--network', 'none', *VM_ON, *ULIMITS, PODMAN_IMAGE, 'no-such-command')
    eq(p.returncode, 127, 'a missing command')
    contains(p.stderr, 'executable file not found', 'podman shows our error')
    p = pm.run('run', '--rm', '--network', 'none', *VM_ON, *ULIMITS, PODMAN_IMAGE, '/etc/passwd')
    eq(p.returncode, 126, 'a command that is not executable')
    # -i: stdin reaches the process in the VM; -t: a terminal there.
    out = pm.ok('run', '--rm', '-i', '--network', 'none', *VM_ON, *ULIMITS, PODMAN_IMAGE, 'sh', '-c',
                'read x; echo got $x', input='through-stdin\n')
    eq(out.strip(), 'got through-stdin', 'podman run -i')
    out = pm.ok('run', '--rm', '-t', '--network', 'none', *VM_ON, *ULIMITS, PODMAN_IMAGE, 'tty')
    contains(out, '/dev/pts/0', 'podman run -t')
    eq(pm.ok('ps', '-a', '-q').strip(), '', 'no container left by run --rm')
    left = [p for p in ocitest.processes_with('casulo-vmm') if p != os.getpid()]
    if left:
        raise AssertionError(f'VMMs {left} left after podman run --rm')


def cli(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


@test
def casulo_run_vm_runs_an_image_in_a_vm():
    # An image saved by podman, imported into Casulo's store, run with
    # `casulo run --vm`: in a guest kernel, with runc's statuses, the
    # container's writes kept in its rootfs, nothing left after --rm.
    pm = Podman.get()
    casulo = os.path.join(os.path.dirname(RUNTIME), 'casulo')
    store = os.path.join(WORK, 'casulo-store')
    archive = os.path.join(WORK, 'busybox-oci.tar')
    if not os.path.exists(archive):
        pm.ok('save', '--format', 'oci-archive', '-o', archive, PODMAN_IMAGE)
    p = cli([casulo, 'image', 'import', '--root', store, archive, 'localhost/vm-run:1'])
    eq(p.returncode, 0, f'casulo image import: {p.stderr.strip()[-300:]}')
    host = os.uname().release
    p = cli([casulo, 'run', '--root', store, '--vm', '--rm', '-q', '-e', 'WHO=casulo', 'localhost/vm-run:1',
             'sh', '-c', 'echo hello $WHO; uname -r; exit 5'])
    lines = p.stdout.splitlines()
    eq(p.returncode, 5, f'the exit status (stderr {p.stderr.strip()[-300:]!r})')
    eq(lines[:1], ['hello casulo'], 'output and environment')
    if len(lines) < 2 or lines[1] == host:
        raise AssertionError(f'not in a guest kernel: {lines!r} (host {host})')
    p = cli([casulo, 'run', '--root', store, '--vm', '--name', 'vmrun-kept', '-q', 'localhost/vm-run:1',
             'sh', '-c', 'echo kept > /state'])
    eq(p.returncode, 0, f'a kept container (stderr {p.stderr.strip()[-300:]!r})')
    eq(os.listdir(os.path.join(store, 'containers')), ['vmrun-kept'], 'only the kept container stays')
    left = [p for p in ocitest.processes_with('casulo-vmm') if p != os.getpid()]
    if left:
        raise AssertionError(f'VMMs {left} left after casulo run --vm')


@test
def podman_detached_exec_logs_stop_in_a_vm():
    pm = Podman.get()
    name = unique_id('pm')
    try:
        pm.ok('run', '-d', '--name', name, '--network', 'none', *VM_ON, *ULIMITS, PODMAN_IMAGE, 'sh', '-c',
              'echo started; trap "echo got-term; exit 7" TERM; while true; do sleep 0.2; done', what='run -d')
        out = pm.ok('exec', name, 'sh', '-c', 'echo exec-ok; uname -r; cat /proc/1/cmdline')
        lines = out.splitlines()
        eq(lines[0], 'exec-ok', 'podman exec')
        if lines[1] == os.uname().release:
            raise AssertionError('podman exec ran on the host')
        contains(lines[2], 'while true', 'exec sees the container\'s pid 1')
        p = pm.run('exec', name, 'sh', '-c', 'exit 9')
        eq(p.returncode, 9, 'podman exec status')
        for _ in range(100):
            if 'started' in pm.ok('logs', name):
                break
            time.sleep(0.2)
        eq(pm.ok('logs', name).strip(), 'started', 'podman logs')
        pm.ok('stop', '-t', '20', name, what='stop')
        eq(pm.ok('inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name).strip(), 'exited 7',
           'stopped by SIGTERM, the trap\'s status')
        contains(pm.ok('logs', name), 'got-term', 'the TERM reached the process in the VM')
        pm.ok('rm', name, what='rm')
    finally:
        pm.run('rm', '-f', name)
    left = [p for p in ocitest.processes_with('casulo-vmm') if p != os.getpid()]
    if left:
        raise AssertionError(f'VMMs {left} left after podman rm')


def http_get_retrying(url, tries=20):
    """The body at url, tried every half second while the guest's server
    comes up; the last error, in parentheses, when it never answers.
    Python's client: Debian's static busybox wget crashes here."""
    body = ''
    for _ in range(tries):
        try:
            with NO_PROXY.open(url, timeout=5) as r:
                return r.read().decode()
        except OSError as e:
            body = f'({e})'
        time.sleep(0.5)
    return body


def net_diagnosis(netns_path):
    """What a failed network test shows: the redirections and counters in
    the namespace, a ping from the host."""
    out = []
    for cmd in (['ip', '-s', 'link'], ['tc', '-s', 'filter', 'show', 'dev', 'eth0', 'ingress'],
                ['tc', '-s', 'filter', 'show', 'dev', 'casulo-tap0', 'ingress']):
        p = subprocess.run(['nsenter', '--net=' + netns_path] + cmd, capture_output=True, text=True)
        out.append(f'{" ".join(cmd)}: {p.stdout.strip()} {p.stderr.strip()}')
    for cmd in (['ip', 'neigh'], ['ip', '-s', 'link'], ['ip', 'route'], ['bridge', 'fdb', 'show', 'dynamic']):
        p = subprocess.run(cmd, capture_output=True, text=True)
        out.append(f'host: {" ".join(cmd)}: {p.stdout.strip()} {p.stderr.strip()}')
    return '\n'.join(out)


@test
def podman_network_reaches_the_vm():
    """The container's interface, which podman's CNI bridge made, carries
    the VM's traffic (TAP + tc redirection in podman's namespace)."""
    if not shutil.which('ip'):
        raise Skip('no ip (iproute2)')
    pm = Podman.get()
    name = unique_id('pmnet')
    try:
        pm.ok('run', '-d', '--name', name, '--network', PODMAN_NET, '--cap-add', 'NET_RAW', *VM_ON, *ULIMITS,
              PODMAN_IMAGE, 'sh', '-c',
              'echo vm-web > /tmp/index.html; exec httpd -f -p 8080 -h /tmp', what='run -d on a bridge')
        addr = pm.ok('inspect', '--format', '{{(index .NetworkSettings.Networks "%s").IPAddress}}' % PODMAN_NET,
                     name).strip()
        if not addr.startswith(PODMAN_SUBNET + '.'):
            raise AssertionError(f'address {addr!r}')
        # The guest has the address podman gave the container.
        contains(pm.ok('exec', name, 'ip', 'addr', 'show', 'eth0'), addr + '/24', 'the address in the guest')
        p = pm.run('exec', name, 'sh', '-c', f'ping -c 1 -W 5 {PODMAN_SUBNET}.1 >/dev/null && echo ping-ok')
        ping_ok = p.stdout.strip() == 'ping-ok'
        body = http_get_retrying(f'http://{addr}:8080/')
        if body.strip() != 'vm-web':
            sandbox = pm.ok('inspect', '--format', '{{.NetworkSettings.SandboxKey}}', name).strip()
            raise AssertionError(f'the host does not reach the VM\'s web server at {addr} through podman\'s bridge '
                                 f'(the VM reaches the gateway: {ping_ok}); '
                                 f'{net_diagnosis(sandbox)}; in the guest: '
                                 f'{pm.run("exec", name, "sh", "-c", "ip -s link; ip neigh; netstat -ltn").stdout}')
        eq(ping_ok, True, 'the VM reaches the bridge\'s gateway')
        pm.ok('stop', '-t', '2', name, what='stop')
    finally:
        pm.run('rm', '-f', name)
        ip('link', 'del', 'cni-casulovm', check=False)


PUBLISH_NET = 'casulovmp'
PUBLISH_SUBNET = '10.89.78'


@test
def podman_publishes_a_port_of_the_vm():
    """podman run -p HOSTPORT:PORT in VM mode: CNI's portmap rewrites the
    host port to the container's address (iptables DNAT), and the TAP and
    tc redirection carry it on to the guest, as with runc."""
    if not shutil.which('iptables'):
        raise Skip('no iptables (CNI portmap needs it)')
    pm = Podman.get()
    pm.add_network(PUBLISH_NET, 'cni-casulovmp', PUBLISH_SUBNET,
                   {'type': 'portmap', 'capabilities': {'portMappings': True}, 'snat': True})
    name = unique_id('pmport')
    try:
        p = pm.run('run', '-d', '--name', name, '--network', PUBLISH_NET, '-p', '18080:8080', *VM_ON, *ULIMITS,
                   PODMAN_IMAGE, 'sh', '-c', 'echo vm-published > /tmp/index.html; exec httpd -f -p 8080 -h /tmp')
        if p.returncode != 0 and 'iptables' in p.stderr:
            raise Skip(f'no netfilter for CNI portmap here: {p.stderr.strip()[-200:]}')
        if p.returncode != 0:
            raise AssertionError(f'podman run -d -p: status {p.returncode}: {p.stderr.strip()[-400:]}')
        # The host port on the bridge's own address: the OUTPUT chain's
        # DNAT for local destinations, then the bridge, the veth and the TAP.
        body = http_get_retrying(f'http://{PUBLISH_SUBNET}.1:18080/')
        if body.strip() != 'vm-published':
            nat = subprocess.run(['iptables', '-t', 'nat', '-S'], capture_output=True, text=True)
            sandbox = pm.ok('inspect', '--format', '{{.NetworkSettings.SandboxKey}}', name).strip()
            raise AssertionError(f'the published port 18080 does not reach the VM\'s web server: {body!r}; '
                                 f'nat table: {nat.stdout[-1200:]} {nat.stderr[-200:]}; {net_diagnosis(sandbox)}')
        # The guest runs its own kernel: this is the VM, not a host process.
        host = os.uname().release
        guest = pm.ok('exec', name, 'uname', '-r').strip()
        if guest == host:
            raise AssertionError(f'the container runs the host\'s kernel {host}: not in a VM')
        pm.ok('stop', '-t', '2', name, what='stop')
        print(f'# host port 18080 -> guest kernel {guest}: {body.strip()!r}', flush=True)
    finally:
        pm.run('rm', '-f', name)
        ip('link', 'del', 'cni-casulovmp', check=False)


@test
def ctr_runs_a_task_in_a_vm():
    for tool in ('containerd', 'ctr', 'containerd-shim-runc-v2'):
        if not shutil.which(tool):
            raise Skip(f'{tool} is not installed')
    d = test_clients.Containerd()
    rootfs = ocitest.make_rootfs(os.path.join(WORK, 'ctr-vm-rootfs'))
    cid = unique_id('ctr')
    try:
        p = d.ctr('run', '--rm', '--runc-binary', RUNTIME, '--rootfs', rootfs, cid + '-a', 'sh', '-c',
                  'echo hello from ctr; uname -r', timeout=300)
        eq(p.returncode, 0, f'ctr run: {p.stderr.strip()}')
        lines = p.stdout.splitlines()
        eq(lines[0], 'hello from ctr', 'output')
        if lines[1] == os.uname().release:
            raise AssertionError('ctr\'s task ran on the host')
        p = d.ctr('run', '--rm', '--runc-binary', RUNTIME, '--rootfs', rootfs, cid + '-b', 'sh', '-c', 'exit 5',
                  timeout=300)
        eq(p.returncode, 5, 'exit status through ctr')
        p = d.ctr('run', '-d', '--runc-binary', RUNTIME, '--rootfs', rootfs, cid, 'sleep', '300', timeout=300)
        eq(p.returncode, 0, f'ctr run -d: {p.stderr.strip()}')
        p = d.ctr('task', 'exec', '--exec-id', 'e1', cid, 'sh', '-c', 'echo exec-ok', timeout=300)
        eq((p.returncode, p.stdout), (0, 'exec-ok\n'), 'ctr task exec')
        d.kill_and_delete(cid, seconds=60)
    finally:
        d.ctr('task', 'delete', '--force', cid)
        d.ctr('container', 'delete', cid)
        d.close()


def lab_setup():
    """The lab's L1 mounts no cgroups: a v2 host, as podman and containerd
    find it."""
    if not os.listdir('/sys/fs/cgroup'):
        subprocess.run(['mount', '-t', 'cgroup2', 'none', '/sys/fs/cgroup'], check=False)


if __name__ == '__main__':
    why = None
    if not os.path.exists('/dev/kvm'):
        why = 'no /dev/kvm (run it through tests/lab/run)'
    elif not os.path.exists(os.path.join(GUEST, 'vmlinux')):
        why = f'no default guest in {GUEST} (make guest)'
    if why and os.geteuid() == 0:
        print('1..1')
        print(f'ok 1 - vm containers # SKIP {why}')
        sys.exit(0)
    if os.environ.get('CASULO_IN_LAB'):
        lab_setup()
    sys.exit(ocitest.main())
