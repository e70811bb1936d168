"""Helpers for casulod's tests (suite `daemon`): a casulod with directories
of its own, its API over the Unix socket (every JSON answer checked against
docs/casulod-api.yaml), the casulo CLI, a websocket and an events client,
busybox bundles and images, and a TAP runner.
"""
import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
BUILD = os.environ.get('CASULO_BUILD') or os.path.join(ROOT, 'build')
CASULOD = os.environ.get('CASULOD') or os.path.join(BUILD, 'casulod')
CASULO = os.environ.get('CASULO') or os.path.join(BUILD, 'casulo')
SPEC_PATH = os.environ.get('CASULOD_API_SPEC') or os.path.join(ROOT, 'docs', 'casulod-api.yaml')
SPEC = yaml.safe_load(open(SPEC_PATH))
BUSYBOX = shutil.which('busybox') or '/bin/busybox'

sys.path.insert(0, os.path.join(ROOT, 'tests', 'oci'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'image'))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'common'))

from taprun import Failure, Skip, check, kvm_missing, run_tests  # noqa: E402,F401 - the suite's tests import them from here

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def wait_for(cond, timeout, what, interval=0.02):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise Failure('timed out after %.0f s waiting for %s' % (timeout, what))


# --- schemas: OpenAPI 3.0's dialect as JSON Schema --------------------------

def _to_json_schema(s):
    if isinstance(s, list):
        return [_to_json_schema(x) for x in s]
    if not isinstance(s, dict):
        return s
    out = {k: _to_json_schema(v) for k, v in s.items() if k not in ('nullable', 'example')}
    if s.get('nullable'):
        if 'type' in out:
            out['type'] = [out['type'], 'null']
        if 'enum' in out:
            out['enum'] = list(out['enum']) + [None]
        if '$ref' in out:
            out = {'anyOf': [{'$ref': out['$ref']}, {'type': 'null'}]}
    return out


_COMPONENTS = {'schemas': {k: _to_json_schema(v) for k, v in SPEC['components']['schemas'].items()}}


def validate(body, name):
    s = dict(_COMPONENTS['schemas'][name])
    s['components'] = _COMPONENTS
    try:
        jsonschema.validate(body, s)
    except jsonschema.ValidationError as e:
        raise Failure('answer does not match %s: %s at %s: %.300r' % (name, e.message, list(e.path), body))


def validate_list(body, name):
    check(isinstance(body, list), 'a list was expected: %.200r' % (body,))
    for item in body:
        validate(item, name)


# --- HTTP over the Unix socket ------------------------------------------------

class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__('localhost', timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def http_request(conn, method, path, body=None, raw=None, headers=None):
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    h = dict(headers or {})
    if data is not None:
        h.setdefault('Content-Type', 'application/json')
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    text = r.read()
    ctype = r.getheader('Content-Type') or ''
    if 'json' in ctype and text:
        payload = json.loads(text)
    else:
        payload = text.decode(errors='replace')
    return r.status, payload, r


# --- a casulod ----------------------------------------------------------------

class Daemon:
    """casulod with its own state, run and image directories (under /tmp,
    so that socket paths stay short)."""

    def __init__(self, base=None, extra=(), images=None, start=True, env=None):
        self.base = base or tempfile.mkdtemp(prefix='cd-', dir='/tmp')
        self.state = os.path.join(self.base, 'state')
        self.run = os.path.join(self.base, 'run')
        self.images = images or os.path.join(self.base, 'images')
        self.sock = os.path.join(self.run, 'casulod.sock')
        self.extra = list(extra)
        self.env = env
        self.p = None
        self.log_path = os.path.join(self.base, 'casulod.log')
        if start:
            self.start()

    def argv(self):
        return [CASULOD, '--state-dir', self.state, '--run-dir', self.run, '--image-root', self.images,
                '--log-level', 'debug'] + self.extra

    def start(self, wait=True):
        log = open(self.log_path, 'ab')
        env = dict(os.environ)
        env.update(self.env or {})
        self.p = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        log.close()
        if wait:
            self.wait_ready()
        return self.p

    def wait_ready(self, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if self.p.poll() is not None:
                raise Failure('casulod exited with %d: %s' % (self.p.returncode, self.log_tail()))
            try:
                status, _, _ = self.request('GET', '/v1', check_schema=False)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise Failure('casulod did not answer in %d s: %s' % (timeout, self.log_tail()))

    def log_tail(self, n=15):
        try:
            with open(self.log_path, errors='replace') as f:
                return ' | '.join(f.read().splitlines()[-n:])
        except OSError:
            return '(no log)'

    def kill9(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
            self.p.wait()

    def stop(self):
        if self.p and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def request(self, method, path, body=None, raw=None, headers=None, check_schema=True, timeout=120):
        c = UnixHTTP(self.sock, timeout=timeout)
        try:
            status, payload, r = http_request(c, method, path, body, raw, headers)
        finally:
            c.close()
        if check_schema and status >= 400:
            validate(payload, 'Error')
        return status, payload, r

    def get(self, path):
        status, payload, _ = self.request('GET', path)
        check(status == 200, 'GET %s: HTTP %d %r' % (path, status, payload))
        return payload

    def wait_op(self, op, timeout=300):
        validate(op, 'Operation')
        while True:
            status, done, _ = self.request('GET', '/v1/operations/%s/wait?timeout_s=%d' % (op['id'], timeout),
                                           timeout=timeout + 30)
            check(status == 200, 'wait: HTTP %d %r' % (status, done))
            validate(done, 'Operation')
            if done['status'] != 'running':
                return done

    def ok_op(self, status, op, what):
        check(status == 202, '%s: HTTP %d %r' % (what, status, op))
        done = self.wait_op(op)
        check(done['status'] == 'success', '%s failed: %s' % (what, done.get('error')))
        return done

    def create(self, name, type_, spec, **kw):
        body = {'name': name, 'type': type_, type_: spec}
        body.update(kw)
        status, payload, _ = self.request('POST', '/v1/instances', body)
        if status == 202:
            done = self.ok_op(status, payload, 'create %s' % name)
            return done['result']
        check(status == 201, 'create %s: HTTP %d %r' % (name, status, payload))
        validate(payload, 'Instance')
        return payload

    def action(self, name, action, **kw):
        body = {'action': action}
        body.update(kw)
        status, op, _ = self.request('PUT', '/v1/instances/%s/state' % name, body)
        return self.ok_op(status, op, '%s %s' % (action, name))

    def instance(self, name):
        inst = self.get('/v1/instances/' + name)
        validate(inst, 'Instance')
        return inst

    def cli(self, *args, input=None, timeout=120, check_rc=None):
        env = dict(os.environ, CASULOD_SOCKET=self.sock)
        p = subprocess.run([CASULO] + list(args), input=input, capture_output=True, text=True, timeout=timeout,
                           env=env)
        if check_rc is not None:
            check(p.returncode == check_rc, 'casulo %s: exit %d, wanted %d: %s%s' % (
                ' '.join(args), p.returncode, check_rc, p.stdout[-500:], p.stderr[-500:]))
        return p

    def shims(self):
        """Live casulod-shim processes of this casulod's run directory."""
        return processes_with('casulod-shim', self.run + '/')

    def cleanup(self):
        if self.p and self.p.poll() is None:
            try:
                for inst in self.get('/v1/instances'):
                    self.request('DELETE', '/v1/instances/%s?force=true' % inst['name'])
                wait_for(lambda: not self.shims(), 20, 'the shims to end')
            except (Failure, OSError):
                pass
            self.stop()
        for pid in self.shims():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # What a test's containers left in the runtime's root.
        rt = os.path.join(self.run, 'runtime')
        if os.path.isdir(rt):
            for cid in os.listdir(rt):
                subprocess.run([os.path.join(BUILD, 'casulo-runtime'), '--root', rt, 'delete', '--force', cid],
                               capture_output=True)
        subprocess.run(['umount', '-R', '-l', self.base], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def processes_with(*needles):
    """Pids of live (not zombie) processes whose command line holds every needle."""
    found = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
            with open('/proc/%s/stat' % pid) as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except OSError:
            continue
        if state != 'Z' and all(n in cmd for n in needles):
            found.append(int(pid))
    return found


# --- bundles and images -----------------------------------------------------

_rootfs = []


def rootfs():
    """A busybox rootfs, made once."""
    if not _rootfs:
        from ocitest import make_rootfs
        path = tempfile.mkdtemp(prefix='cd-rootfs-', dir='/tmp')
        make_rootfs(path)
        _rootfs.append(path)
    return _rootfs[0]


def bundle(args, terminal=False, base=None):
    """A bundle whose rootfs is the shared busybox one, running args."""
    from ocitest import default_config
    d = tempfile.mkdtemp(prefix='cd-bundle-', dir=base or '/tmp')
    cfg = default_config(args, rootfs=rootfs())
    cfg['process']['terminal'] = terminal
    cfg['root'] = {'path': rootfs(), 'readonly': True}
    with open(os.path.join(d, 'config.json'), 'w') as f:
        json.dump(cfg, f)
    return d


def import_busybox(images_root, name='localhost/casulod-test/busybox:1'):
    """A busybox image in the image store at images_root."""
    from imagetest import busybox_image
    layout = tempfile.mkdtemp(prefix='cd-layout-', dir='/tmp')
    busybox_image(config={'Cmd': ['sh', '-c', 'echo from-image; sleep 1000']}).write_layout(layout, tag='1')
    p = subprocess.run([CASULO, 'image', 'import', layout, name], capture_output=True, text=True,
                       env=dict(os.environ, CASULO_ROOT=images_root))
    shutil.rmtree(layout, ignore_errors=True)
    check(p.returncode == 0, 'image import: %s' % p.stderr)
    return name


# --- a websocket client -----------------------------------------------------

class WebSocket:
    def __init__(self, sock_path, path, headers=None):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(sock_path)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = ''.join('%s: %s\r\n' % kv for kv in (headers or {}).items())
        self.s.sendall(('GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                        'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n' % (path, key, extra)).encode())
        self.buf = b''
        while b'\r\n\r\n' not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b'\r\n\r\n')
        self.status = int(head.split()[1]) if head else 0
        self.head = head.decode(errors='replace')
        if self.status != 101:
            # The error's body, for the message.
            try:
                self.s.settimeout(1)
                while True:
                    chunk = self.s.recv(65536)
                    if not chunk:
                        break
                    self.buf += chunk
            except OSError:
                pass
            self.s.close()

    def send(self, data, opcode=2):
        if isinstance(data, str):
            data = data.encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x80 | opcode])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + n.to_bytes(2, 'big')
        else:
            hdr += bytes([0x80 | 127]) + n.to_bytes(8, 'big')
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv_frame(self, timeout=10):
        """(opcode, payload), or None at the end."""
        self.s.settimeout(timeout)
        while True:
            if len(self.buf) >= 2:
                n = self.buf[1] & 0x7f
                at = 2
                if n == 126:
                    n = int.from_bytes(self.buf[2:4], 'big') if len(self.buf) >= 4 else None
                    at = 4
                elif n == 127:
                    n = int.from_bytes(self.buf[2:10], 'big') if len(self.buf) >= 10 else None
                    at = 10
                if n is not None and len(self.buf) >= at + n:
                    op, payload = self.buf[0] & 0x0f, self.buf[at:at + n]
                    self.buf = self.buf[at + n:]
                    return op, payload
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def read_until(self, needle, timeout=20):
        """Console output until needle shows up; all of it."""
        out = b''
        end = time.time() + timeout
        needle = needle.encode() if isinstance(needle, str) else needle
        while needle not in out:
            left = end - time.time()
            if left <= 0:
                raise Failure('console: %r did not show up; got %r' % (needle, out[-300:]))
            try:
                f = self.recv_frame(timeout=left)
            except socket.timeout:
                continue
            if f is None:
                raise Failure('console closed before %r showed up; got %r' % (needle, out[-300:]))
            if f[0] in (1, 2):
                out += f[1]
            elif f[0] == 8:
                raise Failure('console closed (%r) before %r showed up; got %r' % (f[1], needle, out[-300:]))
        return out

    def close(self):
        try:
            self.send(b'\x03\xe8', opcode=8)
        except OSError:
            pass
        self.s.close()


# --- server-sent events -----------------------------------------------------

class Events:
    """GET /v1/events read on a thread; events() is what came so far."""

    def __init__(self, sock_path, query='', last_id=None):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(sock_path)
        extra = 'Last-Event-ID: %d\r\n' % last_id if last_id else ''
        self.s.sendall(('GET /v1/events%s HTTP/1.1\r\nHost: localhost\r\n%s\r\n' % (query, extra)).encode())
        self.raw = b''
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        while True:
            try:
                chunk = self.s.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.raw += chunk

    def events(self):
        with self.lock:
            text = self.raw.decode(errors='replace')
        out = []
        for m in re.finditer(r'id: (\d+)\r?\nevent: (\w+)\r?\ndata: (.*?)\r?\n\r?\n', text):
            ev = json.loads(m.group(3))
            check(ev['id'] == int(m.group(1)) and ev['type'] == m.group(2), 'event framing: %r' % m.group(0))
            validate(ev, 'Event')
            out.append(ev)
        return out

    def close(self):
        self.s.close()


# --- the runner -------------------------------------------------------------

def main(needs_root=True):
    """Run the tests (TEST_FILTER: those whose name holds it) in TAP."""
    if needs_root and os.geteuid() != 0:
        print('1..1\nok 1 - daemon suite # SKIP needs root')
        return 0
    only = os.environ.get('TEST_FILTER')
    return run_tests([t for t in TESTS if not only or only in t.__name__], lambda t: t())


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def jitter(a, b):
    return random.uniform(a, b)


def lab_cgroups():
    """The lab's L1 mounts no cgroups, and a container needs a hierarchy:
    a v2 host, as casulod finds on one (tests/oci/test_vm.py does the same)."""
    if os.path.isdir('/sys/fs/cgroup') and not os.listdir('/sys/fs/cgroup'):
        subprocess.run(['mount', '-t', 'cgroup2', 'none', '/sys/fs/cgroup'], check=False)
