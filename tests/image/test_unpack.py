#!/usr/bin/env python3
"""casulo image unpack and the layer cache: the OCI layer rules
(whiteouts, opaque directories applied before the layer's own entries,
hard links, symlinks, xattrs, modes, owners, devices), confinement against
hostile layers, config.json from the image config, and umoci beside us."""
import json
import os
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from imagetest import (DEV, OPQ, RUNTIME, D, F, H, Image, L, W, busybox_tar, casulo, contains, eq, listing,  # noqa: E402
                       main, new_root, tar_bytes, test, tmpdir)


def import_and_unpack(img, name='localhost/unpack/test:1', expect_ok=True):
    root = new_root()
    layout = img.write_layout(tmpdir('layout'), '1')
    casulo('image', 'import', layout, name, root=root, check=True)
    bundle = os.path.join(tmpdir('bundle'), 'b')
    p = casulo('image', 'unpack', name, bundle, root=root)
    if expect_ok:
        eq(p.returncode, 0, f'unpack: {p.stderr}')
    return root, bundle, p


@test
def whiteouts_and_opaque_directories():
    base = tar_bytes([D('a'), F('a/keep', 'k'), F('a/gone', 'g'), D('d'), F('d/lower1', '1'), D('d/sub'),
                      F('d/sub/lower2', '2'), F('top', 't'), D('w'), F('w/x', 'x')])
    # The opaque marker comes after the layer's own entries in d: it must
    # still only hide what the layers below put there.
    upper = tar_bytes([W('a/gone'), F('d/new', 'n'), D('d/sub'), F('d/sub/mine', 'm'), OPQ('d'), W('w'),
                       F('w2', 'z')])
    _, bundle, _ = import_and_unpack(Image([base, upper]))
    r = os.path.join(bundle, 'rootfs')
    assert os.path.exists(f'{r}/a/keep') and not os.path.exists(f'{r}/a/gone'), 'plain whiteout'
    eq(sorted(os.listdir(f'{r}/d')), ['new', 'sub'], 'opaque: the lower entries of d are gone')
    eq(sorted(os.listdir(f'{r}/d/sub')), ['mine'], 'opaque reaches into a directory this layer re-declared')
    assert not os.path.exists(f'{r}/w'), 'a whiteout of a directory removes it whole'
    assert not [n for n in os.listdir(r) if n.startswith('.wh.')], 'no whiteout files left'
    # Opaque first, then the entries: the same result.
    upper2 = tar_bytes([OPQ('d'), F('d/new', 'n')])
    _, bundle, _ = import_and_unpack(Image([base, upper2]))
    eq(os.listdir(os.path.join(bundle, 'rootfs', 'd')), ['new'], 'opaque before the entries')


@test
def a_whiteout_does_not_hide_the_layers_own_file():
    _, bundle, _ = import_and_unpack(Image([tar_bytes([F('f', 'lower')]), tar_bytes([F('f', 'upper'), W('f')])]))
    eq(open(os.path.join(bundle, 'rootfs', 'f')).read(), 'upper', 'the whiteout applies to the lower layer only')


@test
def links_modes_owners_xattrs_devices():
    layer1 = tar_bytes([D('bin'), F('bin/tool', '#!/bin/sh\n', mode=0o4755), F('data', 'x' * 100, uid=1234, gid=5678),
                        F('sgid', 's', mode=0o2711), L('bin/sh-link', 'tool'), L('abs', '/bin/tool'),
                        F('attr', 'a', xattrs={'user.casulo': 'yes'}), DEV('null', 1, 3),
                        D('sticky', mode=0o1777), H('bin/tool-hard', 'bin/tool')])
    layer2 = tar_bytes([H('data-link', 'data'), F('bin/tool', 'replaced', mode=0o755)])
    _, bundle, _ = import_and_unpack(Image([layer1, layer2]))
    r = os.path.join(bundle, 'rootfs')
    st = os.lstat(f'{r}/bin/tool-hard')
    eq(stat.S_IMODE(st.st_mode), 0o4755, 'setuid kept (chmod after chown)')
    eq(open(f'{r}/bin/tool').read(), 'replaced', 'a later layer replaces the file')
    assert os.lstat(f'{r}/bin/tool').st_ino != st.st_ino, 'replacing does not write through the old hard link'
    d, dl = os.lstat(f'{r}/data'), os.lstat(f'{r}/data-link')
    eq((d.st_uid, d.st_gid), (1234, 5678), 'owner')
    eq(d.st_ino, dl.st_ino, 'hard link to a file of a lower layer')
    eq(stat.S_IMODE(os.lstat(f'{r}/sgid').st_mode), 0o2711, 'setgid')
    eq(os.readlink(f'{r}/bin/sh-link'), 'tool', 'relative symlink')
    eq(os.readlink(f'{r}/abs'), '/bin/tool', 'absolute symlink kept as written')
    try:
        eq(os.getxattr(f'{r}/attr', 'user.casulo'), b'yes', 'xattr')
    except OSError as e:
        if e.errno != 95:  # EOPNOTSUPP: the filesystem of /tmp
            raise
    nd = os.lstat(f'{r}/null')
    assert stat.S_ISCHR(nd.st_mode) and os.major(nd.st_rdev) == 1 and os.minor(nd.st_rdev) == 3, 'device as root'
    eq(stat.S_IMODE(os.lstat(f'{r}/sticky').st_mode), 0o1777, 'sticky directory')


HOST_DIR = None


def host_canary():
    """A host directory and file an attack would aim at."""
    d = tmpdir('host-canary')
    with open(os.path.join(d, 'file'), 'w') as f:
        f.write('untouched')
    return d


def assert_untouched(d):
    eq(sorted(os.listdir(d)), ['file'], f'nothing new in {d}')
    eq(open(os.path.join(d, 'file')).read(), 'untouched', 'the host file is untouched')


@test
def dot_dot_entries_are_refused():
    canary = host_canary()
    rel = os.path.relpath(canary, '/')
    for entries in ([F('../../../../../../../../' + rel + '/evil', 'x')],
                    [F('ok/../../../../../../../../' + rel + '/evil', 'x')],
                    [F('f', 'x'), H('h', '../../../../../../../../' + rel + '/file')]):
        _, bundle, p = import_and_unpack(Image([tar_bytes(entries)]), expect_ok=False)
        eq(p.returncode, 1, 'refused')
        contains(p.stderr, 'leaves the rootfs', 'says why')
        assert not os.path.exists(os.path.join(bundle, 'rootfs')), 'a failed unpack leaves no rootfs'
        assert_untouched(canary)


@test
def symlinks_planted_by_a_lower_layer_stay_inside():
    canary = host_canary()
    layer1 = tar_bytes([L('abs', canary), L('rel', '../../../../../../../../' + canary.lstrip('/')),
                        L('file-link', canary + '/file'), D('tmp')])
    # Writes through the directory symlinks resolve inside the rootfs; a
    # file entry over a symlink replaces the link itself.
    layer2 = tar_bytes([F('abs/planted', 'a'), F('rel/planted2', 'b'), F('file-link', 'replaced')])
    _, bundle, _ = import_and_unpack(Image([layer1, layer2]))
    r = os.path.join(bundle, 'rootfs')
    assert_untouched(canary)
    eq(open(os.path.join(r, canary.lstrip('/'), 'planted')).read(), 'a', 'absolute link resolved in the rootfs')
    eq(open(os.path.join(r, canary.lstrip('/'), 'planted2')).read(), 'b', 'relative link clamped at the root')
    assert not os.path.islink(f'{r}/file-link'), 'the symlink was replaced, not written through'


@test
def a_symlink_replaced_by_a_directory_in_a_later_layer():
    canary = host_canary()
    layer1 = tar_bytes([L('d', canary)])
    layer2 = tar_bytes([D('d'), F('d/file', 'mine')])
    _, bundle, _ = import_and_unpack(Image([layer1, layer2]))
    r = os.path.join(bundle, 'rootfs')
    assert os.path.isdir(f'{r}/d') and not os.path.islink(f'{r}/d'), 'the directory replaced the link'
    eq(open(f'{r}/d/file').read(), 'mine', 'written into the new directory')
    assert_untouched(canary)


@test
def hard_links_cannot_reach_outside():
    canary = host_canary()
    before = os.stat(os.path.join(canary, 'file')).st_nlink
    # An absolute target is a path in the rootfs; through a symlink too.
    for layers in ([tar_bytes([H('h', canary + '/file')])],
                   [tar_bytes([L('s', canary)]), tar_bytes([H('h', 's/file')])]):
        _, bundle, p = import_and_unpack(Image(layers), expect_ok=False)
        eq(p.returncode, 1, 'no such target inside the rootfs')
        contains(p.stderr, 'hard link target', 'says which target')
        eq(os.stat(os.path.join(canary, 'file')).st_nlink, before, 'no link to the host file')
        assert_untouched(canary)


@test
def bundle_config_from_the_image_config():
    rootfs = tar_bytes([
        F('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n'),
        F('etc/group', 'root:x:0:\napp:x:1000:\nextra:x:2000:app\nother:x:3000:root\n'),
        D('home/app', uid=1000, gid=1000), D('work')])
    img = Image([busybox_tar(), rootfs], config={
        'Entrypoint': ['/bin/sh', '-c'], 'Cmd': ['id; pwd; echo $GREETING'], 'WorkingDir': '/work',
        'User': 'app', 'Env': ['PATH=/bin:/usr/bin', 'GREETING=hello']})
    root, bundle, _ = import_and_unpack(img)
    cfg = json.load(open(os.path.join(bundle, 'config.json')))
    proc = cfg['process']
    eq(proc['args'], ['/bin/sh', '-c', 'id; pwd; echo $GREETING'], 'Entrypoint + Cmd')
    eq(proc['cwd'], '/work', 'WorkingDir')
    eq(proc['user'], {'uid': 1000, 'gid': 1000, 'additionalGids': [2000]}, 'User by name, groups that list it')
    assert 'GREETING=hello' in proc['env'] and 'PATH=/bin:/usr/bin' in proc['env'], proc['env']
    eq(cfg['root'], {'path': 'rootfs', 'readonly': False}, 'root')
    # casulo-runtime runs it.
    p = subprocess.run([RUNTIME, '--root', tmpdir('state'), 'run', '--bundle', bundle, 'unpack-test'],
                       capture_output=True, text=True, timeout=60)
    eq(p.returncode, 0, f'casulo-runtime run: {p.stderr}')
    lines = p.stdout.splitlines()
    contains(lines[0], 'uid=1000(app) gid=1000(app) groups=', 'id in the container')
    contains(lines[0], '2000(extra)', 'the supplementary group')
    eq(lines[1:], ['/work', 'hello'], 'cwd and env')


@test
def user_forms_and_errors():
    passwd = 'root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/:/bin/false\n'
    group = 'root:x:0:\nwww:x:33:\nstaff:x:50:web\n'
    base = [busybox_tar(), tar_bytes([F('etc/passwd', passwd), F('etc/group', group)])]
    cases = [('web:staff', {'uid': 33, 'gid': 50}), ('33:50', {'uid': 33, 'gid': 50}),
             ('4000', {'uid': 4000, 'gid': 0}), ('', {'uid': 0, 'gid': 0}), ('web', {'uid': 33, 'gid': 33,
                                                                                   'additionalGids': [50]})]
    for user, want in cases:
        _, bundle, _ = import_and_unpack(Image(base, config={'User': user}))
        eq(json.load(open(os.path.join(bundle, 'config.json')))['process']['user'], want, f'User {user!r}')
    _, bundle, p = import_and_unpack(Image(base, config={'User': 'nobody-here'}), expect_ok=False)
    eq(p.returncode, 1, 'unknown user')
    contains(p.stderr, "user 'nobody-here': not found in the image's /etc/passwd", 'says so')
    _, bundle, p = import_and_unpack(Image(base, config={'User': 'web:nogroup'}), expect_ok=False)
    contains(p.stderr, "group 'nogroup': not found in the image's /etc/group", 'unknown group')


@test
def same_rootfs_as_umoci():
    if shutil.which('umoci') is None:
        from imagetest import Skip
        raise Skip('umoci is not installed')
    base = tar_bytes([D('a'), F('a/keep', 'k'), F('a/gone', 'g'), D('d'), F('d/lower', '1'), F('x', 'x', uid=7),
                      F('s', 's', mode=0o4750), L('l', '/a/keep')])
    upper = tar_bytes([W('a/gone'), F('d/new', 'n'), OPQ('d'), H('x-link', 'x'), F('zz', 'z' * 5000)])
    img = Image([busybox_tar(), base, upper])
    _, bundle, _ = import_and_unpack(img)
    layout = img.write_layout(tmpdir('umoci-layout'), 'latest')
    ub = os.path.join(tmpdir('umoci'), 'b')
    p = subprocess.run(['umoci', 'unpack', '--image', f'{layout}:latest', ub], capture_output=True, text=True)
    eq(p.returncode, 0, f'umoci unpack: {p.stderr}')
    ours, theirs = listing(os.path.join(bundle, 'rootfs')), listing(os.path.join(ub, 'rootfs'))
    diff = [k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)]
    eq(sorted(diff), [], 'the same paths, modes, owners, sizes and contents')


@test
def run_uses_an_overlay_of_cached_layers():
    img = Image([busybox_tar(), tar_bytes([F('etc/motd', 'from the image\n'), D('d'), F('d/lower', 'l')]),
                 tar_bytes([OPQ('d'), F('d/upper', 'u'), W('etc/motd')])],
                config={'Cmd': ['sh', '-c', 'grep " / " /proc/mounts | cut -d" " -f3; ls /d; '
                                'test -e /etc/motd || echo motd-gone; echo changed > /written']})
    root = new_root()
    casulo('image', 'import', img.write_layout(tmpdir('layout'), '1'), 'localhost/run/overlay:1', root=root, check=True)
    p = casulo('run', '--name', 'ov1', 'localhost/run/overlay:1', root=root)
    eq(p.returncode, 0, f'run: {p.stderr}')
    eq(p.stdout.split(), ['overlay', 'upper', 'motd-gone'], 'overlay rootfs with the whiteouts applied')
    layers = os.listdir(os.path.join(root, 'layers'))
    eq(len(layers), 3, 'three cached layers')
    upper = os.path.join(root, 'containers', 'ov1', 'upper')
    eq(open(os.path.join(upper, 'written')).read(), 'changed\n', 'writes land in the container\'s upper dir')
    for layer in layers:
        assert not os.path.exists(os.path.join(root, 'layers', layer, 'written')), 'the cache is not written'
    # A second container shares the cache; --rm leaves nothing.
    p = casulo('run', '--rm', '--name', 'ov2', 'localhost/run/overlay:1', 'cat', '/written', root=root)
    eq(p.returncode, 1, 'the first container\'s write is not seen')
    assert not os.path.exists(os.path.join(root, 'containers', 'ov2')), '--rm removed the container'
    eq(len(os.listdir(os.path.join(root, 'layers'))), 3, 'no new layer')
    # prune keeps layers of images and of kept containers
    casulo('image', 'prune', root=root, check=True)
    eq(len(os.listdir(os.path.join(root, 'layers'))), 3, 'prune keeps used layers')


if __name__ == '__main__':
    sys.exit(main())
