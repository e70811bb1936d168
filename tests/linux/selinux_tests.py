#!/usr/bin/python3
"""casulo-vmm --selinux-label (sVirt; docs/vmm.md, "Confinement: SELinux
(sVirt)") with SELinux enforcing, in the lab.  Prints TAP.

On the host (no --in-lab): builds a copy of the host's binary policy,
Debian's reference policy with tests/linux/selinux/casulo-lab.cil (what the
lab needs beyond it: its jobs run as kernel_t on an unlabelled 9p root),
then runs itself in the lab (tests/lab/run) with SELinux started on the L1
kernel's command line.

In the lab (--in-lab): mounts selinuxfs, loads that policy, labels a tmpfs
the way a host would (the VMM qemu_exec_t, kernel and initrd
virt_content_t, /dev/kvm kvm_device_t), turns enforcing on, and starts two
VMs with `--selinux-label dynamic` as the same user (root): each VMM runs
as svirt_t with its own category pair, each disk carries its VM's pair
(svirt_image_t) and the guest writes it through its confined VMM; a
process in VM A's exact context (a probe, and casulo-vmm itself) cannot
open VM B's disk (EACCES) and can open A's; the disks get their old labels
back when the VMs end; a disk that cannot be labelled leaves nothing
labelled, nor does a VMM binary the policy does not let run as svirt_t.
casulo-runtime's process.selinuxLabel, in the same lab: the
container's process runs in the label and reads a file of its own pair,
not one of another; linux.mountLabel labels the tmpfs it mounts.

usage: selinux_tests.py --lab-run tests/lab/run --vmm build/casulo-vmm --guest build/guest
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), '..', 'common'))
import taprun  # noqa: E402
from taprun import Failure, Skip, check  # noqa: E402
from device_tests import api_get  # noqa: E402  (beside this file)
from guest_tests import api_put  # noqa: E402

HERE = os.path.dirname(os.path.realpath(__file__))
MODULE = os.path.join(HERE, 'selinux', 'casulo-lab.cil')
# The lab's L1 kernel (Debian's) starts SELinux with these (tests/lab/run
# reads CASULO_LAB_APPEND); permissive until the test loads its policy.
LAB_APPEND = 'lsm=landlock,lockdown,yama,integrity,selinux,bpf selinux=1 enforcing=0'
QUIET = 'console=ttyS0 quiet reboot=k panic=-1'
BUSYBOX = '/usr/bin/busybox'
WORK = '/run/casulo-selinux-test'
A = None
TESTS = []
STATE = {}


def test(fn):
    TESTS.append(fn)
    return fn


# ---------------------------------------------------------------- host side

def build_policy(tmp):
    """The host's policy with the lab module: its binary file."""
    root = os.path.join(tmp, 'root')
    os.makedirs(os.path.join(root, 'etc'))
    os.makedirs(os.path.join(root, 'var', 'lib'))
    shutil.copytree('/etc/selinux', os.path.join(root, 'etc', 'selinux'), symlinks=True)
    shutil.copytree('/var/lib/selinux', os.path.join(root, 'var', 'lib', 'selinux'), symlinks=True)
    p = subprocess.run(['semodule', '-p', root, '-n', '-i', MODULE], capture_output=True, text=True)
    # libsemanage warns of policy users missing from this host's passwd.
    if p.returncode != 0:
        raise RuntimeError('semodule -i %s: exit %d: %s' % (MODULE, p.returncode, p.stderr.strip()))
    policy = os.path.join(root, 'etc', 'selinux', 'default', 'policy')
    files = sorted(f for f in os.listdir(policy) if f.startswith('policy.'))
    if not files:
        raise RuntimeError('semodule wrote no binary policy in %s' % policy)
    return os.path.join(policy, files[-1])


def host_main():
    missing = [w for w, f in (('semodule (policycoreutils)', '/usr/sbin/semodule'),
                              ("Debian's reference policy (selinux-policy-default)",
                               '/etc/selinux/default/policy'),
                              ('its module store', '/var/lib/selinux/default'))
               if not os.path.exists(f)]
    if missing or os.geteuid() != 0:
        print('TAP version 13')
        print('1..0 # SKIP %s' % ('missing here: ' + ', '.join(missing) if missing else
                                  'needs root (semodule builds the policy, the lab loads it)'))
        return 0
    tmp = tempfile.mkdtemp(prefix='casulo-selinux-', dir='/tmp')
    try:
        start = time.monotonic()
        policy = build_policy(tmp)
        # On stderr: TAP's version line must come first on stdout.
        print('selinux: policy with %s built in %.1f s: %s' % (os.path.basename(MODULE), time.monotonic() - start,
                                                              policy), file=sys.stderr, flush=True)
        env = dict(os.environ, CASULO_LAB_APPEND=LAB_APPEND)
        argv = [A.lab_run, '--or-skip', '--tap', '--timeout', '900', '--',
                sys.executable, os.path.realpath(__file__), '--in-lab', '--policy', policy,
                '--vmm', A.vmm, '--guest', A.guest]
        if A.filter:
            argv += ['--filter', A.filter]
        if A.permissive:
            argv += ['--permissive']
        return subprocess.call(argv, env=env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------ lab side

def label(path):
    return os.getxattr(path, 'security.selinux').rstrip(b'\0').decode()


def chcon(path, ctx):
    os.setxattr(path, 'security.selinux', ctx.encode())


def context_of(pid):
    with open('/proc/%d/attr/current' % pid) as f:
        return f.read().rstrip('\0\n')


def pair_of(ctx):
    """'u:r:t:s0:c1,c2' -> 's0:c1,c2'."""
    return ctx.split(':', 3)[3]


def denials():
    p = subprocess.run(['dmesg'], capture_output=True, text=True)
    return [ln for ln in p.stdout.splitlines() if 'avc:' in ln and 'denied' in ln]


def setup():
    """SELinux enforcing with the test policy, the files labelled: a reason
    to skip, or None."""
    if os.environ.get('CASULO_IN_LAB') != '1':
        return 'loads a test policy: only in the lab (tests/lab/run), never on a host'
    if not os.path.isdir('/sys/fs/selinux'):
        return ('the lab kernel runs without SELinux (no /sys/fs/selinux: CASULO_LAB_APPEND=%r did not start it)'
                % os.environ.get('CASULO_LAB_APPEND', ''))
    if not os.path.exists('/sys/fs/selinux/load'):
        subprocess.run(['mount', '-t', 'selinuxfs', 'none', '/sys/fs/selinux'], check=True)
    with open(A.policy, 'rb') as f:
        data = f.read()
    start = time.monotonic()
    with open('/sys/fs/selinux/load', 'wb') as f:
        f.write(data)
    print('selinux: policy loaded in %.1f s; this job runs as %s' % (time.monotonic() - start,
                                                                     context_of(os.getpid())),
          file=sys.stderr, flush=True)
    os.makedirs(WORK, exist_ok=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=512m', 'tmpfs', WORK], check=True)
    # As a host labels them: the VMM an entry point of svirt_t, what it
    # only reads shared content, /dev/kvm the KVM device.
    for src, name, ctx in ((A.vmm, 'casulo-vmm', 'system_u:object_r:qemu_exec_t:s0'),
                           (BUSYBOX, 'busybox', 'system_u:object_r:qemu_exec_t:s0'),
                           (os.path.join(A.guest, 'vmlinuz'), 'vmlinuz', 'system_u:object_r:virt_content_t:s0'),
                           (os.path.join(A.guest, 'initrd.img'), 'initrd.img',
                            'system_u:object_r:virt_content_t:s0')):
        if not os.path.exists(src):  # the guest: need_guest() says so
            continue
        shutil.copy(src, os.path.join(WORK, name))
        chcon(os.path.join(WORK, name), ctx)
    # devtmpfs was labelled before the policy came: its nodes' labels are
    # what a host's udev would set.
    chcon('/dev/kvm', 'system_u:object_r:kvm_device_t:s0')
    chcon('/dev/null', 'system_u:object_r:null_device_t:s0')
    chcon('/dev/urandom', 'system_u:object_r:urandom_device_t:s0')
    if os.path.exists('/dev/net/tun'):  # a restore opens it (its NICs come from the snapshot)
        chcon('/dev/net/tun', 'system_u:object_r:tun_tap_device_t:s0')
    # The VMs' socket directory, as a host's: svirt_t may make sockets in
    # svirt_runtime_t; at s0 any VM may, each socket taking its maker's pair.
    os.makedirs(os.path.join(WORK, 'run'))
    chcon(os.path.join(WORK, 'run'), 'system_u:object_r:svirt_runtime_t:s0')
    for name in ('a.img', 'b.img', 'c.img', 'd.img', 'f.img'):
        with open(os.path.join(WORK, name), 'wb') as f:
            f.truncate(16 << 20)
    if not A.permissive:
        with open('/sys/fs/selinux/enforce', 'w') as f:
            f.write('1')
    with open('/sys/fs/selinux/enforce') as f:
        print('selinux: enforcing %s; disks labelled %s' % (f.read().strip(), label(os.path.join(WORK, 'a.img'))),
              file=sys.stderr, flush=True)
    return None


def need_guest():
    if not os.path.exists(os.path.join(WORK, 'vmlinuz')):
        raise Skip('the default guest is not built (%s: make guest)' % A.guest)


def vmm_argv(disks, command, label_arg='dynamic'):
    argv = [os.path.join(WORK, 'casulo-vmm'), '--selinux-label', label_arg, '--log-level', 'info',
            '--kernel', os.path.join(WORK, 'vmlinuz'), '--initrd', os.path.join(WORK, 'initrd.img'),
            '--memory', '128M', '--cmdline', QUIET + ' -- /bin/sh -c "%s"' % command]
    for d in disks:
        argv += ['--disk', 'path=' + d]
    return argv


def child_of(pid, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except FileNotFoundError:
            break
        time.sleep(0.05)
    return None


def wait_line(p, word, timeout):
    """Read p's stdout until a line holds word: all read so far."""
    seen = []
    end = time.monotonic() + timeout
    os.set_blocking(p.stdout.fileno(), False)
    buf = b''
    while time.monotonic() < end:
        if p.poll() is not None:
            buf += p.stdout.read() or b''
            break
        chunk = p.stdout.read()
        if chunk:
            buf += chunk
            if word.encode() in buf:
                break
        else:
            time.sleep(0.1)
    seen.append(buf.decode(errors='replace'))
    return ''.join(seen)


def disk(name):
    return os.path.join(WORK, name)


@test
def two_vms_run_in_their_own_category_pairs():
    need_guest()
    old = {n: label(disk(n)) for n in ('a.img', 'b.img')}
    STATE['old'] = old
    vms = {}
    before = len(denials())
    for n in ('a', 'b'):
        p = subprocess.Popen(vmm_argv([disk(n + '.img')],
                                      'echo VM-%s-DISK | dd of=/dev/vda conv=fsync 2>/dev/null; echo VM-%s-UP; '
                                      'sleep 600' % (n.upper(), n.upper())) +
                             ['--api-socket', os.path.join(WORK, 'run', n + '.sock')],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        vms[n] = p
    STATE['vms'] = vms
    for n, p in vms.items():
        out = wait_line(p, 'VM-%s-UP' % n.upper(), 300)
        check('VM-%s-UP' % n.upper() in out,
              'VM %s did not come up (exit %r): %r %r; denials: %s' %
              (n, p.poll(), out[-800:], p.stderr.read1(2000) if p.poll() is not None else b'', denials()[-10:]))
    ctx = {}
    for n, p in vms.items():
        vmm = child_of(p.pid)
        check(vmm is not None, 'VM %s: its parent %d has no child' % (n, p.pid))
        ctx[n] = context_of(vmm)
        STATE['vmm_' + n] = vmm
        check(ctx[n].split(':')[2] == 'svirt_t', 'VM %s VMM runs as %s, not svirt_t' % (n, ctx[n]))
        check(context_of(p.pid) == context_of(os.getpid()), 'the labelling parent changed its own context')
        dl = label(disk(n + '.img'))
        check(dl.split(':')[2] == 'svirt_image_t' and pair_of(dl) == pair_of(ctx[n]),
              'VM %s disk is %s, its VMM %s' % (n, dl, ctx[n]))
        with open(disk(n + '.img'), 'rb') as f:
            head = f.read(16)
        check(head.startswith(b'VM-%s-DISK\n' % n.upper().encode()),
              'VM %s guest did not write its disk through its VMM: %r' % (n, head))
    check(pair_of(ctx['a']) != pair_of(ctx['b']), 'both VMs got %s' % pair_of(ctx['a']))
    STATE['ctx'] = ctx
    # The API socket the VMM made carries its pair (a file takes its
    # maker's level), and answers.
    sock = os.path.join(WORK, 'run', 'a.sock')
    check(pair_of(label(sock)) == pair_of(ctx['a']), 'VM A API socket is %s' % label(sock))
    status, body = api_get(sock, '/vm')
    check(status == 200 and body.get('state') == 'running', 'GET /vm on VM A: %d %r' % (status, body))
    new = [d for d in denials()[before:] if 'svirt_t' in d]
    check(not new, 'the VMs ran with denials (casulo-lab.cil lacks a rule, or the VMM needs one): %s' % new[-5:])
    return 'A %s, B %s; disks %s, %s; both guests wrote their disk; A API socket %s' % (
        ctx['a'], ctx['b'], label(disk('a.img')), label(disk('b.img')), label(sock))


def probe_open(ctx, path):
    """Open path for reading and writing as a process in ctx (runcon with
    the probe, a busybox labelled qemu_exec_t): its exit status and stderr."""
    p = subprocess.run(['runcon', ctx, os.path.join(WORK, 'busybox'), 'sh', '-c', 'exec 3<>"$1"', 'probe', path],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stderr.strip()


@test
def vm_a_context_cannot_open_vm_b_disk():
    ctx = STATE.get('ctx')
    if not ctx:
        raise Skip('the VMs did not start')
    rc_b, err_b = probe_open(ctx['a'], disk('b.img'))
    check(rc_b != 0 and 'Permission denied' in err_b,
          'a process as %s opened VM B disk %s (%s): exit %d %r' % (ctx['a'], disk('b.img'), label(disk('b.img')),
                                                                   rc_b, err_b))
    rc_a, err_a = probe_open(ctx['a'], disk('a.img'))
    check(rc_a == 0, 'a process as %s cannot open VM A disk: exit %d %r; denials: %s' %
          (ctx['a'], rc_a, err_a, denials()[-5:]))
    # casulo-vmm itself in A's context, given B's disk: it opens the disk
    # while it builds the VM, and is refused.
    p = subprocess.run(['runcon', ctx['a']] + vmm_argv([disk('b.img')], 'true')[0:1] +
                       vmm_argv([disk('b.img')], 'true')[3:], capture_output=True, text=True, timeout=120)
    check(p.returncode == 1 and 'Permission denied' in p.stderr and 'b.img' in p.stderr,
          'casulo-vmm as %s with VM B disk: exit %d %r' % (ctx['a'], p.returncode, p.stderr[-600:]))
    return 'B disk: %r; A disk: opened; casulo-vmm as A with B disk: %r' % (
        err_b, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else '')


@test
def labels_come_back_when_the_vms_end():
    vms = STATE.get('vms')
    if not vms:
        raise Skip('the VMs did not start')
    rcs = {}
    for n, p in vms.items():
        p.send_signal(signal.SIGTERM)
    for n, p in vms.items():
        rcs[n] = p.wait(timeout=120)
    for n in vms:
        check(rcs[n] == 128 + signal.SIGTERM, 'VM %s ended with %d after SIGTERM to its parent' % (n, rcs[n]))
        check(not os.path.exists('/proc/%d' % STATE['vmm_' + n]), 'VM %s VMM still runs' % n)
        now = label(disk(n + '.img'))
        check(now == STATE['old'][n + '.img'], 'VM %s disk is %s, was %s' % (n, now, STATE['old'][n + '.img']))
    return 'exit %d and %d; disks back to %s' % (rcs['a'], rcs['b'], label(disk('a.img')))


@test
def a_disk_that_cannot_be_labelled_leaves_nothing_labelled():
    need_guest()
    before = label(disk('c.img'))
    missing = disk('missing.img')
    p = subprocess.run(vmm_argv([disk('c.img'), missing], 'true'), capture_output=True, text=True, timeout=120)
    lines = p.stderr.strip().splitlines()
    check(p.returncode == 1 and len(lines) >= 1 and 'missing.img' in lines[-1] and
          'No such file or directory' in lines[-1], 'exit %d %r' % (p.returncode, p.stderr[-600:]))
    check(label(disk('c.img')) == before, 'c.img is left as %s, was %s' % (label(disk('c.img')), before))
    # A VMM binary that is no entry point of svirt_t (a copy left tmpfs_t):
    # the exec into the label is refused after the disk was labelled.
    plain = os.path.join(WORK, 'casulo-vmm-unlabelled')
    shutil.copy(os.path.join(WORK, 'casulo-vmm'), plain)
    argv = vmm_argv([disk('c.img')], 'true')
    p2 = subprocess.run([plain] + argv[1:], capture_output=True, text=True, timeout=120)
    lines2 = p2.stderr.strip().splitlines()
    check(p2.returncode == 1 and lines2 and 'start the VMM as' in lines2[-1] and 'Permission denied' in lines2[-1],
          'a VMM that cannot enter svirt_t: exit %d %r' % (p2.returncode, p2.stderr[-600:]))
    check(label(disk('c.img')) == before, 'c.img is left as %s after a refused start' % label(disk('c.img')))
    return '%s; %s' % (lines[-1], lines2[-1])


@test
def a_label_given_is_used_as_it_is():
    need_guest()
    ctx = 'system_u:system_r:svirt_t:s0:c7,c911'
    before = label(disk('c.img'))
    p = subprocess.Popen(vmm_argv([disk('c.img')], 'echo VM-C-UP; sleep 600', label_arg=ctx),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        vmm = child_of(p.pid)
        check(vmm is not None, 'no VMM under the parent (exit %r)' % p.poll())
        out = wait_line(p, 'VM-C-UP', 300)
        check('VM-C-UP' in out, 'the VM did not come up: %r' % out[-600:])
        got, dl = context_of(vmm), label(disk('c.img'))
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=120)
    check(got == ctx, 'the VMM runs as %s' % got)
    check(dl == 'system_u:object_r:svirt_image_t:s0:c7,c911', 'its disk was %s' % dl)
    check(rc == 143 and label(disk('c.img')) == before, 'exit %d, disk %s after' % (rc, label(disk('c.img'))))
    bad = subprocess.run(vmm_argv([disk('c.img')], 'true', label_arg='system_u:system_r:no_such_t:s0'),
                         capture_output=True, text=True, timeout=60)
    check(bad.returncode == 1 and 'no_such_t' in bad.stderr and 'not a valid context' in bad.stderr,
          'a label the policy lacks: exit %d %r' % (bad.returncode, bad.stderr))
    return 'VMM %s, disk %s; %s' % (got, dl, bad.stderr.strip())


# A guest that counts on its console and writes "D<count>" at the start
# of its disk: where a restored or migrated guest goes on from.
COUNTER_ON_DISK = ('n=0; while true; do echo count $n; echo D$n | dd of=/dev/vda conv=fsync 2>/dev/null; '
                   'n=$((n+1)); sleep 0.3; done')


@test
def a_snapshot_restores_in_its_own_pair():
    """--restore with --selinux-label: the snapshot's disk (named by the
    snapshot only) or the one given in its place gets the VM's pair, the
    snapshot's files the content context every VM may read, so that two
    VMs restore it at once; the disks' labels are put back when the VMs
    end, the snapshot's files keep theirs."""
    need_guest()
    snap, sock = os.path.join(WORK, 'snap'), os.path.join(WORK, 'run', 'snap-src.sock')
    # The snapshot of an unlabelled VM: a counter on the console and on its disk.
    argv = vmm_argv([disk('d.img')], COUNTER_ON_DISK)
    argv = argv[:1] + argv[3:] + ['--api-socket', sock, '--snapshot-dir', WORK]
    src = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = wait_line(src, 'count 3', 300)
        check('count 3' in out, 'the VM to snapshot did not count (exit %r): %r %r' % (
            src.poll(), out[-600:], src.stderr.read1(2000) if src.poll() is not None else b''))
        status, body = api_put(sock, '/vm/state', {'state': 'paused'})
        check(status == 204, 'pause: HTTP %d %r' % (status, body))
        status, body = api_put(sock, '/snapshot/create', {'path': snap})
        check(status == 204, 'snapshot create: HTTP %d %r' % (status, body))
        api_put(sock, '/vm/stop')
        src.wait(timeout=120)
    finally:
        if src.poll() is None:
            src.kill()
            src.wait()
    with open(disk('d.img'), 'rb') as f:
        at_snapshot = f.read(16).split(b'\n')[0]
    files = [disk('d.img'), os.path.join(snap, 'state'), os.path.join(snap, 'memory')]
    shutil.copy(disk('d.img'), disk('e.img'))
    files.append(disk('e.img'))
    old = {f: label(f) for f in files}
    before = len(denials())
    # Two VMs from the one snapshot at once: the first on the snapshot's
    # disk, the second on a copy given with --disk.
    vms = {}
    try:
        for n, extra in (('1', []), ('2', ['--disk', 'path=' + disk('e.img')])):
            p = subprocess.Popen([os.path.join(WORK, 'casulo-vmm'), '--selinux-label', 'dynamic', '--log-level',
                                  'info', '--restore', snap, '--api-socket',
                                  os.path.join(WORK, 'run', 'restored-%s.sock' % n)] + extra,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            vms[n] = [p, child_of(p.pid)]
            check(vms[n][1] is not None, 'restore %s: no VMM under the parent (exit %r): %r' % (
                n, p.poll(), p.stderr.read1(2000) if p.poll() is not None else b''))
            out = wait_line(p, 'count ', 300)
            check('count ' in out, 'restore %s: the guest did not go on counting (exit %r): %r %r; denials: %s' % (
                n, p.poll(), out[-600:], p.stderr.read1(2000) if p.poll() is not None else b'',
                denials()[before:][-5:]))
        time.sleep(2)
        ctx = {n: context_of(v[1]) for n, v in vms.items()}
        labels = {f: label(f) for f in files}
        status, body = api_get(os.path.join(WORK, 'run', 'restored-2.sock'), '/vm')
        # The first ends: the second runs on, the snapshot's files keep
        # the content label while it does.
        vms['1'][0].send_signal(signal.SIGTERM)
        rc1 = vms['1'][0].wait(timeout=120)
        after_first = {f: label(f) for f in files}
        seen = wait_line(vms['2'][0], 'nothing', 2)
        check(re.search(r'count \d+', seen), 'restore 2 stopped counting when restore 1 ended: %r' % seen[-300:])
    finally:
        for v in vms.values():
            if v[0].poll() is None:
                v[0].send_signal(signal.SIGTERM)
        rcs = [v[0].wait(timeout=120) for v in vms.values()]
    heads = {}
    for f in (disk('d.img'), disk('e.img')):
        with open(f, 'rb') as fh:
            heads[f] = fh.read(16).split(b'\n')[0]
    content = 'system_u:object_r:virt_content_t:s0'
    for n, f in (('1', disk('d.img')), ('2', disk('e.img'))):
        check(ctx[n].split(':')[2] == 'svirt_t', 'restore %s VMM runs as %s' % (n, ctx[n]))
        check(labels[f] == 'system_u:object_r:svirt_image_t:' + pair_of(ctx[n]),
              'restore %s disk %s was %s, its VMM %s' % (n, f, labels[f], ctx[n]))
        check(int(heads[f][1:]) > int(at_snapshot[1:]),
              'restore %s did not write its disk: %r at the snapshot, %r after' % (n, at_snapshot, heads[f]))
    check(pair_of(ctx['1']) != pair_of(ctx['2']), 'both restores got %s' % pair_of(ctx['1']))
    for f in files[1:3]:
        check(labels[f] == content and after_first[f] == content,
              'snapshot file %s was %s, %s once the first VM ended' % (f, labels[f], after_first[f]))
    check(status == 200 and body.get('state') == 'running', 'GET /vm of restore 2: %d %r' % (status, body))
    new = [d for d in denials()[before:] if 'svirt_t' in d]
    check(not new, 'the restored VMs ran with denials: %s' % new[-5:])
    check(rc1 == 128 + signal.SIGTERM and rcs == [128 + signal.SIGTERM] * 2,
          'the restored VMs ended with %d, %s after SIGTERM' % (rc1, rcs))
    # The disks' labels come back; the snapshot's files keep theirs (a VM
    # that ends must not take it from one that starts).
    disks = [disk('d.img'), disk('e.img')]
    back = {f: label(f) for f in files}
    check(all(back[f] == old[f] for f in disks) and all(back[f] == content for f in files[1:3]),
          'labels after the VMs: %s, before: %s' % (back, old))
    return 'VMMs %s, %s; disks %s, %s; snapshot files %s; disks %s -> %s, %s; disk labels put back' % (
        ctx['1'], ctx['2'], labels[disk('d.img')], labels[disk('e.img')], labels[files[1]],
        at_snapshot.decode(), heads[disk('d.img')].decode(), heads[disk('e.img')].decode())


@test
def an_incoming_vm_runs_in_its_own_pair():
    """--incoming with --selinux-label: the --disk given (the source's, on
    shared storage) gets the destination's pair before the state comes;
    the migrated guest writes it from there; its label is put back."""
    need_guest()
    port = 49153  # virt_migration_port_t, where svirt_t may listen
    src_sock, dst_sock = os.path.join(WORK, 'run', 'mig-src.sock'), os.path.join(WORK, 'run', 'mig-dst.sock')
    old = label(disk('f.img'))
    before = len(denials())
    dst = subprocess.Popen([os.path.join(WORK, 'casulo-vmm'), '--selinux-label', 'dynamic', '--log-level', 'info',
                            '--incoming', 'tcp:127.0.0.1:%d' % port, '--disk', 'path=' + disk('f.img'),
                            '--api-socket', dst_sock],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    argv = vmm_argv([disk('f.img')], COUNTER_ON_DISK)
    src = subprocess.Popen(argv[:1] + argv[3:] + ['--api-socket', src_sock], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        vmm = child_of(dst.pid)
        check(vmm is not None, 'no VMM under the destination\'s parent (exit %r): %r' % (
            dst.poll(), dst.stderr.read1(2000) if dst.poll() is not None else b''))
        waiting = (context_of(vmm), label(disk('f.img')))
        out = wait_line(src, 'count 3', 300)
        check('count 3' in out, 'the source did not count (exit %r): %r' % (src.poll(), out[-600:]))
        deadline = time.monotonic() + 60
        while True:  # until the destination listens
            status, info = api_put(src_sock, '/migration/send', {'destination': 'tcp:127.0.0.1:%d' % port,
                                                                 'wait': True})
            if status == 200 or time.monotonic() > deadline or dst.poll() is not None:
                break
            time.sleep(0.5)
        check(status == 200 and info.get('state') == 'completed', 'migration: HTTP %d %r; destination: %r' % (
            status, info, dst.stderr.read1(2000) if dst.poll() is not None else 'running'))
        check(src.wait(timeout=60) == 0, 'the source VMM did not exit 0 after the migration')
        at_migration = max(int(x) for x in re.findall(r'count (\d+)', out + (src.stdout.read() or b'').decode(
            errors='replace')))
        seen = wait_line(dst, 'count %d' % (at_migration + 4), 120)
        check('count %d' % (at_migration + 4) in seen, 'the migrated guest did not count on from %d: %r %r' % (
            at_migration, seen[-400:], dst.stderr.read1(2000) if dst.poll() is not None else b''))
        ctx, running = context_of(vmm), label(disk('f.img'))
    finally:
        for p in (src, dst):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        rc = dst.wait(timeout=120)
        src.wait(timeout=120)
    with open(disk('f.img'), 'rb') as f:
        head = f.read(16).split(b'\n')[0]
    check(waiting[0].split(':')[2] == 'svirt_t' and waiting[1] == 'system_u:object_r:svirt_image_t:' +
          pair_of(waiting[0]), 'waiting for the state, the VMM ran as %s and its disk was %s' % waiting)
    check(ctx == waiting[0] and running == waiting[1], 'after the migration: VMM %s, disk %s' % (ctx, running))
    check(int(head[1:]) > at_migration, 'the migrated guest did not write its disk: %r, the source counted to %d' % (
        head, at_migration))
    new = [d for d in denials()[before:] if 'svirt_t' in d]
    check(not new, 'the migrated VM ran with denials: %s' % new[-5:])
    check(rc == 128 + signal.SIGTERM and label(disk('f.img')) == old,
          'exit %d, disk %s after (was %s)' % (rc, label(disk('f.img')), old))
    return 'destination %s, disk %s; the source counted to %d, the disk reads %s after; label put back' % (
        ctx, running, at_migration, head.decode())


@test
def container_process_runs_in_its_selinux_label():
    """casulo-runtime's process.selinuxLabel: the container's process runs
    in the label given, and the MCS constraints hold for it as for a VM."""
    runtime = os.path.join(os.path.dirname(A.vmm), 'casulo-runtime')
    if not os.path.exists(runtime):
        raise Skip('%s is not built' % runtime)
    ctx = 'system_u:system_r:svirt_t:s0:c11,c12'
    bundle = os.path.join(WORK, 'bundle')
    rootfs = os.path.join(bundle, 'rootfs')
    for d in ('bin', 'proc', 'mnt', 'tmp', 'dev'):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy(BUSYBOX, os.path.join(rootfs, 'bin', 'busybox'))
    # The container's program an entry point of svirt_t, as the VMM is.
    chcon(os.path.join(rootfs, 'bin', 'busybox'), 'system_u:object_r:qemu_exec_t:s0')
    shared = os.path.join(WORK, 'shared')
    os.makedirs(shared, exist_ok=True)
    for name, text, level in (('own', 'OWN-DATA', 's0:c11,c12'), ('other', 'OTHER-DATA', 's0:c13,c14')):
        with open(os.path.join(shared, name), 'w') as f:
            f.write(text + '\n')
        chcon(os.path.join(shared, name), 'system_u:object_r:svirt_image_t:' + level)
    config = {
        'ociVersion': '1.1.0',
        'process': {'terminal': False, 'user': {'uid': 0, 'gid': 0}, 'cwd': '/',
                    'args': ['/bin/busybox', 'sh', '-c',
                             'cat /proc/self/attr/current; echo; /bin/busybox cat /mnt/own; '
                             '/bin/busybox cat /mnt/other; echo END'],
                    'env': ['PATH=/bin'], 'selinuxLabel': ctx},
        'root': {'path': rootfs, 'readonly': False},
        'mounts': [{'destination': '/proc', 'type': 'proc', 'source': 'proc'},
                   {'destination': '/mnt', 'type': 'bind', 'source': shared, 'options': ['rbind', 'ro']}],
        'linux': {'namespaces': [{'type': t} for t in ('pid', 'mount', 'ipc', 'uts')]},
    }
    with open(os.path.join(bundle, 'config.json'), 'w') as f:
        json.dump(config, f)
    # The runtime puts the container in a cgroup: the lab mounts none.
    if not os.path.ismount('/sys/fs/cgroup'):
        subprocess.run(['mount', '-t', 'cgroup2', 'none', '/sys/fs/cgroup'], check=False)
    before = len(denials())
    p = subprocess.run([runtime, '--root', os.path.join(WORK, 'rt-state'), 'run', '-b', bundle, 'selinux-c1'],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    out = p.stdout.replace('\0', '')
    new = denials()[before:]
    check(ctx in out, 'the container process did not run as %s: exit %d %r %r; denials: %s' %
          (ctx, p.returncode, out[-600:], p.stderr[-600:], new[-5:]))
    check('OWN-DATA' in out, 'it cannot read a file of its own pair: %r %r' % (out[-600:], p.stderr[-600:]))
    check('OTHER-DATA' not in out and 'Permission denied' in p.stderr and 'END' in out,
          'a file of another pair: %r %r' % (out[-600:], p.stderr[-600:]))
    STATE['bundle'] = (runtime, bundle, config)
    return 'ran as %s; own pair read; other pair: %r' % (ctx, p.stderr.strip().splitlines()[-1])


@test
def container_mounts_get_the_mount_label():
    """linux.mountLabel: the container's tmpfs (and a masked directory's)
    files carry the label, and its process (in the same pair) writes there."""
    if 'bundle' not in STATE:
        raise Skip('the container did not run')
    runtime, bundle, config = STATE['bundle']
    mlabel = 'system_u:object_r:svirt_image_t:s0:c11,c12'
    config['linux']['mountLabel'] = mlabel
    config['linux']['maskedPaths'] = ['/proc/acpi']
    config['mounts'].append({'destination': '/tmp', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['nosuid']})
    config['process']['args'] = ['/bin/busybox', 'sh', '-c', 'echo x > /tmp/f && echo READY; exec /bin/busybox sleep 60']
    with open(os.path.join(bundle, 'config.json'), 'w') as f:
        json.dump(config, f)
    state = os.path.join(WORK, 'rt-state')
    p = subprocess.Popen([runtime, '--root', state, 'run', '-b', bundle, 'selinux-c2'], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = wait_line(p, 'READY', 60)
        check('READY' in out, 'the container did not write its tmpfs: %r %r; denials: %s' %
              (out, p.stderr.read1(2000) if p.poll() is not None else b'', denials()[-5:]))
        st = subprocess.run([runtime, '--root', state, 'state', 'selinux-c2'], capture_output=True, text=True)
        pid = json.loads(st.stdout)['pid']
        got_file = label('/proc/%d/root/tmp/f' % pid)
        got_tmp = label('/proc/%d/root/tmp' % pid)
        got_mask = label('/proc/%d/root/proc/acpi' % pid)
    finally:
        p.kill()
        subprocess.run([runtime, '--root', state, 'delete', '-f', 'selinux-c2'], capture_output=True)
        p.wait(timeout=30)
    check(got_tmp == mlabel and got_file == mlabel, 'its /tmp is %s, a file there %s' % (got_tmp, got_file))
    check(got_mask == mlabel, 'its masked /proc/acpi is %s' % got_mask)
    return '/tmp %s, /tmp/f %s, masked /proc/acpi %s' % (got_tmp, got_file, got_mask)


def end_vms():
    """SIGTERM to the VMs a try left (their parents put the labels back)."""
    for p in STATE.pop('vms', {}).values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def run_with_lab_retries(t):
    """t(), again when a guest of the lab reset (nested SVM's triple fault,
    taprun.LAB_FAULT_RETRIES): the VMM says so on its stderr, which the
    failures quote."""
    def lab_fault(e):
        return 'a guest reset in the lab (%s)' % str(e)[-300:] if 'triple fault' in str(e) else None
    note, faults = taprun.run_with_lab_retries(t, lab_fault, t.__name__, end_vms)
    return taprun.with_fault_note(note, faults)


def lab_main():
    tests = [t for t in TESTS if not A.filter or A.filter in t.__name__]
    try:
        skip = setup()
    except Exception as e:  # a set-up that failed fails every test, loudly
        skip = None
        failure = 'set-up failed: %r' % e

        def run_failed(t):
            raise Failure(failure)
        return taprun.run_tests(tests, run_failed)
    try:
        return taprun.run_tests(tests, run_with_lab_retries, skip)
    finally:
        for p in STATE.get('vms', {}).values():
            if p.poll() is None:
                p.kill()
        if A.permissive:
            for ln in denials():
                print('# ' + ln)


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument('--lab-run')
    ap.add_argument('--in-lab', action='store_true')
    ap.add_argument('--policy')
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True)
    ap.add_argument('--filter')
    ap.add_argument('--permissive', action='store_true', help='stay permissive and print the denials (to write '
                    'casulo-lab.cil)')
    A = ap.parse_args()
    A.vmm, A.guest = os.path.abspath(A.vmm), os.path.abspath(A.guest)
    return lab_main() if A.in_lab else host_main()


if __name__ == '__main__':
    sys.exit(main())
