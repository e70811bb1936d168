#!/usr/bin/python3
"""The `linux` suite's device tests: virtio-rng, -console, -vsock and
-balloon seen from real Debian guests.

One process, TAP output, so that the whole file costs one lab boot where
the host has no hardware virtualization (meson runs it through
tests/lab/run).  Each test boots the default guest with casulo-vmm; the
guest's initrd is the default one with tests/guest-tools' archive
appended (guest-tool: vsock echo and connect, memtouch), since busybox
has no vsock.

usage: device_tests.py --vmm build/casulo-vmm --guest build/guest
                       --tools build/tests/guest-tools/guest-tools.cpio [--filter SUBSTR]
"""
import argparse
import faulthandler
import hashlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from guest_tests import (QUIET, Failure, api_put, check, initrd_with_tools, raise_if_lab_fault, raise_timed_out, run_tests,
                         run_vmm)
from taprun import kvm_missing

TESTS = []
MiB = 1 << 20


def test(fn):
    TESTS.append(fn)
    return fn


class Guest:
    def __init__(self, args, workdir):
        self.vmm = args.vmm
        self.kernel = os.path.join(args.guest, 'vmlinuz')
        self.initrd = initrd_with_tools(os.path.join(args.guest, 'initrd.img'), args.tools,
                                        os.path.join(workdir, 'initrd-tools.img'))
        self.tools = args.tools
        self.dir = workdir

    def path(self, name):
        return os.path.join(self.dir, name)

    def argv(self, command, extra=()):
        line = QUIET + ' -- /bin/sh -c "%s"' % command
        return [self.vmm, '--kernel', self.kernel, '--initrd', self.initrd, '--cmdline', line] + list(extra)

    def run(self, command, extra=(), timeout=120):
        return run_vmm(self.argv(command, extra), timeout=timeout)

    def start(self, command, extra=()):
        return Session(self.argv(command, extra))


class Session:
    """casulo-vmm running in the background; its console output is collected."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.set_blocking(self.p.stdout.fileno(), False)
        self.buf = b''

    def poll_output(self):
        chunk = self.p.stdout.read()
        if chunk:
            self.buf += chunk

    def expect(self, text, timeout=60):
        deadline = time.monotonic() + timeout
        while text not in self.buf:
            if time.monotonic() >= deadline:
                raise_timed_out(self.p, 'never saw %r; got %r' % (text, self.buf[-500:]))
            self.poll_output()
            if text in self.buf:
                break
            if self.p.poll() is not None:
                err = self.p.stderr.read()
                why = 'casulo-vmm exited (%s) before %r; got %r; stderr %r' % (self.p.returncode, text,
                                                                             self.buf[-500:], err[-500:])
                # Nested SVM on TCG resets a busy guest now and then
                # (docs/lab.md): run_one() runs the test again.
                raise_if_lab_fault(err.decode(errors='replace'), why)
                raise Failure(why)
            time.sleep(0.05)

    def text(self):
        self.poll_output()
        return self.buf.decode(errors='replace')

    def wait_for(self, what, fn, timeout=60, interval=0.2, beat=None, detail=None):
        """wait_for() while this guest runs; returns fn()'s first true value.
        A guest whose command prints a line every `beat` seconds and that
        printed nothing for 5 beats when time runs out has wedged:
        raise_timed_out() (a lab fault inside the lab, docs/lab.md).  Any
        other timeout is a Failure that says detail() and the console's end."""
        deadline = time.monotonic() + timeout
        printed, last_print = len(self.buf), time.monotonic()
        while True:
            value = fn()
            if value:
                return value
            self.poll_output()
            now = time.monotonic()
            if len(self.buf) != printed:
                printed, last_print = len(self.buf), now
            if self.p.poll() is not None:
                err = self.p.stderr.read().decode(errors='replace')
                why = 'casulo-vmm exited (%s) while waiting for %s; stderr %r' % (self.p.returncode, what, err[-500:])
                raise_if_lab_fault(err, why)
                raise Failure(why)
            if now >= deadline:
                why = 'timed out waiting for %s%s; console %r' % (what, detail() if detail else '', self.buf[-300:])
                if beat and now - last_print > 5 * beat:
                    raise_timed_out(self.p, '%s; the guest printed nothing for %.0f s' % (why, now - last_print))
                raise Failure(why)
            time.sleep(interval)

    def rss(self):
        with open('/proc/%d/status' % self.p.pid) as f:
            m = re.search(r'VmRSS:\s+(\d+) kB', f.read())
        return int(m.group(1)) * 1024

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.p.stdout.close()
        self.p.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def wait_for(what, fn, timeout=60, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        check(time.monotonic() < deadline, 'timed out waiting for %s' % what)
        time.sleep(interval)


def wait_path(path, timeout=30):
    wait_for('%s to appear' % path, lambda: os.path.exists(path), timeout, 0.05)


# --- virtio-rng ---------------------------------------------------------------

@test
def rng_feeds_hwrng(g):
    p = g.run('cat /sys/class/misc/hw_random/rng_current; head -c 4096 /dev/hwrng | wc -c')
    check(p.returncode == 0, 'exit %d: %r' % (p.returncode, p.out[-300:]))
    check(re.search(r'^virtio_rng\.\d+$', p.out, re.M), 'rng_current is not virtio: %r' % p.out[-300:])
    check(re.search(r'^4096$', p.out, re.M), 'did not read 4096 bytes from /dev/hwrng: %r' % p.out[-300:])
    p = g.run('cat /sys/class/misc/hw_random/rng_current', extra=['--rng=off'])
    check(re.search(r'^none$', p.out, re.M), 'with --rng=off rng_current is %r' % p.out[-200:])


@test
def rng_boot_cost(g):
    # Time to power off from a guest that reads nothing: what the device
    # costs a boot (probe, the hwrng thread's first reads).
    times = {'on': [], 'off': []}
    for _ in range(3):
        for mode in ('off', 'on'):
            p = g.run('true', extra=['--rng=' + mode])
            check(p.returncode == 0, 'exit %d' % p.returncode)
            times[mode].append(p.seconds)
    on, off = statistics.median(times['on']), statistics.median(times['off'])
    return 'median boot+poweroff %.2fs with, %.2fs without (%+.0f ms)' % (on, off, (on - off) * 1000)


# --- virtio-console -----------------------------------------------------------

@test
def console2_file_gets_guest_output(g):
    out = g.path('console2.log')
    p = g.run('echo line-for-hvc0 > /dev/hvc0; ls /dev/hvc0', extra=['--console2', 'file:' + out])
    check(p.returncode == 0, 'exit %d: %r' % (p.returncode, p.out[-300:]))
    data = open(out, 'rb').read()
    check(b'line-for-hvc0' in data, 'file has %r' % data)


@test
def console2_socket_both_ways(g):
    path = g.path('console2.sock')
    # Raw mode: the line discipline neither echoes nor waits for a newline.
    cmd = ('stty -F /dev/hvc0 raw -echo; exec 3<>/dev/hvc0; echo from-guest >&3; '
           'head -c 9 <&3 > /tmp/in; echo got=$(cat /tmp/in)')
    with g.start(cmd, extra=['--console2', 'socket:' + path]) as s:
        wait_path(path)
        c = socket.socket(socket.AF_UNIX)
        c.connect(path)
        c.settimeout(60)
        data = b''
        while b'from-guest' not in data:
            chunk = c.recv(100)
            check(chunk, 'socket closed; got %r' % data)
            data += chunk
        c.sendall(b'to-guest\n')
        s.expect(b'got=to-guest')
        check(s.p.wait(timeout=30) == 0, 'exit %s' % s.p.returncode)
        c.close()


# --- virtio-vsock -------------------------------------------------------------

def serve(path, handler):
    """A host listener on path; each connection is handled on its own thread."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(8)

    def loop():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handler, args=(conn,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    return listener


def echo_handler(conn, delay=0, stats=None):
    if delay:
        time.sleep(delay)  # a slow reader: the guest must wait, not the VMM buffer
    total, start = 0, time.monotonic()
    while True:
        data = conn.recv(65536)
        if not data:
            break
        total += len(data)
        conn.sendall(data)
    if stats is not None:
        stats.append((total, time.monotonic() - start))
    conn.shutdown(socket.SHUT_WR)
    conn.close()


def unix_line(path, line, timeout=60):
    """Connect to a Unix socket, send a line, read one back byte by byte
    (what follows stays unread); returns (socket, reply line)."""
    c = socket.socket(socket.AF_UNIX)
    c.connect(path)
    c.settimeout(timeout)
    c.sendall(line + b'\n')
    reply = b''
    while not reply.endswith(b'\n'):
        ch = c.recv(1)
        if not ch:
            break
        reply += ch
    return c, reply


def host_connect(path, port):
    """CONNECT to a guest port through the vsock socket; returns (socket, reply line)."""
    return unix_line(path, b'CONNECT %d' % port)


def vsock_args(g, cid=3):
    return ['--vsock', 'cid=%d,socket=%s' % (cid, g.path('vsock')), '--memory', '512M']


@test
def vsock_guest_connects_to_host_echo(g):
    stats = []
    listener = serve(g.path('vsock_5000'), lambda c: echo_handler(c, stats=stats))
    try:
        # 10 MiB each way through a 256 KiB credit window, checked byte for byte.
        p = g.run('head -c 10485760 /dev/urandom > /tmp/d; guest-tool vsock-connect 2 5000 < /tmp/d > /tmp/b; '
                  'cmp /tmp/d /tmp/b && echo SAME $(wc -c < /tmp/b)', extra=vsock_args(g))
    finally:
        listener.close()
    m = re.search(r'SAME (\d+)', p.out)
    check(m and int(m.group(1)) == 10 * MiB, 'echo differs or is short: %r %r' % (p.out[-500:], p.err[-500:]))
    check(stats, 'the host echo server saw no connection')
    return '10 MiB echoed in %.2fs (%.1f MiB/s each way)' % (stats[0][1], 10 / max(stats[0][1], 1e-3))


@test
def vsock_host_connects_to_guest_listener(g):
    path = g.path('vsock')
    with g.start('guest-tool vsock-listen 6000; sleep 600', extra=vsock_args(g)) as s:
        s.expect(b'listening on 6000')
        c, line = host_connect(path, 6000)
        check(re.match(rb'OK \d+\n$', line), 'reply %r' % line)
        data = os.urandom(10 * MiB)
        got = []

        def reader():
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    return
                got.append(chunk)
        t = threading.Thread(target=reader)
        t.start()
        start = time.monotonic()
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        t.join(120)
        secs = time.monotonic() - start
        back = b''.join(got)
        check(len(back) == len(data), 'echoed %d of %d bytes' % (len(back), len(data)))
        check(hashlib.sha256(back).digest() == hashlib.sha256(data).digest(), 'echo differs')
        c.close()
        return 'reply %r; 10 MiB echoed in %.2fs' % (line.strip().decode(), secs)


@test
def vsock_refusals(g):
    path = g.path('vsock')
    with g.start('guest-tool vsock-listen 6000 & sleep 1; guest-tool vsock-connect 2 7777 </dev/null; '
                 'echo rc=$?; sleep 600', extra=vsock_args(g)) as s:
        # The guest connecting to a host port nobody listens on: reset.
        s.expect(b'rc=')
        out = s.text()
        check('rc=1' in out and 'Connection reset by peer' in out, 'guest connect to no listener: %r' % out[-300:])
        # The host connecting to a guest port nobody listens on, or with a
        # bad line: one "ERR <why>" line, then closed.
        for request, why in ((b'CONNECT 6001\n', b'ERR refused\n'), (b'CONNEKT 6000\n', b'ERR bad line\n'),
                             (b'CONNECT 99999999999\n', b'ERR bad line\n'), (b'x' * 100, b'')):
            c = socket.socket(socket.AF_UNIX)
            c.connect(path)
            c.settimeout(30)
            c.sendall(request)
            reply = b''
            try:
                while True:
                    part = c.recv(100)
                    if not part:
                        break
                    reply += part
            except ConnectionResetError:
                pass  # closed with the rest of a long line unread: the line may be lost
            check(reply == why or (not why and reply in (b'', b'ERR bad line\n')),
                  '%r got %r, wanted %r and a close' % (request, reply, why))
            c.close()


@test
def vsock_slow_host_reader_holds_guest_back(g):
    # The host program reads nothing for 3 s while the guest sends 32 MiB:
    # the guest must wait for credit, the VMM must not buffer it.
    listener = serve(g.path('vsock_5001'), lambda c: echo_handler(c, delay=3))
    try:
        with g.start('head -c 33554432 /dev/zero > /tmp/d; echo READY; '
                     'guest-tool vsock-connect 2 5001 < /tmp/d | wc -c; sleep 600',
                     extra=vsock_args(g)) as s:
            s.expect(b'READY')
            base = s.rss()
            time.sleep(2.5)
            grown = s.rss() - base
            s.expect(b'33554432', timeout=120)
    finally:
        listener.close()
    check(grown < 8 * MiB, 'VMM RSS grew by %d KiB while the host did not read' % (grown // 1024))
    return 'VMM RSS grew %d KiB during the stall' % (grown // 1024)


# --- virtio-balloon -----------------------------------------------------------

class Balloon:
    """The VM's balloon through its API (PUT /balloon, GET /balloon/statistics)."""

    def __init__(self, sock):
        self.sock = sock

    def set(self, mib):
        return api_put(self.sock, '/balloon', {'target_mib': mib})

    def info(self):
        status, info = api_get(self.sock, '/balloon/statistics')
        check(status == 200, 'GET /balloon/statistics: %d %r' % (status, info))
        return info

    def actual(self):
        return self.info()['actual_mib'] * MiB

    def stats(self):
        return self.info().get('stats', {})

    def detail(self):
        """What the VMM sees, for a timeout's message: target, driver's
        count, and the device's notifications and interrupts."""
        info = self.info()
        status, metrics = api_get(self.sock, '/metrics')
        counters = [d['counters'] for d in (metrics or {}).get('devices', []) if d['kind'] == 'virtio-balloon']
        return ' (target %s MiB, actual %s MiB, device %r)' % (info.get('target_mib'), info.get('actual_mib'),
                                                                counters[0] if counters else status)


def api_get(sock, path):
    """GET from a casulo-vmm API socket (HTTP/1.0, one request); returns (status, parsed body)."""
    import json
    c = socket.socket(socket.AF_UNIX)
    c.connect(sock)
    c.settimeout(30)
    c.sendall(b'GET %s HTTP/1.0\r\n\r\n' % path.encode())
    data = b''
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    c.close()
    head, _, body = data.partition(b'\r\n\r\n')
    return int(head.split()[1]), (json.loads(body) if body else None)


def memtotal_series(s):
    return [int(x) * 1024 for x in re.findall(r'MemTotal:\s+(\d+) kB', s.text())]


@test
def balloon_inflate_and_deflate(g):
    api = g.path('api.sock')
    balloon = Balloon(api)
    extra = ['--memory', '512M', '--balloon', 'stats=1', '--api-socket', api]
    # Touch most of the guest's memory first, so the host really backs it.
    cmd = 'guest-tool memtouch 380 && echo TOUCHED; while :; do grep MemTotal /proc/meminfo; sleep 1; done'
    with g.start(cmd, extra=extra) as s:
        s.expect(b'TOUCHED')
        total0 = wait_for('MemTotal', lambda: memtotal_series(s))[-1]
        rss0 = s.rss()
        status, body = balloon.set(128)
        check(status == 204, 'PUT /balloon 128 MiB: %d %r' % (status, body))
        s.wait_for('the guest to inflate', lambda: balloon.actual() == 128 * MiB, 90, beat=1, detail=balloon.detail)
        rss1 = s.rss()
        stats = s.wait_for('statistics', lambda: balloon.stats().get('free_memory', 0) > 0 and balloon.stats(),
                           beat=1)
        n = len(memtotal_series(s))
        total1 = s.wait_for('MemTotal to drop',
                            lambda: [t for t in memtotal_series(s)[n:] if t <= total0 - 120 * MiB], 30, beat=1)[-1]
        check(rss0 - rss1 >= 100 * MiB, 'VMM RSS went from %d to %d MiB' % (rss0 // MiB, rss1 // MiB))
        info = balloon.info()
        check(info['actual_mib'] == 128 and info['target_mib'] == 128, 'GET /balloon/statistics: %r' % info)
        status, body = balloon.set(0)
        check(status == 204, 'PUT /balloon: %d %r' % (status, body))
        status, metrics = api_get(api, '/metrics')
        counters = {d['kind']: d['counters'] for d in metrics['devices']} if status == 200 else {}
        check(counters.get('virtio-balloon', {}).get('released_bytes', 0) >= 128 * MiB,
              'GET /metrics has no balloon counters to match: %r' % counters)
        check(counters.get('virtio-rng', {}).get('bytes', 0) > 0, 'virtio-rng served nothing: %r' % counters)
        s.wait_for('the guest to deflate', lambda: balloon.actual() == 0, 90, beat=1, detail=balloon.detail)
        n = len(memtotal_series(s))
        total2 = s.wait_for('MemTotal to rise',
                            lambda: [t for t in memtotal_series(s)[n:] if t >= total0 - 4 * MiB], 30, beat=1)[-1]
        status, body = balloon.set(1 << 20)
        check(status == 400 and 'more than guest memory' in body['error'],
              'a target above guest memory: %d %r' % (status, body))
    return ('RSS %d -> %d MiB (-%d MiB); guest MemTotal %d -> %d -> %d MiB; free_memory=%d total_memory=%d' %
            (rss0 // MiB, rss1 // MiB, (rss0 - rss1) // MiB, total0 // MiB, total1 // MiB, total2 // MiB,
             stats.get('free_memory', 0), stats.get('total_memory', 0)))


@test
def balloon_deflates_on_oom(g):
    # 160 MiB of a 256 MiB guest in the balloon, then a program needs 150:
    # with deflate-on-oom the guest takes balloon pages back instead of
    # killing it.
    api = g.path('api.sock')
    extra = ['--memory', '256M', '--balloon', 'target=160M,deflate-on-oom=on', '--api-socket', api]
    cmd = ('while :; do set -- $(grep MemFree /proc/meminfo); [ $2 -lt 100000 ] && break; sleep 0.2; done; '
           'echo INFLATED; guest-tool memtouch 150 && echo TOUCHED-OK; sleep 600')
    with g.start(cmd, extra=extra) as s:
        s.expect(b'INFLATED', timeout=90)
        s.expect(b'TOUCHED-OK', timeout=180)
        actual = Balloon(api).actual()
    check(actual < 160 * MiB, 'balloon still holds %d MiB' % (actual // MiB))
    return 'the guest took %d MiB back from the balloon' % ((160 * MiB - actual) // MiB)


@test
def balloon_free_page_reporting_returns_memory(g):
    extra = ['--memory', '512M', '--balloon', 'free-page-reporting=on']
    with g.start('guest-tool memtouch 300 && echo TOUCHED; sleep 600', extra=extra) as s:
        # memtouch frees its memory as it exits, before TOUCHED: the peak
        # is sampled while it runs, not after (reporting could be under way).
        peak, deadline = 0, time.monotonic() + 60
        while b'TOUCHED' not in s.buf and s.p.poll() is None and time.monotonic() < deadline:
            peak = max(peak, s.rss())
            s.poll_output()
            time.sleep(0.1)
        s.expect(b'TOUCHED')
        peak = max(peak, s.rss())
        # Linux reports free 2 MiB blocks a couple of seconds after they are freed.
        seen = []

        def reported():
            seen.append(s.rss())
            return seen[-1] <= peak - 100 * MiB and seen[-1]
        try:
            low = wait_for('free pages to be reported', reported, 60, 0.5)
        except Failure as e:
            raise Failure('%s: RSS %d MiB at the peak, then %s MiB' % (e, peak // MiB,
                                                                      ' '.join(str(r // MiB) for r in seen[::10])))
    return 'RSS %d -> %d MiB without inflating' % (peak // MiB, low // MiB)


class FreshDir:
    """Gives each test its own folder for sockets and files, and a stack
    dump on stderr if it hangs past every timeout of its own."""

    def __init__(self, g, workdir):
        self.g, self.workdir = g, workdir

    def wrap(self, t):
        def run(_):
            self.g.dir = tempfile.mkdtemp(dir=self.workdir)
            faulthandler.dump_traceback_later(240)
            try:
                return t(self.g)
            finally:
                faulthandler.cancel_dump_traceback_later()
        run.__name__ = t.__name__
        return run


# --- snapshots ---------------------------------------------------------------

@test
def snapshot_restore_keeps_the_devices(g):
    # A guest using virtio-rng, -vsock and -balloon is snapshotted and
    # restored in a new VMM: each device goes on working there.
    api, snap, api2 = g.path('api.sock'), g.path('snap'), g.path('api2.sock')
    cmd = ('guest-tool vsock-listen 6000 & sleep 2; echo READY; '
           'while :; do echo rng=$(head -c 16 /dev/hwrng | wc -c); sleep 1; done')
    with g.start(cmd, extra=vsock_args(g) + ['--balloon', 'on', '--api-socket', api,
                                             '--landlock', 'on', '--snapshot-dir', os.path.dirname(snap)]) as s:
        s.expect(b'READY')
        s.expect(b'rng=16')
        status, body = api_put(api, '/vm/state', {'state': 'paused'})
        check(status == 204, 'pause: HTTP %d %r' % (status, body))
        status, body = api_put(api, '/snapshot/create', {'path': snap})
        check(status == 204, 'snapshot: HTTP %d %r' % (status, body))
    path2 = g.path('vsock2')
    with Session([g.vmm, '--restore', snap, '--vsock', 'cid=3,socket=' + path2, '--api-socket', api2]) as r:
        n = len(r.text())
        r.wait_for('rng output after restore', lambda: 'rng=16' in r.text()[n:], 60, beat=1)
        wait_path(path2)
        c, line = host_connect(path2, 6000)
        check(re.match(rb'OK \d+\n$', line), 'vsock after restore: reply %r' % line)
        c.sendall(b'ping')
        c.shutdown(socket.SHUT_WR)
        check(c.recv(10) == b'ping', 'no echo after restore')
        c.close()
        balloon = Balloon(api2)
        status, body = balloon.set(64)
        check(status == 204, 'balloon target refused after restore: %d %r' % (status, body))
        r.wait_for('the restored guest to inflate', lambda: balloon.actual() == 64 * MiB, 90, beat=1,
                   detail=balloon.detail)
        # The statistics buffer the first VMM held is handed back by this one.
        r.wait_for('statistics after restore', lambda: 'free_memory' in balloon.stats(), 30, 0.5, beat=1)


def main(tests=None, why_skip=None, workdir_in=None):
    """Run tests (this file's by default) from the command line; also the
    main of the other files that boot the guest with its tools.
    why_skip(args) may give a reason to skip them all; workdir_in is where
    the tests' folders go (default: the temporary directory)."""
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True)
    ap.add_argument('--tools', required=True)
    ap.add_argument('--filter', default=os.environ.get('TEST_FILTER'))
    args = ap.parse_args()
    selected = [t for t in (tests or TESTS) if not args.filter or args.filter in t.__name__]
    missing = [f for f in ('vmlinuz', 'initrd.img') if not os.path.exists(os.path.join(args.guest, f))]
    skip = None
    if missing:
        skip = 'default guest not built (%s missing; run make guest)' % missing[0]
    elif not os.path.exists(args.tools):
        skip = 'guest tools archive %s not built' % args.tools
    else:
        skip = kvm_missing() or (why_skip(args) if why_skip else None)
    with tempfile.TemporaryDirectory(prefix='casulo-dev-', dir=workdir_in) as workdir:
        g = None if skip else Guest(args, workdir)
        fresh = FreshDir(g, workdir)
        return run_tests([fresh.wrap(t) for t in selected], g, skip)


if __name__ == '__main__':
    sys.exit(main())
