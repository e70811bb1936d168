#!/usr/bin/python3
"""The control API (docs/api.yaml) and the casulo CLI, against casulo-vmm
running the kvm suite's tiny test guest (any /dev/kvm will do).  Every
response body is checked against the schema docs/api.yaml gives for it.
Prints TAP."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import jsonschema
import yaml

VMM = os.environ.get('CASULO_VMM')
CLI = os.environ.get('CASULO_CLI')
GUEST = os.path.join(os.environ.get('TEST_GUEST_DIR', ''), 'test-guest.elf')
SPEC = yaml.safe_load(open(os.environ.get('API_SPEC', 'docs/api.yaml')))
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def schema(name):
    """A component schema with its $refs resolvable."""
    s = dict(SPEC['components']['schemas'][name])
    s['components'] = SPEC['components']
    return s


def validate(body, name):
    try:
        jsonschema.validate(body, schema(name))
    except jsonschema.ValidationError as e:
        raise Failure('response does not match %s: %s: %r' % (name, e.message, body))


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__('localhost', timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Vm:
    """casulo-vmm running the test guest in counter mode, with an API socket
    (or, with incoming=ADDR, waiting for a migration)."""

    def __init__(self, extra_cmdline='', incoming=None):
        self.dir = tempfile.mkdtemp(prefix='casulo-api-')
        self.sock = os.path.join(self.dir, 'api.sock')
        self.out = open(os.path.join(self.dir, 'console'), 'w+b')
        argv = [VMM, '--api-socket', self.sock]
        if incoming:
            argv += ['--incoming', incoming]
        else:
            argv += ['--kernel', GUEST, '--cmdline', 'test=counter ' + extra_cmdline]
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.PIPE)
        if incoming:
            return
        for _ in range(200):
            if os.path.exists(self.sock):
                return
            time.sleep(0.02)
        self.close()
        raise Failure('the API socket did not appear')

    def request(self, method, path, body=None, raw=None):
        c = UnixHTTP(self.sock)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        c.request(method, path, body=data, headers={'Content-Type': 'application/json'} if data else {})
        r = c.getresponse()
        text = r.read()
        c.close()
        return r.status, (json.loads(text) if text else None)

    def ticks(self):
        self.out.flush()
        with open(self.out.name, 'rb') as f:
            found = re.findall(rb'tick (\d+)', f.read())
        return int(found[-1]) if found else -1

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.out.close()


def expect_error(vm, method, path, status, body=None, raw=None, needle=None):
    got, data = vm.request(method, path, body, raw)
    check(got == status, '%s %s: HTTP %d, wanted %d (%r)' % (method, path, got, status, data))
    validate(data, 'Error')
    if needle:
        check(needle in data['error'], '%s %s: error %r does not say %r' % (method, path, data['error'], needle))


@test
def info_matches_schema():
    vm = Vm()
    try:
        status, info = vm.request('GET', '/vm')
        check(status == 200, 'GET /vm: HTTP %d' % status)
        validate(info, 'VmInfo')
        check(info['state'] == 'running', 'state %r' % info['state'])
        check(info['config']['kernel'].endswith('test-guest.elf'), 'config does not name the kernel')
    finally:
        vm.close()


@test
def metrics_count_exits_and_devices():
    vm = Vm()
    try:
        time.sleep(0.5)
        status, m = vm.request('GET', '/metrics')
        check(status == 200, 'GET /metrics: HTTP %d' % status)
        validate(m, 'Metrics')
        check(m['vcpus'][0]['exits'].get('io', 0) > 0, 'no port I/O exits counted: %r' % m['vcpus'][0])
        kinds = {d['kind'] for d in m['devices']}
        check({'serial', 'rtc', 'platform'} <= kinds, 'devices missing: %r' % kinds)
        check(m['memory']['guest_mib'] == 256 and m['memory']['vmm_rss_kib'] > 0, 'memory: %r' % m['memory'])
    finally:
        vm.close()


@test
def pause_stops_the_guest_and_resume_restarts_it():
    vm = Vm()
    try:
        deadline = time.time() + 20
        while vm.ticks() < 3 and time.time() < deadline:
            time.sleep(0.1)
        check(vm.ticks() >= 3, 'the guest is not ticking')
        status, _ = vm.request('PUT', '/vm/state', {'state': 'paused'})
        check(status == 204, 'pause: HTTP %d' % status)
        check(vm.request('GET', '/vm')[1]['state'] == 'paused', 'GET /vm does not say paused')
        before = vm.ticks()
        time.sleep(1.0)
        check(vm.ticks() == before, 'the guest ticked while paused (%d -> %d)' % (before, vm.ticks()))
        status, _ = vm.request('PUT', '/vm/state', {'state': 'paused'})
        check(status == 204, 'pausing a paused VM: HTTP %d' % status)
        status, _ = vm.request('PUT', '/vm/state', {'state': 'running'})
        check(status == 204, 'resume: HTTP %d' % status)
        deadline = time.time() + 10
        while vm.ticks() <= before and time.time() < deadline:
            time.sleep(0.1)
        check(vm.ticks() > before, 'the guest did not tick after resume')
    finally:
        vm.close()


@test
def malformed_requests_get_4xx_json():
    vm = Vm()
    try:
        expect_error(vm, 'PUT', '/vm/state', 400, raw='{bad json', needle='not valid JSON')
        expect_error(vm, 'PUT', '/vm/state', 400, raw='[1, 2]', needle='JSON object')
        expect_error(vm, 'PUT', '/vm/state', 400, body={'state': 5}, needle="'state' must be a string")
        expect_error(vm, 'PUT', '/vm/state', 400, body={'state': 'asleep'}, needle='"paused" or "running"')
        expect_error(vm, 'PUT', '/vm/state', 400, body={'state': 'paused', 'x': 1}, needle="unknown field 'x'")
        expect_error(vm, 'PUT', '/vm/state', 400, body={}, needle="'state' is missing")
        expect_error(vm, 'PUT', '/vm/state', 400, raw='', needle='needs a JSON body')
        expect_error(vm, 'PUT', '/balloon', 400, body={'target_mib': -5}, needle='between 0 and')
        expect_error(vm, 'PUT', '/migration/send', 400, body={'destination': 'udp:x'}, needle='tcp:HOST:PORT')
        expect_error(vm, 'PUT', '/vm/stop', 400, body={'now': True}, needle='takes no fields')
        expect_error(vm, 'GET', '/no/such/thing', 404, needle='no such resource')
        expect_error(vm, 'DELETE', '/vm', 405, needle='not allowed')
        expect_error(vm, 'PUT', '/vm/state', 413, raw='x' * (70 * 1024), needle='larger than')
        # The VM is still fine.
        check(vm.request('GET', '/vm')[0] == 200, 'the API stopped answering')
        check(vm.p.poll() is None, 'the VMM died')
    finally:
        vm.close()


@test
def actions_follow_the_vm_state():
    vm = Vm()
    try:
        expect_error(vm, 'PUT', '/snapshot/load', 409, body={'path': '/tmp/x'}, needle='while the VM is running')
        status, _ = vm.request('PUT', '/vm/state', {'state': 'running'})
        check(status == 204, 'resuming a running VM: HTTP %d' % status)
        vm.request('PUT', '/vm/state', {'state': 'paused'})
        expect_error(vm, 'PUT', '/vm/shutdown', 409, needle='while the VM is paused')
    finally:
        vm.close()


@test
def slow_clients_stall_nobody():
    vm = Vm()
    stuck = []
    try:
        # Clients that start a request and never finish it.
        for _ in range(8):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(vm.sock)
            s.sendall(b'PUT /vm/state HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"sta')
            stuck.append(s)
        start = vm.ticks()
        t0 = time.time()
        status, info = vm.request('GET', '/vm')
        check(status == 200 and time.time() - t0 < 2, 'GET /vm waited on the stuck clients')
        time.sleep(0.5)
        check(vm.ticks() > start, 'the guest stopped while clients were stuck')
    finally:
        for s in stuck:
            s.close()
        vm.close()


@test
def stop_ends_the_vmm_and_removes_the_socket():
    vm = Vm()
    try:
        status, _ = vm.request('PUT', '/vm/stop')
        check(status == 204, 'stop: HTTP %d' % status)
        rc = vm.p.wait(timeout=10)
        check(rc == 0, 'casulo-vmm exited %d after stop' % rc)
        check(not os.path.exists(vm.sock), 'the socket file is left behind')
    finally:
        vm.close()


@test
def socket_in_use_is_refused():
    vm = Vm()
    try:
        p = subprocess.run([VMM, '--kernel', GUEST, '--cmdline', 'test=hello', '--api-socket', vm.sock],
                           capture_output=True, text=True, timeout=20)
        check(p.returncode == 1 and 'in use' in p.stderr, 'second VMM on a live socket: %d %r' % (
            p.returncode, p.stderr))
        check(vm.request('GET', '/vm')[0] == 200, 'the first VMM lost its socket')
    finally:
        vm.close()


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ticks(vm, n, timeout=20):
    deadline = time.time() + timeout
    while vm.ticks() < n and time.time() < deadline:
        time.sleep(0.05)
    check(vm.ticks() >= n, 'the guest is not ticking (%d)' % vm.ticks())


@test
def migration_moves_the_running_guest():
    port = free_port()
    dst = Vm(incoming='tcp:127.0.0.1:%d' % port)
    src = Vm()
    try:
        wait_ticks(src, 3)
        time.sleep(0.2)
        status, info = src.request('PUT', '/migration/send',
                                   {'destination': 'tcp:127.0.0.1:%d' % port, 'wait': True})
        check(status == 200, 'migration: HTTP %d %r' % (status, info))
        validate(info, 'MigrationInfo')
        check(info['state'] == 'completed' and info['downtime_ms'] >= 0, 'migration info %r' % info)
        check(src.p.wait(timeout=10) == 0, 'the source VMM did not exit 0')
        last = src.ticks()
        wait_ticks(dst, last + 2)
        with open(dst.out.name, 'rb') as f:
            first = int(re.findall(rb'tick (\d+)', f.read())[0])
        check(last <= first <= last + 1, 'the destination started at tick %d, the source stopped at %d' % (first, last))
        status, vminfo = dst.request('GET', '/vm')
        check(status == 200 and vminfo['state'] == 'running', 'destination state %r' % vminfo)
    finally:
        src.close()
        dst.close()


def fake_destination(port, behaviour):
    """A peer that acts as a migration destination and then misbehaves."""
    import struct
    import threading
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(('127.0.0.1', port))
    lst.listen(1)

    def answer(conn, code, msg):
        conn.sendall(struct.pack('<II', code, len(msg)) + msg.encode())

    def run():
        conn, _ = lst.accept()
        lst.close()
        hello = conn.recv(8 + 4 + 8 + 8 + 4)
        if behaviour == 'version':
            answer(conn, 1, 'migration protocol version mismatch')
        elif behaviour == 'vanish-during-memory':
            answer(conn, 0, 'ok')
            conn.recv(65536)
        elif behaviour == 'vanish-before-ack':
            answer(conn, 0, 'ok')
            # Read everything up to the end record, then go away without a word.
            data = b''
            while not data.endswith(struct.pack('<I', 4)):
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
                data = data[-16:]
        conn.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@test
def failed_migrations_leave_the_source_running():
    src = Vm()
    try:
        wait_ticks(src, 2)
        cases = [('nobody listening', None, 'connect'),
                 ('version mismatch', 'version', 'version mismatch'),
                 ('destination gone while memory is sent', 'vanish-during-memory', ''),
                 ('destination gone before saying it runs', 'vanish-before-ack', 'did not take the VM')]
        for what, behaviour, needle in cases:
            port = free_port()
            t = fake_destination(port, behaviour) if behaviour else None
            status, body = src.request('PUT', '/migration/send',
                                       {'destination': 'tcp:127.0.0.1:%d' % port, 'wait': True})
            check(status == 500, '%s: HTTP %d %r' % (what, status, body))
            validate(body, 'Error')
            check(needle in body['error'], '%s: error %r' % (what, body['error']))
            if t:
                t.join(5)
            before = src.ticks()
            time.sleep(0.6)
            check(src.p.poll() is None and src.ticks() > before, '%s: the source stopped running' % what)
            status, info = src.request('GET', '/migration')
            check(info['state'] == 'failed', '%s: GET /migration says %r' % (what, info))
            check(src.request('GET', '/vm')[1]['state'] == 'running', '%s: the VM is not running' % what)
    finally:
        src.close()


def cli(*args):
    return subprocess.run([CLI] + list(args), capture_output=True, text=True, timeout=30)


@test
def cli_by_hand_and_by_program():
    vm = Vm()
    try:
        p = cli('vm', 'info', '--api-socket', vm.sock)
        check(p.returncode == 0 and 'state:   running' in p.stdout, 'casulo vm info: %r' % p.stdout)
        p = cli('vm', 'info', '--api-socket', vm.sock, '--json')
        validate(json.loads(p.stdout), 'VmInfo')
        p = cli('vm', 'pause', '--api-socket', vm.sock)
        check(p.returncode == 0 and p.stdout.strip() == 'paused', 'casulo vm pause: %r' % p.stdout)
        p = cli('vm', 'shutdown', '--api-socket', vm.sock)
        check(p.returncode == 1 and 'while the VM is paused (HTTP 409)' in p.stderr, 'conflict: %r' % p.stderr)
        p = cli('vm', 'resume', '--api-socket', vm.sock)
        check(p.returncode == 0, 'casulo vm resume: %r' % p.stderr)
        p = cli('vm', 'info', '--api-socket', '/nonexistent.sock')
        check(p.returncode == 1 and "api socket '/nonexistent.sock'" in p.stderr, 'bad socket: %r' % p.stderr)
        p = cli('vm', 'pause')
        check(p.returncode == 2 and '--api-socket' in p.stderr, 'missing socket: %r' % p.stderr)
        p = cli('vm', 'stop', '--api-socket', vm.sock)
        check(p.returncode == 0 and vm.p.wait(timeout=10) == 0, 'casulo vm stop')
    finally:
        vm.close()


def main():
    print('TAP version 13')
    print('1..%d' % len(TESTS), flush=True)
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        for i, t in enumerate(TESTS, 1):
            print('ok %d - %s # SKIP /dev/kvm is not usable' % (i, t.__name__))
        return 0
    failed = 0
    for i, t in enumerate(TESTS, 1):
        try:
            t()
            print('ok %d - %s' % (i, t.__name__))
        except Exception as e:
            failed += 1
            lines = [str(e)] if isinstance(e, Failure) else traceback.format_exc().splitlines()
            for line in lines:
                print('# ' + line)
            print('not ok %d - %s' % (i, t.__name__))
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == '__main__':
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
