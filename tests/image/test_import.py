#!/usr/bin/env python3
"""casulo image import, export, tag, rm, prune: OCI layouts, OCI
archives, docker archives (ours and podman's), verified blobs."""
import json
import os
import shutil
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(__file__))
from imagetest import (Image, Skip, busybox_image, busybox_tar, casulo, contains, eq, listing, main,  # noqa: E402
                       make_rootfs, new_root, store_consistent, tar_bytes, F, test, tmpdir)


def unpacked(root, name):
    b = os.path.join(tmpdir('bundle'), 'b')
    casulo('image', 'unpack', name, b, root=root, check=True)
    return listing(os.path.join(b, 'rootfs'))


@test
def import_layout_archive_and_docker_archive():
    img = Image([busybox_tar(), tar_bytes([F('hello', 'world')])], config={'Cmd': ['cat', '/hello']})
    root = new_root()
    layout = img.write_layout(os.path.join(tmpdir('src'), 'My_Layout'), 'v1')
    p = casulo('image', 'import', layout, root=root, check=True)
    eq(p.stdout.strip(), 'localhost/my_layout:v1', 'a bare tag in ref.name names the image after the layout')
    archive = img.write_oci_archive(os.path.join(tmpdir('src'), 'img.tar'), 'v2')
    casulo('image', 'import', archive, 'example.com/team/app:2', root=root, check=True)
    docker = img.write_docker_archive(os.path.join(tmpdir('src'), 'docker.tar'), ['app:3'])
    p = casulo('image', 'import', docker, root=root, check=True)
    eq(p.stdout.strip(), 'docker.io/library/app:3', 'RepoTags, normalized')
    names = casulo('image', 'ls', '-q', root=root, check=True).stdout.split()
    eq(sorted(names), ['docker.io/library/app:3', 'example.com/team/app:2', 'localhost/my_layout:v1'], 'ls')
    a, b, c = (unpacked(root, n) for n in names)
    eq(a, b, 'same rootfs from the layout and the OCI archive')
    eq(a, c, 'and from the docker archive')
    store_consistent(root)
    # docker-archive layers are uncompressed: diff_id == digest
    doc = json.loads(casulo('image', 'inspect', 'app:3', root=root, check=True).stdout)
    eq([x['digest'] for x in doc['manifest']['layers']], [x['diff_id'] for x in img.layers], 'layer digests')


@test
def tampered_and_truncated_blobs_in_a_layout_are_refused():
    img = busybox_image()
    for how in ('flip', 'truncate'):
        layout = img.write_layout(tmpdir('bad-layout'), 'bad')
        path = os.path.join(layout, 'blobs', 'sha256', img.layers[0]['digest'].split(':')[1])
        data = bytearray(open(path, 'rb').read())
        if how == 'flip':
            data[100] ^= 1
        else:
            data = data[:1000]
        open(path, 'wb').write(data)
        root = new_root()
        p = casulo('image', 'import', layout, 'localhost/bad:1', root=root)
        eq(p.returncode, 1, f'{how}: refused')
        contains(p.stderr, img.layers[0]['digest'], 'names the blob')
        contains(p.stderr, 'digest mismatch' if how == 'flip' else 'size mismatch', 'says what is wrong')
        eq(casulo('image', 'ls', '-q', root=root).stdout, '', 'no name')
        store_consistent(root)
    # The same inside an OCI archive.
    archive = img.write_oci_archive(os.path.join(tmpdir('src'), 'bad.tar'))
    work = tmpdir('retar')
    with tarfile.open(archive) as t:
        t.extractall(work)
    path = os.path.join(work, 'blobs', 'sha256', img.layers[0]['digest'].split(':')[1])
    data = bytearray(open(path, 'rb').read())
    data[10] ^= 1
    open(path, 'wb').write(data)
    with tarfile.open(archive, 'w') as t:
        for n in ('oci-layout', 'index.json', 'blobs'):
            t.add(os.path.join(work, n), arcname=n)
    p = casulo('image', 'import', archive, 'localhost/bad:2', root=new_root())
    contains(p.stderr, 'digest mismatch', 'archive blob checked against its name')


@test
def garbage_input_gets_one_clear_line():
    junk = os.path.join(tmpdir('junk'), 'junk.tar')
    open(junk, 'wb').write(os.urandom(3000))
    p = casulo('image', 'import', junk, root=new_root())
    eq(p.returncode, 1, 'refused')
    eq(len(p.stderr.strip().splitlines()), 1, f'one line: {p.stderr}')
    layout = busybox_image().write_layout(tmpdir('broken'), 'x')
    open(os.path.join(layout, 'index.json'), 'w').write('{"schemaVersion": 2, "manifests": [{"digest": 5}]}')
    p = casulo('image', 'import', layout, root=new_root())
    contains(p.stderr, 'manifests[0].mediaType: missing', 'names the field')


@test
def export_round_trip_and_peers_read_it():
    img = Image([busybox_tar(), tar_bytes([F('x', 'y')])])
    root = new_root()
    casulo('image', 'import', img.write_layout(tmpdir('l'), '7'), 'localhost/round/trip:7', root=root, check=True)
    out = os.path.join(tmpdir('export'), 'layout')
    casulo('image', 'export', 'localhost/round/trip:7', out, root=root, check=True)
    root2 = new_root()
    casulo('image', 'import', out, 'localhost/back:7', root=root2, check=True)
    d1 = json.loads(casulo('image', 'inspect', 'localhost/round/trip:7', root=root, check=True).stdout)['digest']
    d2 = json.loads(casulo('image', 'inspect', 'localhost/back:7', root=root2, check=True).stdout)['digest']
    eq(d1, d2, 'the same manifest digest after export and import')
    if shutil.which('skopeo'):
        p = subprocess.run(['skopeo', 'inspect', f'oci:{out}:7'], capture_output=True, text=True)
        eq(p.returncode, 0, f'skopeo reads our layout: {p.stderr}')
    if shutil.which('umoci'):
        p = subprocess.run(['umoci', 'unpack', '--image', f'{out}:7', os.path.join(tmpdir('u'), 'b')],
                           capture_output=True, text=True)
        eq(p.returncode, 0, f'umoci unpacks our layout: {p.stderr}')


@test
def tag_rm_prune():
    root = new_root()
    img = busybox_image()
    casulo('image', 'import', img.write_layout(tmpdir('l'), '1'), 'localhost/a:1', root=root, check=True)
    p = casulo('image', 'tag', 'localhost/a:1', 'b:2', root=root, check=True)
    eq(p.stdout.strip(), 'docker.io/library/b:2', 'tag prints the new name')
    digest = json.loads(casulo('image', 'inspect', 'b:2', root=root, check=True).stdout)['digest']
    eq(json.loads(casulo('image', 'inspect', digest[7:19], root=root, check=True).stdout)['digest'], digest,
       'found by a digest prefix')
    casulo('image', 'rm', 'localhost/a:1', root=root, check=True)
    p = casulo('image', 'prune', '--json', root=root, check=True)
    eq(json.loads(p.stdout)['blobs'], 0, 'b:2 still holds the blobs')
    casulo('image', 'rm', 'b:2', root=root, check=True)
    p = casulo('image', 'prune', '--json', root=root, check=True)
    eq(json.loads(p.stdout)['blobs'], 3, 'manifest, config, layer freed')
    eq(os.listdir(os.path.join(root, 'store', 'blobs', 'sha256')), [], 'empty store')
    p = casulo('image', 'rm', 'b:2', root=root)
    eq(p.returncode, 1, 'rm of a missing name')
    contains(p.stderr, "not in the store", 'says so')


@test
def podman_save_archive_imports_and_runs():
    if shutil.which('podman') is None:
        raise Skip('podman is not installed')
    rootfs = make_rootfs(tmpdir('podman-rootfs'))
    tar = os.path.join(tmpdir('podman'), 'rootfs.tar')
    with tarfile.open(tar, 'w') as t:
        t.add(rootfs, arcname='.')
    name = f'localhost/casulo-image-test:{os.getpid()}'
    p = subprocess.run(['podman', 'import', tar, name], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise Skip(f'podman import failed here: {p.stderr.strip()[-200:]}')
    try:
        archive = os.path.join(tmpdir('podman'), 'saved.tar')
        p = subprocess.run(['podman', 'save', '--format', 'docker-archive', '-o', archive, name],
                           capture_output=True, text=True, timeout=120)
        eq(p.returncode, 0, f'podman save: {p.stderr}')
        root = new_root()
        p = casulo('image', 'import', archive, root=root, check=True)
        eq(p.stdout.strip(), name, 'the RepoTags of podman save')
        p = casulo('run', '--rm', name, 'sh', '-c', 'echo from-podman-save', root=root)
        eq((p.returncode, p.stdout.strip()), (0, 'from-podman-save'), f'runs: {p.stderr}')
    finally:
        subprocess.run(['podman', 'rmi', '-f', name], capture_output=True)


if __name__ == '__main__':
    sys.exit(main())
