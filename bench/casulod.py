#!/usr/bin/python3
"""bench/casulod.sh: casulod beside libvirtd (Debian's, its QEMU driver),
each keeping 100 defined objects of which 30 run, measured in the same run:

  ls        `casulo ls` beside `virsh list --all` (wall time of the
            command, medians of RUNS)
  reattach  SIGKILL of the service, then its start until a client sees the
            30 running again (wall), medians of ROUNDS; casulod's own
            figure for the reattach (from its exec) beside
  api       50 concurrent client processes, each with REQS requests of
            each kind (bounded in time too): the list of all 100, and one
            object; p50 and p99 latency.  casulod over its Unix socket with
            a connection per client (as libvirt-python's clients have) and
            with one per request (as each casulo command), and over HTTPS
            on loopback with the bearer token

casulod's 30 running are busybox containers here (this host has no KVM;
70 stopped VM and container definitions beside them); libvirtd's are 30
QEMU (TCG) domains started paused, 70 defined.  libvirtd runs in a mount
namespace of its own (its /etc/libvirt, /var/lib/libvirt, /run/libvirt on
temporary directories, QEMU as root): the host's libvirt is not touched.
"""
import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'daemon'))

DEFINED, RUNNING, CLIENTS = 100, 30, 50
SLEEPER = ['sh', '-c', 'while true; do sleep 5; done']


def median_ms(xs):
    return statistics.median(xs) * 1000.0


def percentile_ms(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] * 1000.0


def timed_command(argv, runs, env=None):
    """Wall times of argv, after 3 warm-up runs."""
    times = []
    for i in range(runs + 3):
        t = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        if p.returncode != 0:
            raise SystemExit('%s: exit %d: %s' % (' '.join(argv), p.returncode, p.stderr.decode()[-300:]))
        if i >= 3:
            times.append(time.perf_counter() - t)
    return times


def concurrent_latency(what, make_client, calls, reqs, limit_s=120):
    """CLIENTS processes (not threads: Python's lock between threads would
    be measured), each calling each of calls REQS times through its own
    client; latencies per call name, and the wall time.  Stops at limit_s."""
    ctx = multiprocessing.get_context('fork')
    results = ctx.Queue()
    barrier = ctx.Barrier(CLIENTS)
    deadline = time.monotonic() + limit_s

    def client(k):
        lat = {name: [] for name, _ in calls}
        try:
            c = make_client()
            barrier.wait()
            for i in range(reqs):
                for name, fn in calls:
                    if time.monotonic() > deadline:
                        break
                    t = time.perf_counter()
                    fn(c, k, i)
                    lat[name].append(time.perf_counter() - t)
            results.put((None, lat))
        except Exception as e:  # noqa: BLE001 - reported below
            results.put((repr(e), lat))

    procs = [ctx.Process(target=client, args=(k,)) for k in range(CLIENTS)]
    t = time.perf_counter()
    for p in procs:
        p.start()
    lat = {name: [] for name, _ in calls}
    errors = []
    for _ in procs:
        error, part = results.get(timeout=limit_s + 60)
        if error:
            errors.append(error)
        for name in lat:
            lat[name] += part[name]
    took = time.perf_counter() - t
    for p in procs:
        p.join()
    if errors:
        raise SystemExit('%s: %d client errors, first: %s' % (what, len(errors), errors[0]))
    return lat, took


# --- casulod ------------------------------------------------------------------

def measure_casulod(args):
    import daemonlib
    import http.client
    import ssl
    from daemonlib import CASULO, Daemon, UnixHTTP, bundle, free_port

    class QuietDaemon(Daemon):
        def argv(self):
            return [a for a in super().argv() if a not in ('--log-level', 'debug')]

    kernel = os.path.join(daemonlib.BUILD, 'tests', 'kvm', 'test-guest.elf')
    d = QuietDaemon()
    out = {}
    try:
        b = bundle(SLEEPER)
        stopped_vms = (DEFINED - RUNNING) // 2 if os.path.exists(kernel) else 0
        for i in range(DEFINED):
            name = 'o%03d' % i
            if i < stopped_vms:
                d.create(name, 'vm', {'kernel': kernel, 'memory_mib': 64})
            else:
                d.create(name, 'container', {'bundle': b}, start=i >= DEFINED - RUNNING)
        running = [i['name'] for i in d.get('/v1/instances') if i['state'] == 'running']
        if len(running) != RUNNING:
            raise SystemExit('casulod: %d running, not %d' % (len(running), RUNNING))
        out['mix'] = '%d VMs and %d containers stopped, %d containers running' % (
            stopped_vms, DEFINED - RUNNING - stopped_vms, RUNNING)
        env = dict(os.environ, CASULOD_SOCKET=d.sock)
        out['ls'] = timed_command([CASULO, 'ls'], args.runs, env)
        out['ls --json'] = timed_command([CASULO, 'ls', '--json'], args.runs, env)

        ready, own = [], []
        for _ in range(args.rounds):
            d.kill9()
            t = time.perf_counter()
            d.start(wait=False)
            while True:
                try:
                    status, body, _ = d.request('GET', '/v1', check_schema=False, timeout=5)
                    if status == 200:
                        break
                except OSError:
                    pass
                if d.p.poll() is not None or time.perf_counter() - t > 30:
                    raise SystemExit('casulod did not come back: %s' % d.log_tail())
                time.sleep(0.001)
            ready.append(time.perf_counter() - t)
            if body['reattach']['found'] != RUNNING:
                raise SystemExit('casulod found %r after SIGKILL' % body['reattach'])
            own.append(body['reattach']['ms'] / 1000.0)
        out['reattach'], out['reattach own'] = ready, own

        def get(path):
            # The body read, not parsed: the server and the transport are
            # measured, not Python's JSON decoder.
            def call(conn, k, i):
                conn.request('GET', path(k, i), headers=auth)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise RuntimeError('GET %s: %d' % (path(k, i), r.status))
            return call

        def fresh(new_conn, fn):
            # One connection per request, as each casulo command makes.
            def call(_, k, i):
                c = new_conn()
                try:
                    fn(c, k, i)
                finally:
                    c.close()
            return call

        list_all = get(lambda k, i: '/v1/instances')
        one = get(lambda k, i: '/v1/instances/o%03d' % ((k + i) % DEFINED))
        auth = {}
        unix = lambda: UnixHTTP(d.sock, timeout=60)  # noqa: E731
        for key, make, calls in (
                ('unix', unix, [('list', list_all), ('one', one)]),
                ('unix fresh', lambda: None, [('list', fresh(unix, list_all)), ('one', fresh(unix, one))])):
            lat, took = concurrent_latency('casulod over the ' + key, make, calls, args.reqs)
            out['api list ' + key], out['api one ' + key], out['api took ' + key] = lat['list'], lat['one'], took
        # HTTPS on loopback with the bearer token: casulod once more, with
        # --listen (the same state directory).
        from imagetest import make_ca
        tls = tempfile.mkdtemp(prefix='casulod-bench-tls-', dir='/tmp')
        try:
            make_ca(tls)
            with open(os.path.join(tls, 'token'), 'w') as f:
                f.write('bench-token-0123456789\n')
            port = free_port()
            d.stop()
            d.extra = ['--listen', '127.0.0.1:%d' % port, '--tls-cert', tls + '/server.crt',
                       '--tls-key', tls + '/server.key', '--token-file', tls + '/token']
            d.start()
            ctx = ssl.create_default_context(cafile=tls + '/ca/ca.crt')
            auth = {'Authorization': 'Bearer bench-token-0123456789'}
            lat, took = concurrent_latency(
                'casulod over HTTPS', lambda: http.client.HTTPSConnection('127.0.0.1', port, context=ctx, timeout=60),
                [('list', list_all), ('one', one)], args.reqs)
            out['api list https'], out['api one https'], out['api took https'] = lat['list'], lat['one'], took
        finally:
            shutil.rmtree(tls, ignore_errors=True)
    finally:
        d.cleanup()
    return out


# --- libvirtd (in a mount namespace of its own) -------------------------------

DOMAIN_XML = """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>%s</emulator></devices>
</domain>"""


def libvirt_inside(args, result_path):
    """Runs in the mount namespace: libvirtd on temporary directories."""
    import libvirt
    libvirt.registerErrorHandler(lambda *_: None, None)
    work = tempfile.mkdtemp(prefix='casulod-bench-libvirt-', dir='/tmp')
    etc = os.path.join(work, 'etc')
    shutil.copytree('/etc/libvirt', etc, symlinks=True)
    with open(os.path.join(etc, 'qemu.conf'), 'a') as f:
        # No libvirt-qemu user's images, no virtlogd: QEMU as root, its
        # output to a file.
        f.write('\nuser = "root"\ngroup = "root"\ndynamic_ownership = 0\nremember_owner = 0\n'
                'namespaces = []\nstdio_handler = "file"\n')
    mounts = [('/etc/libvirt', etc), ('/var/lib/libvirt', None), ('/run/libvirt', None),
              ('/var/log/libvirt', None), ('/var/cache/libvirt', None)]
    for target, source in mounts:
        os.makedirs(target, exist_ok=True)
        if source is None:
            source = os.path.join(work, target.strip('/').replace('/', '-'))
            os.makedirs(source)
        subprocess.run(['mount', '--bind', source, target], check=True)
    pidfile = os.path.join(work, 'libvirtd.pid')
    log = open(os.path.join(work, 'libvirtd.log'), 'ab')
    uri = 'qemu:///system'
    daemon = [None]

    def start_libvirtd():
        daemon[0] = subprocess.Popen(['/usr/sbin/libvirtd', '--pid-file', pidfile], stdout=log, stderr=log)

    def connect_when_ready(t, want_active):
        while True:
            if daemon[0].poll() is not None:
                raise SystemExit('libvirtd exited with %d (log: %s)' % (daemon[0].returncode, work))
            try:
                conn = libvirt.open(uri)
                if want_active is None or len(conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)) == want_active:
                    return conn
                conn.close()
            except libvirt.libvirtError:
                pass
            if time.perf_counter() - t > 120:
                raise SystemExit('libvirtd did not answer in 120 s (log: %s)' % work)
            time.sleep(0.001)

    out = {}
    start_libvirtd()
    try:
        conn = connect_when_ready(time.perf_counter(), None)
        qemu = shutil.which('qemu-system-x86_64')
        for i in range(DEFINED):
            dom = conn.defineXML(DOMAIN_XML % ('o%03d' % i, qemu))
            if i >= DEFINED - RUNNING:
                dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        conn.close()
        out['mix'] = '%d QEMU (TCG) domains defined, %d of them running paused' % (DEFINED, RUNNING)
        virsh = [shutil.which('virsh'), '-c', uri, 'list', '--all']
        out['ls'] = timed_command(virsh, args.runs)

        ready = []
        for _ in range(args.rounds):
            daemon[0].kill()
            daemon[0].wait()
            t = time.perf_counter()
            start_libvirtd()
            connect_when_ready(t, RUNNING).close()
            ready.append(time.perf_counter() - t)
        out['reattach'] = ready

        def list_all(conn, k, i):
            if len(conn.listAllDomains(0)) != DEFINED:
                raise RuntimeError('listAllDomains: not %d' % DEFINED)

        def one(conn, k, i):
            conn.lookupByName('o%03d' % ((k + i) % DEFINED)).info()

        lat, took = concurrent_latency('libvirtd', lambda: libvirt.open(uri), [('list', list_all), ('one', one)], args.reqs)
        out['api list unix'], out['api one unix'], out['api took unix'] = lat['list'], lat['one'], took
    finally:
        try:
            conn = libvirt.open(uri)
            for dom in conn.listAllDomains(0):
                try:
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
                except libvirt.libvirtError as e:
                    print('libvirt clean-up: %s: %s' % (dom.name(), e), file=sys.stderr)
            conn.close()
        except libvirt.libvirtError as e:
            print('libvirt clean-up: %s' % e, file=sys.stderr)
        daemon[0].terminate()
        daemon[0].wait()
        for target, _ in reversed(mounts):
            subprocess.run(['umount', '-l', target], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    with open(result_path, 'w') as f:
        json.dump(out, f)


def measure_libvirt(args):
    why = None
    if not os.path.exists('/usr/sbin/libvirtd'):
        why = 'libvirtd is not installed (libvirt-daemon-driver-qemu)'
    elif not shutil.which('qemu-system-x86_64'):
        why = 'qemu-system-x86_64 is not installed'
    if why:
        return None, why
    with tempfile.NamedTemporaryFile(suffix='.json') as res:
        p = subprocess.run(['unshare', '-m', '--propagation', 'private', sys.executable, os.path.abspath(__file__),
                            '--runs', str(args.runs), '--rounds', str(args.rounds), '--reqs', str(args.reqs),
                            '--libvirt-inside', res.name])
        if p.returncode != 0:
            return None, 'the libvirt run failed (exit %d)' % p.returncode
        return json.load(open(res.name)), None


# --- the report ---------------------------------------------------------------

def report(ours, peer, why, args):
    print('## casulod beside libvirtd: %d defined, %d running; %d runs, %d reattach rounds, %d clients x %d requests'
          % (DEFINED, RUNNING, args.runs, args.rounds, CLIENTS, args.reqs))
    print('casulod: %s' % ours['mix'])
    print('libvirtd: %s' % (peer['mix'] if peer else 'not measured: ' + why))
    print('%-34s %12s %12s %9s' % ('', 'casulod', 'libvirtd', 'ratio'))

    def row(label, key, fn, peer_key=None):
        a = fn(ours[key])
        pk = peer_key or key
        if peer and pk in peer:
            b = fn(peer[pk])
            print('%-34s %10.2fms %10.2fms %8.2fx' % (label, a, b, a / b if b else float('nan')))
        else:
            print('%-34s %10.2fms %12s %9s' % (label, a, '-', '-'))

    row('ls (median)  [virsh list --all]', 'ls', median_ms)
    row('ls (p90)', 'ls', lambda xs: percentile_ms(xs, 90))
    row('ls --json (median)', 'ls --json', median_ms, 'ls')
    row('reattach after SIGKILL (median)', 'reattach', median_ms)
    row('reattach (max)', 'reattach', lambda xs: max(xs) * 1000.0)
    row("  casulod's own figure (median)", 'reattach own', median_ms, '-')
    for key, what in (('unix', 'Unix socket, a connection per client'),
                      ('unix fresh', 'Unix socket, a connection per request'),
                      ('https', 'HTTPS on loopback with the token, a connection per client')):
        print('api over the %s:' % what)
        row('  list all 100, p50', 'api list ' + key, median_ms, 'api list ' + key)
        row('  list all 100, p99', 'api list ' + key, lambda xs: percentile_ms(xs, 99))
        row('  one object, p50', 'api one ' + key, median_ms)
        row('  one object, p99', 'api one ' + key, lambda xs: percentile_ms(xs, 99))
        print('  requests: casulod %d in %.1f s%s' % (
            len(ours['api list ' + key]) + len(ours['api one ' + key]), ours['api took ' + key],
            '; libvirtd %d in %.1f s' % (len(peer['api list ' + key]) + len(peer['api one ' + key]),
                                         peer['api took ' + key]) if peer and 'api list ' + key in peer else ''))
    print('libvirtd: libvirt-python, a connection per client; list = listAllDomains, one = lookupByName + info')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=20)
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--reqs', type=int, default=20)
    ap.add_argument('--no-peer', action='store_true', help='casulod alone')
    ap.add_argument('--libvirt-inside', metavar='RESULT')
    args = ap.parse_args()
    if args.libvirt_inside:
        libvirt_inside(args, args.libvirt_inside)
        return 0
    if os.geteuid() != 0:
        raise SystemExit('bench/casulod.sh needs root (casulod with containers, libvirtd)')
    ours = measure_casulod(args)
    peer, why = (None, '--no-peer') if args.no_peer else measure_libvirt(args)
    report(ours, peer, why, args)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
