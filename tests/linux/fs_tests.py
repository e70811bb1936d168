#!/usr/bin/python3
"""The `linux` suite's virtio-fs tests: a host directory shared with the
default guest (--fs), which loads fuse and virtiofs from its initramfs and
mounts it.

One process, TAP output, one lab boot where the host has no hardware
virtualization (meson runs it through tests/lab/run).  Each test writes a
shell script into the shared directory, boots the default guest (with
tests/guest-tools' archive appended: guest-tool) to mount the share and
run it, then checks what the guest printed and what is in the directory
on the host once the VM has exited.

usage: fs_tests.py --vmm build/casulo-vmm --guest build/guest
                   --tools build/tests/guest-tools/guest-tools.cpio [--filter SUBSTR]
"""
import hashlib
import os
import re
import shutil
import stat
import sys

import device_tests
from device_tests import wait_for
from guest_tests import api_put, check

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Share:
    """A test's directory tree: share/ (what the guest gets) beside
    outside/ (what it must never reach)."""

    def __init__(self, g):
        self.g = g
        self.root = g.path('share')
        self.outside = g.path('outside')
        os.makedirs(self.root)
        os.makedirs(self.outside)

    def path(self, rel):
        return os.path.join(self.root, rel)

    def write(self, rel, data, mode=0o644):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb' if isinstance(data, bytes) else 'w') as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    def read(self, rel):
        with open(self.path(rel), 'rb') as f:
            return f.read()

    def run(self, script, tag='share', readonly=False, extra=()):
        """Mount the share at /mnt in the guest and run script (sh) from it."""
        self.write('.test.sh', script)
        spec = 'tag=%s,path=%s%s' % (tag, self.root, ',readonly=on' if readonly else '')
        # A copy runs, so that the share can be unmounted under it.
        return self.g.run('mount -t virtiofs %s /mnt && cp /mnt/.test.sh /tmp && sh /tmp/.test.sh' % tag,
                          extra=['--fs', spec, '--memory', '512M'] + list(extra))


def guest_tool(g):
    return os.path.join(os.path.dirname(g.tools), 'guest-tool')


@test
def fs_guest_reads_writes_and_runs_from_the_share(g):
    s = Share(g)
    s.write('hello.txt', 'hello, guest\n')
    s.write('sub/dir/deep.txt', 'deep\n')
    s.write('delete-me', 'x')
    s.write('mapped', b'........' * 1024)
    big = os.urandom(3 << 20)
    s.write('big.bin', big)
    shutil.copy(guest_tool(g), s.path('tool'))
    os.chmod(s.path('tool'), 0o755)
    p = s.run('''set -e
cd /mnt
ls -la
cat hello.txt sub/dir/deep.txt
echo BIG=$(sha256sum big.bin)
echo new > created.txt
mkdir newdir
mv created.txt newdir/moved.txt
chown 1234:5678 newdir/moved.txt
chmod 640 newdir/moved.txt
rm delete-me
echo appended >> hello.txt
ln -s hello.txt link
ln hello.txt hard
dd if=/dev/zero of=zeros bs=64k count=32 2>/dev/null
./tool mmap-write mapped MAPPED
./tool memtouch 1 && echo TOOL-RAN
echo STAT=$(stat -c %s:%h zeros hello.txt)
cd /
umount /mnt
echo UNMOUNTED
''')
    check(p.returncode == 0, 'exit %d: %r; stderr %r' % (p.returncode, p.out[-1500:], p.err[-500:]))
    for want in ('hello, guest', 'deep', 'TOOL-RAN', 'replaced: ......', 'UNMOUNTED'):
        check(want in p.out, 'no %r in the guest output: %r' % (want, p.out[-1500:]))
    check('BIG=%s' % hashlib.sha256(big).hexdigest() in p.out, 'the guest read big.bin differently')
    check('STAT=%d:1 22:2' % (2 << 20) in p.out, 'sizes and links seen in the guest: %r' % p.out[-400:])
    # What the guest did is on the host once the VM is gone.
    check(s.read('newdir/moved.txt') == b'new\n', 'newdir/moved.txt: %r' % s.read('newdir/moved.txt'))
    st = os.lstat(s.path('newdir/moved.txt'))
    check((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o640),
          'moved.txt: owner %d:%d mode %o' % (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)))
    check(not os.path.exists(s.path('created.txt')) and not os.path.exists(s.path('delete-me')),
          'renamed or removed files are still there')
    check(s.read('hello.txt') == b'hello, guest\nappended\n', 'hello.txt: %r' % s.read('hello.txt'))
    check(os.readlink(s.path('link')) == 'hello.txt', 'link points to %r' % os.readlink(s.path('link')))
    check(os.stat(s.path('hard')).st_ino == os.stat(s.path('hello.txt')).st_ino, 'hard is not a hard link')
    check(s.read('zeros') == bytes(2 << 20), 'zeros is not 2 MiB of zeros')
    check(s.read('mapped').startswith(b'MAPPED..'), 'the shared mapping did not reach the file: %r'
          % s.read('mapped')[:16])
    check(s.read('big.bin') == big, 'big.bin changed')
    st = os.lstat(s.path('zeros'))
    check(st.st_uid == 0, 'a file the guest root created belongs to %d' % st.st_uid)


@test
def fs_readonly_share_refuses_writes(g):
    s = Share(g)
    s.write('hello.txt', 'read me\n')
    before = os.stat(s.path('hello.txt'))
    p = s.run('''cat /mnt/hello.txt
echo x > /mnt/new && echo WROTE-NEW
echo x >> /mnt/hello.txt && echo APPENDED
rm /mnt/hello.txt && echo REMOVED
mkdir /mnt/d && echo MADE-DIR
touch /mnt/hello.txt && echo TOUCHED
mv /mnt/hello.txt /mnt/moved && echo MOVED
echo RO-DONE
''', readonly=True)
    check(p.returncode == 0 and 'RO-DONE' in p.out, 'exit %d: %r' % (p.returncode, p.out[-800:]))
    check('read me' in p.out, 'could not read: %r' % p.out[-800:])
    for done in ('WROTE-NEW', 'APPENDED', 'REMOVED', 'MADE-DIR', 'TOUCHED', 'MOVED'):
        check(done not in p.out, 'a read-only share allowed %s: %r' % (done, p.out[-800:]))
    check(p.out.count('Read-only file system') >= 5, 'the refusals do not say EROFS: %r' % p.out[-800:])
    after = os.stat(s.path('hello.txt'))
    check(s.read('hello.txt') == b'read me\n' and after.st_mtime_ns == before.st_mtime_ns,
          'hello.txt changed on the host')
    check(sorted(os.listdir(s.root)) == ['.test.sh', 'hello.txt'], 'the share holds %r' % os.listdir(s.root))


@test
def fs_guest_cannot_see_outside_the_share(g):
    s = Share(g)
    with open(os.path.join(s.outside, 'secret.txt'), 'w') as f:
        f.write('HOST-SECRET-42\n')
    os.symlink(s.outside, s.path('abs'))  # an absolute path on the host
    os.symlink('../outside', s.path('rel'))
    os.mkdir(s.path('inside'))
    p = s.run('''ls -a /mnt
cat /mnt/abs/secret.txt /mnt/rel/secret.txt /mnt/../outside/secret.txt /mnt/inside/../../outside/secret.txt
ls /mnt/abs/ /mnt/rel/
cd /mnt/inside && cd ../.. && pwd && ls
echo pwned > /mnt/rel/secret.txt
ln -s /etc/hostname /mnt/evil && echo guest > /mnt/evil
readlink /mnt/abs; readlink /mnt/rel
echo CONFINED-DONE
''')
    check(p.returncode == 0 and 'CONFINED-DONE' in p.out, 'exit %d: %r' % (p.returncode, p.out[-800:]))
    check('HOST-SECRET-42' not in p.out, 'the guest read a file outside the share: %r' % p.out[-800:])
    # The links are only text: the guest resolved them in its own tree.
    check(s.outside in p.out and '../outside' in p.out, 'readlink: %r' % p.out[-800:])
    with open(os.path.join(s.outside, 'secret.txt')) as f:
        check(f.read() == 'HOST-SECRET-42\n', 'the file outside the share changed')
    check(sorted(os.listdir(s.outside)) == ['secret.txt'], 'outside/ holds %r' % os.listdir(s.outside))
    check(os.readlink(s.path('evil')) == '/etc/hostname', 'evil is not the guest-made symlink')


@test
def fs_directory_of_many_files(g):
    s = Share(g)
    p = s.run('''mkdir /mnt/many && cd /mnt/many
i=0
while [ $i -lt 300 ]; do echo $i > f$i; i=$((i + 1)); done
echo COUNT=$(ls | wc -l) SUM=$(cat f299 f7)
cd / && rm -r /mnt/many/f1* && echo LEFT=$(ls /mnt/many | wc -l)
''')
    check(p.returncode == 0, 'exit %d: %r' % (p.returncode, p.out[-800:]))
    check('COUNT=300 SUM=299 7' in p.out, 'listing: %r' % p.out[-800:])
    m = re.search(r'LEFT=(\d+)', p.out)
    names = os.listdir(s.path('many'))
    check(m and int(m.group(1)) == len(names) == 300 - 111, 'after rm: guest %r, host %d files'
          % (m and m.group(1), len(names)))
    check(sorted(int(n[1:]) for n in names) == [i for i in range(300) if not str(i).startswith('1')],
          'the host has other files than the guest left')


@test
def fs_two_shares_and_a_bad_one(g):
    s = Share(g)
    other = g.path('other')
    os.makedirs(other)
    with open(os.path.join(other, 'b.txt'), 'w') as f:
        f.write('from the second share\n')
    p = s.run('''mkdir -p /b && mount -t virtiofs second /b && cat /b/b.txt && echo b-done > /b/c.txt
grep virtiofs /proc/mounts
''', extra=['--fs', 'tag=second,path=%s' % other])
    check(p.returncode == 0 and 'from the second share' in p.out, 'exit %d: %r' % (p.returncode, p.out[-800:]))
    check(open(os.path.join(other, 'c.txt')).read() == 'b-done\n', 'the second share did not get c.txt')
    check(len(re.findall(r'^\S+ /(mnt|b) virtiofs ', p.out, re.M)) == 2, '/proc/mounts: %r' % p.out[-500:])
    # A directory that is not there: a one-line error before anything boots.
    p = g.run('true', extra=['--fs', 'tag=x,path=%s' % g.path('missing')])
    check(p.returncode == 1, 'exit %d for a missing directory' % p.returncode)
    check(re.match(r"casulo-vmm: virtio-fs 'x': directory '.*missing': No such file or directory\n$", p.err),
          'error %r' % p.err)


@test
def fs_snapshot_and_migration_are_refused(g):
    s = Share(g)
    s.write('.test.sh', 'echo FS-READY; sleep 600\n')
    api = g.path('api.sock')
    with g.start('mount -t virtiofs share /mnt && sh /mnt/.test.sh',
                 extra=['--fs', 'tag=share,path=' + s.root, '--api-socket', api,
                        '--landlock', 'on', '--snapshot-dir', os.path.dirname(g.path('snap'))]) as vm:
        vm.expect(b'FS-READY')
        status, body = api_put(api, '/snapshot/create', {'path': g.path('snap')})
        check(status == 409, 'snapshot: HTTP %d %r' % (status, body))
        check("virtio-fs 'share'" in body['error'] and 'cannot be saved or moved' in body['error'],
              'snapshot error: %r' % body)
        check(not os.path.exists(g.path('snap')), 'a refused snapshot left its directory')
        status, body = api_put(api, '/migration/send', {'destination': 'tcp:127.0.0.1:9'})
        check(status == 409 and body['error'].startswith("migration: virtio-fs 'share'"),
              'migration: HTTP %d %r' % (status, body))
        # The VM goes on running and serving its share.
        status, _ = api_put(api, '/vm/state', {'state': 'paused'})
        check(status == 204, 'pause: HTTP %d' % status)
        status, _ = api_put(api, '/vm/state', {'state': 'running'})
        check(status == 204, 'resume: HTTP %d' % status)
        wait_for('the VM to still run', lambda: vm.p.poll() is None, 1)


def why_skip(args):
    with open(os.path.join(args.guest, 'manifest')) as f:
        if 'virtiofs' not in f.read():
            return 'the default guest has no virtiofs module (rebuild it: make guest)'
    return None


def main():
    # On tmpfs, not the lab's 9p root: the share is served as a real directory would be.
    return device_tests.main(TESTS, why_skip, '/dev/shm' if os.path.isdir('/dev/shm') else None)


if __name__ == '__main__':
    sys.exit(main())
