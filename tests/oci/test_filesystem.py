#!/usr/bin/env python3
"""The container's filesystem: mounts and their options, propagation,
pivot_root and --no-pivot, read-only root, masked and read-only paths,
devices, hostname and domainname, sysctl."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import (RUNC, WORK, Bundle, Skip, contains, eq, fails, fails_clean, main, mounts_under,  # noqa: E402
                     ok_run, rt, run, runc, test, unique_id, wait_status)


def mounts_in(out):
    """{mountpoint: (fstype, options)} from /proc/self/mounts text."""
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            res[parts[1]] = (parts[2], parts[3].split(','))
    return res


@test
def default_mounts_and_their_options():
    b = Bundle(['cat', '/proc/self/mounts'])
    m = mounts_in(ok_run(run(b)))
    eq(m['/proc'][0], 'proc', '/proc type')
    eq(m['/dev'][0], 'tmpfs', '/dev type')
    contains(m['/dev'][1], 'nosuid', '/dev nosuid')
    contains(m['/dev'][1], 'mode=755', '/dev mode')
    eq(m['/dev/pts'][0], 'devpts', '/dev/pts')
    contains(m['/dev/pts'][1], 'ptmxmode=666', 'devpts ptmxmode')
    eq(m['/dev/mqueue'][0], 'mqueue', 'mqueue')
    eq(m['/sys'][0], 'sysfs', '/sys')
    contains(m['/sys'][1], 'ro', '/sys read-only')
    contains(m['/dev/shm'][1], 'nodev', '/dev/shm nodev')
    contains(m['/'][1], 'ro', 'read-only root')


@test
def bind_mounts_ro_rw_and_rbind():
    host = tempfile.mkdtemp(dir=WORK)
    with open(os.path.join(host, 'file'), 'w') as f:
        f.write('from-host\n')
    sub = os.path.join(host, 'sub')
    os.mkdir(sub)
    subprocess.run(['mount', '-t', 'tmpfs', 'tmpfs', sub], check=True)
    try:
        open(os.path.join(sub, 'inner'), 'w').write('inner\n')
        b = Bundle(['sh', '-c', 'cat /ro/file; echo x > /ro/new 2>/dev/null && echo ro-writable; '
                                'echo written > /rw/new; cat /rb/sub/inner; ls /nb/sub; cat /single'])
        b.config['mounts'] += [
            {'destination': '/ro', 'type': 'bind', 'source': host, 'options': ['bind', 'ro']},
            {'destination': '/rw', 'type': 'bind', 'source': host, 'options': ['rbind', 'rw']},
            {'destination': '/rb', 'type': 'none', 'source': host, 'options': ['rbind']},
            {'destination': '/nb', 'type': 'none', 'source': host, 'options': ['bind']},
            {'destination': '/single', 'source': os.path.join(host, 'file'), 'options': ['bind', 'ro']},
        ]
        b.config['root']['readonly'] = False
        b.write()
        out = ok_run(run(b))
        eq(out, 'from-host\ninner\nfrom-host\n', 'output')
        eq(open(os.path.join(host, 'new')).read(), 'written\n', 'write through the rw bind')
    finally:
        subprocess.run(['umount', sub])


@test
def bind_mount_relative_source_is_under_the_bundle():
    b = Bundle(['cat', '/data/hello'])
    os.mkdir(os.path.join(b.dir, 'data'))
    open(os.path.join(b.dir, 'data', 'hello'), 'w').write('relative\n')
    b.config['mounts'].append({'destination': '/data', 'type': 'bind', 'source': 'data', 'options': ['rbind']})
    b.write()
    eq(ok_run(run(b)), 'relative\n', 'output')


@test
def tmpfs_options_and_recursive_flags():
    b = Bundle(['sh', '-c', 'grep " /scratch " /proc/self/mounts; grep " /rec" /proc/self/mounts'])
    host = tempfile.mkdtemp(dir=WORK)
    b.config['mounts'] += [
        {'destination': '/scratch', 'type': 'tmpfs', 'source': 'tmpfs',
         'options': ['size=1m', 'mode=700', 'noexec', 'nodev', 'nosuid', 'noatime']},
        {'destination': '/rec', 'type': 'bind', 'source': host, 'options': ['rbind', 'rro', 'rnosuid']},
    ]
    b.write()
    out = ok_run(run(b)).splitlines()
    opts = out[0].split()[3].split(',')
    for o in ('noexec', 'nodev', 'nosuid', 'noatime', 'size=1024k', 'mode=700'):
        contains(opts, o, '/scratch options')
    rec = out[1].split()[3].split(',')
    contains(rec, 'ro', 'rro')
    contains(rec, 'nosuid', 'rnosuid')


@test
def tmpcopyup_keeps_the_image_content():
    b = Bundle(['sh', '-c', 'cat /etc/passwd | head -1; grep " /etc " /proc/self/mounts | cut -d" " -f3'],
               own_rootfs=True)
    b.config['mounts'].append({'destination': '/etc', 'type': 'tmpfs', 'source': 'tmpfs',
                               'options': ['tmpcopyup', 'mode=755']})
    b.write()
    eq(ok_run(run(b)), 'root:x:0:0:root:/root:/bin/sh\ntmpfs\n', 'copied up')


@test
def mount_propagation_rshared_reaches_the_container():
    host = tempfile.mkdtemp(dir=WORK)
    subprocess.run(['mount', '--bind', host, host], check=True)
    subprocess.run(['mount', '--make-shared', host], check=True)
    try:
        b = Bundle(['sleep', '30'])
        b.config['mounts'].append({'destination': '/shared', 'type': 'bind', 'source': host,
                                   'options': ['rbind', 'rslave']})
        b.write()
        cid = unique_id()
        ok_run(rt('run', '-d', '--bundle', b.dir, cid))
        st = wait_status(cid, 'running')
        os.makedirs(os.path.join(host, 'sub'), exist_ok=True)
        subprocess.run(['mount', '-t', 'tmpfs', 'tmpfs', os.path.join(host, 'sub')], check=True)
        open(os.path.join(host, 'sub', 'marker'), 'w').close()
        with open(f'/proc/{st["pid"]}/mounts') as f:
            contains(f.read(), '/shared/sub', 'host mount propagated into the container (rslave)')
        subprocess.run(['umount', os.path.join(host, 'sub')])
    finally:
        subprocess.run(['umount', '-R', host])


@test
def container_mounts_do_not_reach_the_host():
    b = Bundle(['sh', '-c', 'mount -t tmpfs tmpfs /mnt && echo mounted'])
    b.config['root']['readonly'] = False
    b.write()
    eq(ok_run(run(b)), 'mounted\n', 'mounted inside')
    eq(mounts_under(WORK), [], "the container's mounts in the host's table")


@test
def readonly_root_masked_and_readonly_paths():
    b = Bundle(['sh', '-c', 'touch /x 2>/dev/null && echo root-writable; '
                            'wc -c < /proc/timer_list; ls /sys/firmware | wc -l; '
                            'echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo sys-writable; '
                            'cat /proc/keys | wc -c; echo done'])
    if not os.path.exists('/proc/timer_list') or not os.path.exists('/proc/keys'):
        raise Skip('no /proc/timer_list or /proc/keys to mask on this kernel')
    eq(ok_run(run(b)).split(), ['0', '0', '0', 'done'], 'output')


@test
def pivot_root_hides_the_host_and_no_pivot_works():
    b = Bundle(['sh', '-c', 'ls /; cat /proc/self/mountinfo | wc -l'])
    out = ok_run(run(b)).split()
    for entry in ('work', 'usr', 'boot'):
        if entry in out:
            raise AssertionError(f'host directory /{entry} visible in the container')
    b2 = Bundle(['sh', '-c', 'ls / | grep -c work; readlink /proc/1/root'])
    eq(ok_run(run(b2, extra=['--no-pivot'])).split(), ['0', '/'], '--no-pivot output')


@test
def rootfs_propagation_private():
    b = Bundle(['sh', '-c', 'awk \'$5 == "/"\' /proc/self/mountinfo'])
    b.linux['rootfsPropagation'] = 'rprivate'
    b.write()
    line = ok_run(run(b)).strip()
    if 'shared:' in line or 'master:' in line:
        raise AssertionError(f'root is not private: {line}')
    b.linux['rootfsPropagation'] = 'bogus'
    b.write()
    fails(run(b), 'linux.rootfsPropagation', 'bogus', what='bad propagation')


@test
def default_and_configured_devices():
    b = Bundle(['sh', '-c', 'for d in null zero full random urandom tty fuse; do stat -c "%n %F %t:%T %a %u:%g" '
                            '/dev/$d; done; ls -l /dev/ptmx /dev/fd /dev/stdin | cut -c1; echo x > /dev/null && '
                            'head -c 3 /dev/zero | wc -c'])
    b.linux['devices'] = [{'path': '/dev/fuse', 'type': 'c', 'major': 10, 'minor': 229, 'fileMode': 0o640,
                           'uid': 1000, 'gid': 5}]
    b.write()
    out = ok_run(run(b)).splitlines()
    want = ['/dev/null character special file 1:3 666 0:0', '/dev/zero character special file 1:5 666 0:0',
            '/dev/full character special file 1:7 666 0:0', '/dev/random character special file 1:8 666 0:0',
            '/dev/urandom character special file 1:9 666 0:0', '/dev/tty character special file 5:0 666 0:0',
            '/dev/fuse character special file a:e5 640 1000:5']
    eq(out[:7], want, 'devices')
    eq(out[7:10], ['l', 'l', 'l'], 'symlinks')
    eq(out[10], '3', 'devices usable')


def openable_char_device():
    """A character device outside runc's default list that root can open."""
    for name in ('fuse', 'loop-control', 'kvm'):
        path = f'/dev/{name}'
        try:
            os.close(os.open(path, os.O_RDONLY))
        except OSError:
            continue
        rdev = os.stat(path).st_rdev
        return os.major(rdev), os.minor(rdev)
    raise Skip('no openable /dev/fuse, /dev/loop-control or /dev/kvm on this host')


@test
def device_cgroup_denies_what_is_not_allowed():
    maj, mnr = openable_char_device()
    # /dev is a tmpfs without nodev: the device cgroup alone decides.
    script = f'mknod /dev/probe c {maj} {mnr} && head -c 0 /dev/probe; echo rc=$?'
    b = Bundle(['sh', '-c', script])
    out = run(b)
    contains(out.stdout + out.stderr, 'Operation not permitted', 'opening the device denied')
    contains(out.stdout, 'rc=1', 'head failed')
    b.linux['resources']['devices'].append({'allow': True, 'type': 'c', 'major': maj, 'minor': mnr, 'access': 'r'})
    b.write()
    eq(ok_run(run(b)).strip(), 'rc=0', 'allowed by a rule')


@test
def hostname_domainname_and_sysctl():
    b = Bundle(['sh', '-c', 'hostname; cat /proc/sys/kernel/domainname; cat /proc/sys/net/ipv4/ip_forward; '
                            'cat /proc/sys/kernel/shm_rmid_forced'])
    b.config['hostname'] = 'box'
    b.config['domainname'] = 'example.org'
    b.linux['sysctl'] = {'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1'}
    b.write()
    eq(ok_run(run(b)).split(), ['box', 'example.org', '1', '1'], 'names and sysctls')
    host_forward = open('/proc/sys/net/ipv4/ip_forward').read().strip()
    b.linux['sysctl'] = {'net.ipv4.ip_forward': '1'}
    b.namespaces('pid', 'ipc', 'uts', 'mount')
    fails(run(b), 'net.ipv4.ip_forward', 'network namespace', what='net sysctl without a netns')
    eq(open('/proc/sys/net/ipv4/ip_forward').read().strip(), host_forward, 'host sysctl untouched')


@test
def cgroup_mount_shows_the_containers_cgroups():
    b = Bundle(['sh', '-c', 'ls /sys/fs/cgroup; cat /sys/fs/cgroup/pids/pids.max; '
                            'echo 5 > /sys/fs/cgroup/pids/pids.max 2>/dev/null && echo writable; true'])
    b.config['mounts'].append({'destination': '/sys/fs/cgroup', 'type': 'cgroup', 'source': 'cgroup',
                               'options': ['nosuid', 'noexec', 'nodev', 'relatime', 'ro']})
    b.linux['resources']['pids'] = {'limit': 77}
    b.write()
    out = ok_run(run(b)).split()
    for c in ('memory', 'pids', 'cpu', 'freezer'):
        if os.path.isdir(f'/sys/fs/cgroup/{c}'):
            contains(out, c, 'controllers')
    if os.path.isdir('/sys/fs/cgroup/pids'):
        contains(out, '77', 'the container\'s own pids cgroup')
    if 'writable' in out:
        raise AssertionError('ro cgroup mount is writable')


@test
def missing_rootfs_and_bad_mounts_leave_nothing():
    b = Bundle(['true'])
    b.config['root']['path'] = os.path.join(WORK, 'no-such-rootfs')
    b.write()
    fails_clean(b, 'root.path', 'no-such-rootfs', what='missing rootfs')
    b = Bundle(['true'])
    b.config['mounts'].append({'destination': '/x', 'type': 'bind', 'source': '/no/such/dir', 'options': ['bind']})
    b.write()
    fails_clean(b, "mount '/x'", '/no/such/dir', what='missing bind source')
    b = Bundle(['true'])
    b.config['mounts'].append({'destination': '/x', 'type': 'nosuchfs', 'source': 'none'})
    b.write()
    fails_clean(b, "mount '/x'", 'nosuchfs', what='unknown filesystem')
    # create (not run) fails the same way, and leaves nothing either.
    fails_clean(b, "mount '/x'", verb='create', what='create with a bad mount')


@test
def idmapped_bind_mounts():
    # The mapping converts ids of the source filesystem (containerID) into
    # those seen at the mount point (hostID): a root-owned file shows as 1000.
    host = tempfile.mkdtemp(dir=WORK)
    os.chmod(host, 0o755)
    open(os.path.join(host, 'owned-by-root'), 'w').close()
    b = Bundle(['sh', '-c', 'stat -c "%u:%g" /idm/owned-by-root /plain/owned-by-root'])
    b.config['mounts'] += [
        {'destination': '/idm', 'type': 'bind', 'source': host, 'options': ['bind'],
         'uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 1}],
         'gidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 1}]},
        {'destination': '/plain', 'type': 'bind', 'source': host, 'options': ['bind']},
    ]
    b.write()
    p = run(b)
    if p.returncode != 0 and 'idmap' in p.stderr and 'support' in p.stderr:
        raise Skip(f'no idmapped mounts on this filesystem: {p.stderr.strip()}')
    eq(ok_run(p).split(), ['1000:1000', '0:0'], 'owner through the idmapped mount and the plain one')
    b.config['mounts'][-2]['type'] = 'tmpfs'
    b.config['mounts'][-2]['options'] = []
    b.write()
    fails_clean(b, "mount '/idm'", 'bind mounts', what='idmap on a non-bind mount')


@test
def without_a_mount_namespace_nothing_is_mounted():
    b = Bundle(['sh', '-c', 'ls /bin/busybox; readlink /proc/self/ns/mnt 2>/dev/null || echo no-proc'])
    b.namespaces('pid', 'ipc', 'uts', 'network')
    for k in ('maskedPaths', 'readonlyPaths'):
        b.linux.pop(k)
    b.write()
    out = ok_run(run(b)).split()
    eq(out[0], '/bin/busybox', 'chrooted into the rootfs')
    eq(out[1], 'no-proc', 'no /proc mounted (nothing is mounted in the host\'s namespace)')
    eq(mounts_under(WORK), [], 'mounts in the host table')


@test
def symlinked_destination_stays_in_the_rootfs():
    b = Bundle(['sh', '-c', 'ls /escape'], own_rootfs=True)
    outside = tempfile.mkdtemp(dir=WORK)
    os.symlink(outside, os.path.join(b.dir, 'rootfs', 'escape'))
    b.config['mounts'].append({'destination': '/escape/inner', 'type': 'tmpfs', 'source': 'tmpfs'})
    b.config['root']['readonly'] = False
    b.write()
    ok_run(run(b))
    if os.path.exists(os.path.join(outside, 'inner')):
        raise AssertionError('a mount destination followed a symlink out of the rootfs')


# ---- issue 16 item 9: mounts and process setup as runc does them ----

def with_runc(b, extra=()):
    """(ours, runc's) runs of one bundle; runc's only where it is installed."""
    ours = run(b, extra=extra)
    theirs = runc('run', *extra, '--bundle', b.dir, unique_id('runc')) if RUNC else None
    return ours, theirs


@test
def proc_or_sys_on_a_symlink_is_refused():
    # A /proc that is a symlink in the rootfs was followed (the way around
    # AppArmor of CVE-2023-28642): refused, in runc 1.1.5's words.
    for dest, fstype in (('proc', 'proc'), ('sys', 'sysfs')):
        b = Bundle(['true'], own_rootfs=True)
        rootfs = b.config['root']['path']
        os.rmdir(os.path.join(rootfs, dest))
        os.symlink('/tmp', os.path.join(rootfs, dest))
        words = f'filesystem "{fstype}" must be mounted on ordinary directory'
        err = fails_clean(b, what=f'/{dest} a symlink')
        contains(err.replace('\\"', '"'), words, f'/{dest} a symlink')
        if RUNC:
            contains(fails(runc('run', '--bundle', b.dir, unique_id('runc'))).replace('\\"', '"'), words, 'runc')


@test
def a_read_only_dev_still_gets_pts_shm_and_nodes():
    b = Bundle(['sh', '-c', 'ls /dev; grep " /dev" /proc/self/mounts | cut -d" " -f2-4'])
    b.config['mounts'][1]['options'].append('ro')
    b.write()
    ours, theirs = with_runc(b)
    out = ok_run(ours, 'run with a read-only /dev')
    for name in ('pts', 'shm', 'null', 'zero', 'urandom', 'ptmx', 'fd'):
        contains(out.split(), name, 'in the read-only /dev')
    contains(out, '/dev tmpfs ro,', '/dev mounted read-only in the end')
    if theirs:
        eq(out, ok_run(theirs, 'runc'), 'as runc makes it')


@test
def no_pivot_hides_the_hosts_procfs():
    # With --no-pivot the host's /proc stays in the container's mount
    # namespace; fully visible, it let a nested user namespace mount a
    # fresh, unmasked procfs.  runc detaches it first: so do we.
    b = Bundle(['sh', '-c', 'mkdir -p /tmp/p; unshare -r -m -p -f sh -c '
                            '"mount -t proc proc /tmp/p 2>/dev/null && echo mounted || echo refused"'])
    b.config['root']['readonly'] = False
    for k in ('bounding', 'effective', 'permitted'):
        b.process['capabilities'][k].append('CAP_SETFCAP')  # to map uid 0 in the nested namespace
    b.write()
    for extra in ((), ('--no-pivot',)):
        ours, theirs = with_runc(b, extra)
        eq(ok_run(ours, f'run {extra}').strip(), 'refused', f'nested procfs mount {extra}')
        if theirs:
            eq(ok_run(theirs).strip(), 'refused', f'runc {extra}')


@test
def user_namespace_binds_a_source_its_user_cannot_reach():
    # The bind source lies in a directory only the host's root may enter:
    # opened on the host side first, as runc does.
    private = tempfile.mkdtemp(dir=WORK)
    os.chmod(private, 0o700)
    host = os.path.join(private, 'data')
    os.makedirs(host)
    with open(os.path.join(host, 'hello'), 'w') as f:
        f.write('hi\n')
    os.chmod(WORK, 0o755)
    b = Bundle(['cat', '/data/hello'], own_rootfs=True)
    os.chmod(b.dir, 0o755)
    subprocess.run(['chown', '-R', '100000:100000', b.config['root']['path']], check=True)
    b.config['mounts'] = [m for m in b.config['mounts'] if m['destination'] != '/sys']
    b.config['mounts'].append({'destination': '/data', 'type': 'bind', 'source': host, 'options': ['rbind', 'ro']})
    b.linux['namespaces'].append({'type': 'user'})
    b.linux['uidMappings'] = [{'containerID': 0, 'hostID': 100000, 'size': 65536}]
    b.linux['gidMappings'] = [{'containerID': 0, 'hostID': 100000, 'size': 65536}]
    b.linux['resources'] = {}
    b.write()
    ours, theirs = with_runc(b)
    eq(ok_run(ours, 'run'), 'hi\n', 'the bind source read in the container')
    if theirs:
        eq(ok_run(theirs, 'runc'), 'hi\n', 'runc')


@test
def cwd_is_entered_with_privilege_first():
    # /root (0700) as uid 1000 without capabilities: root's chdir works, the
    # user's would not; runc starts the process there, and so must we.
    b = Bundle(['pwd'], own_rootfs=True)
    os.chmod(os.path.join(b.config['root']['path'], 'root'), 0o700)
    b.process['user'] = {'uid': 1000, 'gid': 1000}
    b.process['cwd'] = '/root'
    b.process['capabilities'] = {}
    b.write()
    ours, theirs = with_runc(b)
    eq(ok_run(ours), '/root\n', 'cwd')
    if theirs:
        eq(ok_run(theirs), '/root\n', 'runc')


@test
def create_container_hooks_run_in_the_rootfs():
    out = tempfile.mkdtemp(dir=WORK)
    b = Bundle(['true'])
    b.config['hooks'] = {'createContainer': [{'path': '/bin/sh', 'args': ['sh', '-c', f'pwd > {out}/cwd']}]}
    b.write()
    ok_run(run(b))
    eq(open(os.path.join(out, 'cwd')).read().strip(), b.config['root']['path'], 'the hook\'s working directory')
    if RUNC:
        ok_run(runc('run', '--bundle', b.dir, unique_id('runc')))
        eq(open(os.path.join(out, 'cwd')).read().strip(), b.config['root']['path'], 'runc\'s')


if __name__ == '__main__':
    sys.exit(main())
