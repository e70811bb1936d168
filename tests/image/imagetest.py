"""Helpers for the image suite: images built here (layers as tar streams
written by Python's tarfile, OCI layouts, docker archives), a real
registry on loopback (Debian's docker-registry, with a temp config; TLS,
htpasswd and token auth when asked), skopeo to push, and the casulo CLI.

The TAP harness, Skip and the busybox rootfs come from tests/oci/ocitest.
"""
import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'oci'))
from ocitest import WORK, Skip, contains, eq, make_rootfs, test  # noqa: E402,F401
from ocitest import main as tap_main  # noqa: E402

CASULO = os.path.abspath(os.environ.get('CASULO') or os.path.join(
    os.path.dirname(__file__), '..', '..', 'build', 'casulo'))
RUNTIME = os.path.abspath(os.environ.get('CASULO_RUNTIME') or os.path.join(
    os.path.dirname(__file__), '..', '..', 'build', 'casulo-runtime'))

OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
LAYER_TYPES = {
    'tar': 'application/vnd.oci.image.layer.v1.tar',
    'gzip': 'application/vnd.oci.image.layer.v1.tar+gzip',
    'zstd': 'application/vnd.oci.image.layer.v1.tar+zstd',
}


def sha256(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def tmpdir(prefix):
    return tempfile.mkdtemp(prefix=prefix + '.', dir=WORK)


# --- layers -------------------------------------------------------------

def F(path, data=b'', mode=0o644, uid=0, gid=0, xattrs=None):
    return ('file', path, data if isinstance(data, bytes) else data.encode(), mode, uid, gid, xattrs)


def D(path, mode=0o755, uid=0, gid=0):
    return ('dir', path, mode, uid, gid)


def L(path, target):
    return ('symlink', path, target)


def H(path, target):
    return ('hardlink', path, target)


def W(path):
    """A whiteout of path."""
    parent, name = os.path.split(path)
    return ('file', os.path.join(parent, '.wh.' + name), b'', 0o644, 0, 0, None)


def OPQ(directory):
    return ('file', os.path.join(directory, '.wh..wh..opq'), b'', 0o644, 0, 0, None)


def DEV(path, major, minor, kind='chr'):
    return ('dev', path, kind, major, minor)


def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            kind = e[0]
            if kind == 'file':
                _, path, data, mode, uid, gid, xattrs = e
                ti = tarfile.TarInfo(path)
                ti.size, ti.mode, ti.uid, ti.gid, ti.mtime = len(data), mode, uid, gid, 1700000000
                if xattrs:
                    ti.pax_headers = {'SCHILY.xattr.' + k: v for k, v in xattrs.items()}
                t.addfile(ti, io.BytesIO(data))
            elif kind == 'dir':
                _, path, mode, uid, gid = e
                ti = tarfile.TarInfo(path)
                ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = tarfile.DIRTYPE, mode, uid, gid, 1700000000
                t.addfile(ti)
            elif kind in ('symlink', 'hardlink'):
                _, path, target = e
                ti = tarfile.TarInfo(path)
                ti.type = tarfile.SYMTYPE if kind == 'symlink' else tarfile.LNKTYPE
                ti.linkname, ti.mode, ti.mtime = target, 0o777, 1700000000
                t.addfile(ti)
            elif kind == 'dev':
                _, path, dkind, major, minor = e
                ti = tarfile.TarInfo(path)
                ti.type = tarfile.CHRTYPE if dkind == 'chr' else tarfile.BLKTYPE
                ti.devmajor, ti.devminor, ti.mode = major, minor, 0o666
                t.addfile(ti)
            else:
                raise ValueError(kind)
    return buf.getvalue()


def rootfs_tar(root):
    """A directory tree as a layer (sorted, owners as on disk)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                t.add(full, arcname=os.path.relpath(full, root), recursive=False)
    return buf.getvalue()


def compress(raw, how):
    if how == 'tar':
        return raw
    if how == 'gzip':
        return gzip.compress(raw, compresslevel=6, mtime=0)
    if how == 'zstd':
        return subprocess.run(['zstd', '-q', '-c', '-3'], input=raw, capture_output=True, check=True).stdout
    raise ValueError(how)


class Image:
    """An image in memory: layers (raw tar + compressed blob), config."""

    def __init__(self, layers, config=None, history=None, arch='amd64', compression='gzip'):
        self.layers = []
        for raw in layers:
            how = compression
            if isinstance(raw, tuple):
                raw, how = raw
            blob = compress(raw, how)
            self.layers.append({'raw': raw, 'blob': blob, 'type': LAYER_TYPES[how],
                                'digest': sha256(blob), 'diff_id': sha256(raw)})
        cfg = {'Env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], 'Cmd': ['/bin/sh']}
        cfg.update(config or {})
        self.config = {
            'architecture': arch, 'os': 'linux', 'config': cfg,
            'rootfs': {'type': 'layers', 'diff_ids': [x['diff_id'] for x in self.layers]},
            'history': history or [{'created_by': f'layer {i}'} for i in range(len(self.layers))],
        }

    def config_blob(self):
        return json.dumps(self.config, sort_keys=True).encode()

    def manifest(self):
        cb = self.config_blob()
        return json.dumps({
            'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
            'config': {'mediaType': OCI_CONFIG, 'digest': sha256(cb), 'size': len(cb)},
            'layers': [{'mediaType': x['type'], 'digest': x['digest'], 'size': len(x['blob'])} for x in self.layers],
        }, sort_keys=True).encode()

    def blobs(self):
        out = {sha256(self.config_blob()): self.config_blob(), sha256(self.manifest()): self.manifest()}
        for x in self.layers:
            out[x['digest']] = x['blob']
        return out

    def write_layout(self, path, tag='latest', extra_images=(), index_platforms=None):
        """An OCI layout; with index_platforms, the index.json entry is an
        image index over this image and extra_images for those platforms."""
        os.makedirs(os.path.join(path, 'blobs', 'sha256'), exist_ok=True)
        with open(os.path.join(path, 'oci-layout'), 'w') as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        blobs = self.blobs()
        for im in extra_images:
            blobs.update(im.blobs())
        m = self.manifest()
        entry = {'mediaType': OCI_MANIFEST, 'digest': sha256(m), 'size': len(m)}
        if index_platforms:
            idx = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [
                {'mediaType': OCI_MANIFEST, 'digest': sha256(im.manifest()), 'size': len(im.manifest()),
                 'platform': {'os': 'linux', 'architecture': plat}}
                for im, plat in zip((self,) + tuple(extra_images), index_platforms)]}).encode()
            blobs[sha256(idx)] = idx
            entry = {'mediaType': OCI_INDEX, 'digest': sha256(idx), 'size': len(idx)}
        for d, data in blobs.items():
            with open(os.path.join(path, 'blobs', 'sha256', d.split(':')[1]), 'wb') as f:
                f.write(data)
        entry['annotations'] = {'org.opencontainers.image.ref.name': tag}
        with open(os.path.join(path, 'index.json'), 'w') as f:
            json.dump({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [entry]}, f)
        return path

    def write_oci_archive(self, path, tag='latest'):
        layout = self.write_layout(tmpdir('layout'), tag)
        with tarfile.open(path, 'w') as t:
            for name in ('oci-layout', 'index.json', 'blobs'):
                t.add(os.path.join(layout, name), arcname=name)
        return path

    def write_docker_archive(self, path, repo_tags=('localhost/docker-archive:1',)):
        """`docker save`'s format: manifest.json, config, LAYER/layer.tar."""
        cb = self.config_blob()
        with tarfile.open(path, 'w') as t:
            def add(name, data):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            layer_names = []
            for x in self.layers:
                name = x['diff_id'].split(':')[1] + '/layer.tar'
                layer_names.append(name)
                add(name, x['raw'])
            cfg_name = sha256(cb).split(':')[1] + '.json'
            add(cfg_name, cb)
            add('manifest.json', json.dumps([{'Config': cfg_name, 'RepoTags': list(repo_tags),
                                               'Layers': layer_names}]).encode())
        return path


_busybox = []


def busybox_tar():
    """A busybox rootfs (Debian's busybox-static) as one layer."""
    if not _busybox:
        root = make_rootfs(tmpdir('busybox-rootfs'))
        _busybox.append(rootfs_tar(root))
    return _busybox[0]


def busybox_image(**kw):
    return Image([busybox_tar()], **kw)


# --- the registry -------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def openssl(*args, **kw):
    subprocess.run(['openssl'] + list(args), check=True, capture_output=True, **kw)


def make_ca(directory):
    """A CA (alone in directory/ca/, as skopeo's --cert-dir wants it) and
    a certificate for 127.0.0.1 signed by it."""
    os.makedirs(os.path.join(directory, 'ca'))
    ca_key, ca_crt = os.path.join(directory, 'ca.key'), os.path.join(directory, 'ca', 'ca.crt')
    key, csr, crt = (os.path.join(directory, n) for n in ('server.key', 'server.csr', 'server.crt'))
    ext = os.path.join(directory, 'ext.cnf')
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', ca_key, '-out', ca_crt, '-days', '2',
            '-subj', '/CN=casulo test CA')
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=127.0.0.1')
    with open(ext, 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1,DNS:localhost\n')
    openssl('x509', '-req', '-in', csr, '-CA', ca_crt, '-CAkey', ca_key, '-CAcreateserial', '-out', crt,
            '-days', '2', '-extfile', ext)
    return ca_crt, crt, key


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


class TokenServer:
    """A bearer-token service as docker-registry's token auth expects:
    checks basic credentials, returns an RS256 JWT (signed with openssl)
    whose x5c chain is the certificate the registry trusts."""

    def __init__(self, directory, user, password):
        self.key = os.path.join(directory, 'token.key')
        self.crt = os.path.join(directory, 'token.crt')
        openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', self.key, '-out', self.crt,
                '-days', '2', '-subj', '/CN=casulo token issuer')
        der = subprocess.run(['openssl', 'x509', '-in', self.crt, '-outform', 'DER'], capture_output=True,
                             check=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.user, self.password = user, password
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                auth = self.headers.get('Authorization', '')
                server.requests.append((q, auth))
                want = 'Basic ' + base64.b64encode(f'{server.user}:{server.password}'.encode()).decode()
                if auth != want:
                    self.send_response(401)
                    self.end_headers()
                    return
                scopes = q.get('scope', [])
                access = []
                for s in scopes:
                    kind, name, actions = s.split(':')
                    access.append({'type': kind, 'name': name, 'actions': actions.split(',')})
                body = json.dumps({'token': server.sign(q.get('service', [''])[0], access)}).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def realm(self):
        return f'http://127.0.0.1:{self.port}/token'

    def sign(self, service, access):
        now = int(time.time())
        header = {'alg': 'RS256', 'typ': 'JWT', 'x5c': [self.x5c]}
        claims = {'iss': 'casulo-test', 'sub': self.user, 'aud': service, 'exp': now + 600, 'nbf': now - 10,
                  'iat': now, 'jti': os.urandom(8).hex(), 'access': access}
        signing = (b64url(json.dumps(header).encode()) + '.' + b64url(json.dumps(claims).encode())).encode()
        sig = subprocess.run(['openssl', 'dgst', '-sha256', '-sign', self.key], input=signing, capture_output=True,
                             check=True).stdout
        return signing.decode() + '.' + b64url(sig)

    def stop(self):
        self.httpd.shutdown()


class Registry:
    """docker-registry on 127.0.0.1, its own storage and config."""

    def __init__(self, tls=False, htpasswd=None, token=None):
        exe = shutil.which('docker-registry')
        if exe is None:
            raise Skip('docker-registry is not installed (Debian package docker-registry)')
        self.dir = tmpdir('registry')
        self.port = free_port()
        self.ca = None
        self.token = None
        lines = ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true',
                 'storage:', '  filesystem:', f'    rootdirectory: {self.dir}/data', '  delete:', '    enabled: true',
                 'http:', f'  addr: 127.0.0.1:{self.port}']
        if tls:
            self.ca, crt, key = make_ca(self.dir)
            lines += ['  tls:', f'    certificate: {crt}', f'    key: {key}']
        if htpasswd:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                import crypt  # libxcrypt's bcrypt, which docker-registry's htpasswd wants
            user, password = htpasswd
            path = os.path.join(self.dir, 'htpasswd')
            with open(path, 'w') as f:
                f.write(f'{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}\n')
            lines += ['auth:', '  htpasswd:', '    realm: casulo-test', f'    path: {path}']
        if token:
            self.token = TokenServer(self.dir, *token)
            lines += ['auth:', '  token:', f'    realm: {self.token.realm}', '    service: casulo-registry',
                      '    issuer: casulo-test', f'    rootcertbundle: {self.token.crt}']
        cfg = os.path.join(self.dir, 'config.yml')
        with open(cfg, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        self.log = open(os.path.join(self.dir, 'log'), 'w')
        self.proc = subprocess.Popen([exe, 'serve', cfg], stdout=self.log, stderr=subprocess.STDOUT)
        self.host = f'127.0.0.1:{self.port}'
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(('127.0.0.1', self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f'docker-registry did not start: {open(os.path.join(self.dir, "log")).read()[-500:]}')

    def push(self, layout, tag, name, creds=None):
        """skopeo copy oci:LAYOUT:TAG docker://HOST/NAME (every layer as is)."""
        if shutil.which('skopeo') is None:
            raise Skip('skopeo is not installed')
        cmd = ['skopeo', '--insecure-policy', 'copy', '--quiet', '--preserve-digests', '--all', '--dest-tls-verify=false']
        if self.ca:
            cmd += ['--dest-cert-dir', os.path.dirname(self.ca)]
        if creds:
            cmd += ['--dest-creds', f'{creds[0]}:{creds[1]}']
        cmd += [f'oci:{layout}:{tag}', f'docker://{self.host}/{name}']
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError(f'skopeo push failed: {p.stderr.strip()[-800:]}')
        return f'{self.host}/{name}'

    def blob_path(self, digest):
        hexd = digest.split(':')[1]
        return os.path.join(self.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hexd[:2], hexd, 'data')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        if self.token:
            self.token.stop()


class StallingProxy:
    """A TCP proxy in front of a registry that stops passing the registry's
    bytes once stall_after of them went through (all connections counted),
    until release(): a pull caught mid-layer at a known point, whatever the
    machine's load."""

    def __init__(self, upstream_port, stall_after):
        self.upstream_port, self.stall_after = upstream_port, stall_after
        self.passed = 0
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.stalled = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.host = '127.0.0.1:%d' % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
                server = socket.create_connection(('127.0.0.1', self.upstream_port))
            except OSError:
                return
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _allowance(self, want):
        """How many of want bytes from the registry may pass now (waits
        while stalled)."""
        while True:
            with self.lock:
                if self.released.is_set():
                    return want
                left = self.stall_after - self.passed
                if left > 0:
                    n = min(want, left)
                    self.passed += n
                    return n
            self.stalled.set()
            self.released.wait(1)

    def _pump(self, src, dst, from_registry):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while data:
                    n = self._allowance(len(data)) if from_registry else len(data)
                    dst.sendall(data[:n])
                    data = data[n:]
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def release(self):
        self.released.set()

    def stop(self):
        self.release()
        self.sock.close()


_registry = []


def shared_registry():
    """One plain-HTTP registry for the tests that need nothing special."""
    if not _registry:
        _registry.append(Registry())
    return _registry[0]


def push_image(image, name, registry=None, tag='latest'):
    reg = registry or shared_registry()
    layout = image.write_layout(tmpdir('push-layout'), tag)
    return reg.push(layout, tag, f'{name}:{tag}')


# --- casulo -------------------------------------------------------------

def new_root():
    return tmpdir('store')


def casulo(*args, root=None, timeout=180, input=None, check=False, env=None):
    cmd = [CASULO] + [str(a) for a in args]
    if root and args and args[0] == 'image':
        cmd = [CASULO, 'image', str(args[1]), '--root', root] + [str(a) for a in args[2:]]
    elif root and args and args[0] == 'run':
        cmd = [CASULO, 'run', '--root', root] + [str(a) for a in args[1:]]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                       env=dict(os.environ, **(env or {})))
    if check and p.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} exited {p.returncode}: {p.stderr.strip()[-1500:]}')
    return p


def store_consistent(root):
    """Every blob of a store is named by its digest, and every name's
    manifest, config and layers are there."""
    blobs = os.path.join(root, 'store', 'blobs', 'sha256')
    for name in os.listdir(blobs):
        with open(os.path.join(blobs, name), 'rb') as f:
            eq(hashlib.sha256(f.read()).hexdigest(), name, f'blob {name} matches its name')
    try:
        with open(os.path.join(root, 'store', 'index.json')) as f:
            index = json.load(f)
    except FileNotFoundError:
        index = {'manifests': []}
    for m in index['manifests']:
        man = json.load(open(os.path.join(blobs, m['digest'].split(':')[1])))
        for d in [man['config']] + man['layers']:
            path = os.path.join(blobs, d['digest'].split(':')[1])
            assert os.path.exists(path), f'{m["annotations"]}: blob {d["digest"]} missing'
            eq(os.path.getsize(path), d['size'], f'size of {d["digest"]}')
    return index


def listing(root):
    """path -> (type, mode, uid, gid, size, sha256 or link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, root)
            if os.path.islink(full):
                what = os.readlink(full)
            elif os.path.isfile(full):
                with open(full, 'rb') as f:
                    what = hashlib.sha256(f.read()).hexdigest()
            else:
                what = ''
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_size if not os.path.isdir(full) else 0, what)
    return out


def main():
    """Run the file's tests (TAP), then stop the registries they started."""
    try:
        return tap_main()
    finally:
        for r in _registry:
            r.stop()
