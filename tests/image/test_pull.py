#!/usr/bin/env python3
"""casulo image pull against a real registry (docker-registry on
loopback, filled with skopeo): schemes, auth, platforms, tampered and
truncated blobs, kill -9 in the middle of a pull, concurrent pulls."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from imagetest import (CASULO, F, Image, Registry, StallingProxy, busybox_image, busybox_tar, casulo, contains, eq, main,  # noqa: E402
                       new_root, push_image, shared_registry, store_consistent, tar_bytes, test, tmpdir)


@test
def pull_from_loopback_registry_over_http():
    ref = push_image(busybox_image(config={'Cmd': ['echo', 'hello']}), 'pull/plain', tag='1.0')
    root = new_root()
    p = casulo('image', 'pull', ref, root=root, check=True)
    name, digest = p.stdout.split()
    eq(name, ref, 'canonical name printed')
    assert digest.startswith('sha256:'), digest
    contains(p.stderr, 'pull ', 'progress lines when stderr is not a terminal')
    p = casulo('image', 'ls', '--json', root=root, check=True)
    images = json.loads(p.stdout)
    eq([i['name'] for i in images], [ref], 'ls')
    eq(images[0]['layers'], 1, 'one layer')
    p = casulo('image', 'inspect', ref, root=root, check=True)
    doc = json.loads(p.stdout)
    eq(doc['config']['config']['Cmd'], ['echo', 'hello'], 'inspect shows the config')
    eq(doc['digest'], digest, 'inspect digest')
    store_consistent(root)
    # A second pull finds everything there.
    p = casulo('image', 'pull', '--json', ref, root=root, check=True)
    events = [json.loads(line) for line in p.stdout.splitlines()]
    eq(sorted(e['event'] for e in events if e.get('action') == 'pull'), ['exists', 'exists'], 'nothing downloaded')


@test
def pull_json_events_and_layer_formats():
    img = Image([(busybox_tar(), 'gzip'), (tar_bytes([F('zstd-file', 'z')]), 'zstd'),
                 (tar_bytes([F('plain-file', 'p')]), 'tar')])
    ref = push_image(img, 'pull/formats')
    root = new_root()
    p = casulo('image', 'pull', '--json', ref, root=root, check=True)
    events = [json.loads(line) for line in p.stdout.splitlines()]
    done = {e['digest'] for e in events if e['event'] == 'done'}
    eq(len(done), 4, 'config and three layers downloaded')
    assert any(e['event'] == 'pulled' and e['image'] == ref for e in events), events
    bundle = tmpdir('bundle')
    casulo('image', 'unpack', ref, bundle + '/b', root=root, check=True)
    eq(open(bundle + '/b/rootfs/zstd-file').read(), 'z', 'zstd layer')
    eq(open(bundle + '/b/rootfs/plain-file').read(), 'p', 'uncompressed layer')


@test
def pull_picks_the_platform_of_an_index():
    amd = busybox_image(config={'Cmd': ['echo', 'amd64']})
    arm = Image([tar_bytes([F('arm', 'yes')])], arch='arm64', config={'Cmd': ['echo', 'arm64']})
    layout = amd.write_layout(tmpdir('index-layout'), 'multi', extra_images=[arm],
                              index_platforms=['amd64', 'arm64'])
    reg = shared_registry()
    ref = reg.push(layout, 'multi', 'pull/multi:1')
    root = new_root()
    casulo('image', 'pull', ref, root=root, check=True)
    doc = json.loads(casulo('image', 'inspect', ref, root=root, check=True).stdout)
    eq(doc['config']['architecture'], 'amd64', 'this machine\'s platform by default')
    root2 = new_root()
    casulo('image', 'pull', '--platform', 'linux/arm64', ref, root=root2, check=True)
    doc = json.loads(casulo('image', 'inspect', ref, root=root2, check=True).stdout)
    eq(doc['config']['config']['Cmd'], ['echo', 'arm64'], '--platform linux/arm64')
    p = casulo('image', 'pull', '--platform', 'linux/s390x', ref, root=new_root())
    eq(p.returncode, 1, 'no such platform')
    contains(p.stderr, 'no manifest for linux/s390x (it has: linux/amd64, linux/arm64)', 'platforms listed')


@test
def pull_over_tls_needs_the_ca():
    reg = Registry(tls=True)
    try:
        ref = push_image(busybox_image(), 'tls/busybox', registry=reg)
        root = new_root()
        p = casulo('image', 'pull', ref, root=root)
        eq(p.returncode, 1, 'an unknown CA is refused')
        contains(p.stderr, 'certificate', 'the error names the certificate problem')
        contains(p.stderr, '--tls-ca', 'and the way out')
        casulo('image', 'pull', '--tls-ca', reg.ca, ref, root=root, check=True)
        store_consistent(root)
        p = casulo('image', 'pull', '--tls-ca', '/etc/hostname', ref, root=new_root())
        contains(p.stderr, 'no PEM certificate', 'a bad --tls-ca file')
    finally:
        reg.stop()


@test
def pull_with_basic_auth():
    reg = Registry(tls=True, htpasswd=('alice', 's3cret'))
    try:
        layout = busybox_image().write_layout(tmpdir('basic-layout'), 'latest')
        ref = reg.push(layout, 'latest', 'auth/basic:1', creds=('alice', 's3cret'))
        p = casulo('image', 'pull', '--tls-ca', reg.ca, ref, root=new_root())
        eq(p.returncode, 1, 'no credentials')
        contains(p.stderr, 'authentication required', 'says why')
        p = casulo('image', 'pull', '--tls-ca', reg.ca, '--creds', 'alice:wrong', ref, root=new_root())
        eq(p.returncode, 1, 'wrong password')
        contains(p.stderr, 'HTTP 401', 'refused')
        casulo('image', 'pull', '--tls-ca', reg.ca, '--creds', 'alice:s3cret', ref, root=new_root(), check=True)
        # The auth.json podman and docker write.
        authfile = os.path.join(tmpdir('auth'), 'auth.json')
        with open(authfile, 'w') as f:
            import base64
            json.dump({'auths': {reg.host: {'auth': base64.b64encode(b'alice:s3cret').decode()}}}, f)
        casulo('image', 'pull', '--tls-ca', reg.ca, '--authfile', authfile, ref, root=new_root(), check=True)
        casulo('image', 'pull', '--tls-ca', reg.ca, ref, root=new_root(), env={'REGISTRY_AUTH_FILE': authfile},
               check=True)
    finally:
        reg.stop()


@test
def pull_with_a_bearer_token():
    reg = Registry(token=('bob', 'tok3n'))
    try:
        layout = busybox_image().write_layout(tmpdir('token-layout'), 'latest')
        ref = reg.push(layout, 'latest', 'auth/token:1', creds=('bob', 'tok3n'))
        p = casulo('image', 'pull', ref, root=new_root())
        eq(p.returncode, 1, 'anonymous is refused by the token service')
        contains(p.stderr, 'token service refused anonymous access', 'says so')
        root = new_root()
        reg.token.requests.clear()
        casulo('image', 'pull', '--creds', 'bob:tok3n', ref, root=root, check=True)
        scopes = [q.get('scope') for q, _ in reg.token.requests]
        assert ['repository:auth/token:pull'] in scopes, scopes
        store_consistent(root)
    finally:
        reg.stop()


def tamper(reg, digest, how):
    path = reg.blob_path(digest)
    data = bytearray(open(path, 'rb').read())
    if how == 'flip':
        data[len(data) // 2] ^= 0xff
    else:
        data = data[:len(data) // 2]
    with open(path, 'wb') as f:
        f.write(data)


def pull_of_a_bad_blob(how, name, *messages):
    """Pull an image whose layer the registry serves damaged: refused,
    no name, a consistent store without the bad blob or its partial."""
    img = busybox_image()
    reg = Registry()
    try:
        ref = push_image(img, name, registry=reg)
        tamper(reg, img.layers[0]['digest'], how)
        root = new_root()
        p = casulo('image', 'pull', ref, root=root)
        eq(p.returncode, 1, 'pull fails')
        layer = img.layers[0]['digest']
        for m in messages:
            contains(p.stderr, m.format(layer=layer), 'the error')
        eq(casulo('image', 'ls', '-q', root=root).stdout, '', 'no name for a broken image')
        store_consistent(root)
        assert layer.split(':')[1] not in os.listdir(os.path.join(root, 'store', 'blobs', 'sha256')), 'not stored'
        assert layer.split(':')[1] + '.partial' not in os.listdir(os.path.join(root, 'ingest')), 'no partial of it'
    finally:
        reg.stop()


@test
def a_tampered_layer_is_refused_and_nothing_is_kept():
    pull_of_a_bad_blob('flip', 'bad/tampered', 'blob {layer}: digest mismatch: expected {layer}, got sha256:')


@test
def a_truncated_layer_is_refused():
    pull_of_a_bad_blob('truncate', 'bad/truncated', '{layer}')


@test
def kill_9_in_the_middle_of_a_pull_leaves_a_consistent_store_and_resumes():
    big = tar_bytes([F('random.bin', os.urandom(24 * 1024 * 1024))])
    img = Image([busybox_tar(), big])
    reg = shared_registry()
    push_image(img, 'pull/big')
    # The registry's bytes stop 8 MiB into the big layer (after everything
    # else the pull fetches), so the kill lands mid-layer however loaded the
    # machine is.
    proxy = StallingProxy(reg.port, len(img.layers[0]['blob']) + 64 * 1024 + 8 * 1024 * 1024)
    ref = f'{proxy.host}/pull/big:latest'
    try:
        root = new_root()
        partial = os.path.join(root, 'ingest', img.layers[1]['digest'].split(':')[1] + '.partial')
        proc = subprocess.Popen([CASULO, 'image', 'pull', '--root', root, '--json', ref],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not (
                proxy.stalled.is_set() and os.path.exists(partial) and os.path.getsize(partial) > 1024 * 1024):
            time.sleep(0.05)
        if proc.poll() is not None:
            raise AssertionError(f'the pull ended (status {proc.returncode}) before the kill: '
                                 f'{proc.stderr.read().decode(errors="replace")[-800:]}')
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        got = os.path.getsize(partial) if os.path.exists(partial) else 0
        assert 1024 * 1024 < got < len(img.layers[1]['blob']), f'killed mid-layer ({got} bytes)'
        proxy.release()
        eq(casulo('image', 'ls', '-q', root=root, check=True).stdout, '', 'no name after the kill')
        store_consistent(root)
        p = casulo('image', 'pull', '--json', ref, root=root, check=True)
        starts = [json.loads(line) for line in p.stdout.splitlines()]
        resumed = [e for e in starts if e['event'] == 'start' and e['digest'] == img.layers[1]['digest'][7:19]]
        eq(len(resumed), 1, 'the big layer is downloaded again')
        assert resumed[0]['resumed_at'] >= got - 1024 * 1024, f'resumed at {resumed[0]["resumed_at"]}, had {got}'
        store_consistent(root)
        eq(casulo('image', 'ls', '-q', root=root).stdout.strip(), ref, 'named now')
    finally:
        proxy.stop()


@test
def concurrent_pulls_of_one_image():
    big = tar_bytes([F('random.bin', os.urandom(4 * 1024 * 1024))])
    img = Image([busybox_tar(), big])
    ref = push_image(img, 'pull/concurrent')
    root = new_root()
    procs = [subprocess.Popen([CASULO, 'image', 'pull', '--root', root, '--quiet', ref], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        eq(p.returncode, 0, f'every pull succeeds: {err}')
    index = store_consistent(root)
    eq(len(index['manifests']), 1, 'one name')
    eq(len(os.listdir(os.path.join(root, 'store', 'blobs', 'sha256'))), 4, 'each blob once')
    assert not [n for n in os.listdir(os.path.join(root, 'ingest')) if n.endswith('.partial')], 'no partial left'


@test
def clear_errors_for_bad_references_and_missing_images():
    reg = shared_registry()
    p = casulo('image', 'pull', f'{reg.host}/no/such:1', root=new_root())
    eq(p.returncode, 1, 'missing image')
    contains(p.stderr, 'HTTP 404', 'the registry said so')
    contains(p.stderr, 'MANIFEST_UNKNOWN', 'with its code')
    p = casulo('image', 'pull', 'Bad_Name!', root=new_root())
    eq(p.returncode, 1, 'a bad reference')
    contains(p.stderr, "invalid", 'says what is wrong')
    p = casulo('image', 'pull', '127.0.0.2:1/x:1', root=new_root())
    eq(p.returncode, 1, 'nothing listens there')
    contains(p.stderr, 'registry 127.0.0.2:1', 'names the registry')
    p = casulo('image', 'inspect', 'nothing-here', root=new_root())
    contains(p.stderr, "image 'nothing-here': not in the store", 'inspect of a missing image')


if __name__ == '__main__':
    sys.exit(main())
