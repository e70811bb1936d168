"""Shared pieces of the benchmarks: how each VMM boots the same guest, a
runner that captures what the guest prints between markers, and the
report (medians, ratios)."""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

QUIET = 'console=ttyS0 quiet reboot=k panic=-1'


class Vmm:
    """A way to boot a guest: casulo-vmm or QEMU's microvm machine."""

    def __init__(self, name, kernel, initrd, vmm_path=None, cpus=1, memory_mib=512, qemu_drive='',
                 qemu_netdev='vhost=off'):
        self.name, self.kernel, self.initrd = name, kernel, initrd
        self.vmm_path, self.cpus, self.memory_mib = vmm_path, cpus, memory_mib
        # QEMU's I/O options: appended to each -drive (e.g. ',aio=io_uring')
        # and to each tap -netdev (vhost=on|off).
        self.qemu_drive, self.qemu_netdev = qemu_drive, qemu_netdev

    def argv(self, cmdline, disks=(), taps=()):
        if self.name == 'casulo-vmm':
            a = [self.vmm_path, '--kernel', self.kernel, '--initrd', self.initrd, '--cpus', str(self.cpus),
                 '--memory', '%dM' % self.memory_mib, '--cmdline', cmdline]
            for d in disks:
                a += ['--disk', 'path=' + d]
            for t, mac in taps:
                a += ['--net', 'tap=%s,mac=%s' % (t, mac)]
            return a
        a = [shutil.which('qemu-system-x86_64'), '-M', 'microvm,accel=kvm,rtc=on', '-cpu', 'host',
             '-smp', str(self.cpus), '-m', '%dM' % self.memory_mib, '-nodefaults', '-no-user-config',
             '-display', 'none', '-serial', 'stdio', '-kernel', self.kernel, '-initrd', self.initrd,
             '-append', cmdline]
        for i, d in enumerate(disks):
            a += ['-drive', 'id=d%d,file=%s,format=raw,if=none,cache=writeback%s' % (i, d, self.qemu_drive),
                  '-device', 'virtio-blk-device,drive=d%d' % i]
        for i, (t, mac) in enumerate(taps):
            a += ['-netdev', 'tap,id=n%d,ifname=%s,script=no,downscript=no,%s' % (i, t, self.qemu_netdev),
                  '-device', 'virtio-net-device,netdev=n%d,mac=%s' % (i, mac)]
        return a


def in_lab():
    return os.environ.get('CASULO_IN_LAB') == '1'


def lab_retry(fn, what, retries=2):
    """Return fn().  Inside the lab a run that fails is run again, at most
    `retries` times, each failure said on stderr: nested SVM on QEMU's TCG
    resets a busy guest now and then, QEMU's as well as ours (docs/lab.md).
    Elsewhere a failure is raised at once."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except RuntimeError as e:
            if not in_lab() or attempt == retries:
                raise
            print('%s failed in the lab (%s); running it again' % (what, str(e)[-300:]), file=sys.stderr, flush=True)


def run_guest(argv, timeout=600, wrap=None):
    """Run a VMM to completion; returns (stdout text, seconds)."""
    if wrap:
        argv = wrap(argv)
    start = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        # A failed run like any other: lab_retry() runs it again in the lab.
        tail = (e.stdout or b'')[-600:].decode(errors='replace')
        raise RuntimeError('%s did not finish in %d s; its output ends with %r' % (argv[0], timeout, tail))
    out = p.stdout.decode(errors='replace').replace('\r\n', '\n')
    return out, time.monotonic() - start


def between(text, begin, end):
    """The text the guest printed between two marker lines."""
    i = text.find(begin)
    j = text.find(end, i + len(begin)) if i >= 0 else -1
    if i < 0 or j < 0:
        raise RuntimeError('markers %s/%s not found in guest output: %r' % (begin, end, text[-800:]))
    return text[i + len(begin):j]


def json_between(text, begin, end):
    """The JSON object a tool printed between two marker lines; a kernel
    message on the same console may land before or after it."""
    part = between(text, begin, end)
    try:
        return json.JSONDecoder().raw_decode(part[part.index('{'):])[0]
    except ValueError as e:
        raise RuntimeError('no JSON report between %s and %s (%s): %r' % (begin, end, e, part[-800:]))


def report(title, metrics, results, names, higher_is_better=True):
    """metrics: [(key, label, unit)]; results[name][key] = [values]."""
    print()
    print(title)
    print('%-22s' % '' + ''.join('%18s' % n for n in names) + '%12s' % 'ratio')
    for key, label, unit in metrics:
        meds = [statistics.median(results[n][key]) for n in names]
        ratio = meds[0] / meds[1] if meds[1] else float('nan')
        print('%-22s' % label + ''.join('%14.1f %-3s' % (m, unit) for m in meds) + '%11.2fx' % ratio)
    print('(medians; ratio = %s / %s; %s is better)' % (names[0], names[1], 'higher' if higher_is_better else 'lower'))


NAMES = ['casulo-vmm', 'qemu-microvm']


def tool_bench_setup():
    """Arguments of the benchmarks that run tools in the guest, and one Vmm
    per VMM booting the default kernel with the tools initrd."""
    ap = argparse.ArgumentParser()
    ap.add_argument('--vmm', required=True)
    ap.add_argument('--guest', required=True)
    ap.add_argument('--initrd', required=True)
    ap.add_argument('--runs', type=int, default=3)
    args = ap.parse_args()
    kernel = os.path.join(args.guest, 'vmlinuz')
    return args, {n: Vmm(n, kernel, args.initrd, args.vmm) for n in NAMES}


def api(sock, method, path, body=None, timeout=600):
    """One request to a casulo-vmm API socket: (status, parsed body)."""
    import http.client
    import json
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(sock)
    c = Conn('localhost', timeout=timeout)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse()
    text = r.read()
    c.close()
    return r.status, (json.loads(text) if text else None)


class Qmp:
    """A minimal QMP client for QEMU's monitor socket."""

    def __init__(self, path, timeout=30):
        import json
        import socket
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile('rw')
        self.json = json
        self.f.readline()  # greeting
        self.cmd('qmp_capabilities')

    def cmd(self, name, **args):
        self.f.write(self.json.dumps({'execute': name, 'arguments': args}) + '\n')
        self.f.flush()
        while True:
            reply = self.json.loads(self.f.readline())
            if 'return' in reply:
                return reply['return']
            if 'error' in reply:
                raise RuntimeError('QMP %s: %s' % (name, reply['error']))

    def migrate(self, uri, interval):
        """Start a migration to uri and poll query-migrate every interval
        seconds until it ends; returns its last status (whatever it is)."""
        self.cmd('migrate', uri=uri)
        while True:
            st = self.cmd('query-migrate')
            if st.get('status') in ('completed', 'failed', 'cancelled'):
                return st
            time.sleep(interval)

    def close(self):
        self.s.close()


def wait_output(p, needle, timeout=120):
    """Read a VMM's stdout (non-blocking) until needle shows; returns the text."""
    os.set_blocking(p.stdout.fileno(), False)
    buf = b''
    deadline = time.monotonic() + timeout
    while needle not in buf:
        if time.monotonic() > deadline:
            raise RuntimeError('no %r in the guest output: %r' % (needle, buf[-300:]))
        chunk = p.stdout.read()
        if chunk:
            buf += chunk
        else:
            time.sleep(0.01)
    return buf


# A run whose tool reported an error, whose output cannot be read, or whose
# guest did not finish: what run_or_fail() counts as a failed run.
RUN_FAILURES = (RuntimeError, OSError, KeyError, IndexError, TypeError, ValueError, subprocess.SubprocessError)


def run_or_fail(fn, what, failures):
    """Return fn(), run a second time if the first fails; if that fails too,
    None, with '<what>: <cause>' appended to `failures` for the report.
    Each failure is said on stderr as it happens; none ends the benchmark
    (a peer's tool that reports an error is a failed run, not a crash)."""
    for attempt in (1, 2):
        try:
            return fn()
        except RUN_FAILURES as e:
            cause = ('%s: %s' % (type(e).__name__, e) if not isinstance(e, RuntimeError) else str(e))[-400:]
            if attempt == 1:
                print('%s failed (%s); running it again' % (what, cause), file=sys.stderr, flush=True)
            else:
                print('%s failed again (%s); counted as a failed run' % (what, cause), file=sys.stderr, flush=True)
                failures.append('%s: %s' % (what, cause))
    return None


def peer_command(argv):
    """A VMM's command line for a report: files by their base name, the
    guest's command line (the same for every VMM) left out."""
    import shlex
    shown = []
    for i, a in enumerate(argv):
        if i > 0 and argv[i - 1] in ('-append', '--cmdline'):
            a = '<guest command line>'
        elif i == 0 or os.path.isabs(a):
            a = os.path.basename(a)
        else:
            a = re.sub(r'(file|path)=/[^,]*/', r'\1=', a)
        shown.append(shlex.quote(a))
    return ' '.join(shown)


def load_line():
    """The load averages where the benchmark runs (in the lab: L1's)."""
    return 'load average here: %.2f %.2f %.2f (%d CPUs)' % (os.getloadavg() + (os.cpu_count(),))


def median_or_none(values):
    return statistics.median(values) if values else None


def run_rounds(runs, names, host, metrics, run_one, failures):
    """results[name][key] = [values] of `runs` rounds, each running every
    one of names (the VMMs, in alternating order) and host (the same
    measurement without a guest; None for none) once: run_one(name) ->
    {key: value}, through run_or_fail(), so a failed run leaves no value."""
    cols = list(names) + ([host] if host else [])
    results = {n: {k: [] for k, _, _ in metrics} for n in cols}
    for i in range(runs):
        for n in (cols if i % 2 == 0 else cols[::-1]):
            r = run_or_fail(lambda: run_one(n), 'run %d of %s' % (i + 1, n), failures)
            if r is None:
                continue
            for k in r:
                results[n][k].append(r[k])
            print('run %d %-13s ' % (i + 1, n) + '  '.join('%s %.0f %s' % (label, r[k], unit)
                                                           for k, label, unit in metrics), flush=True)
    return results


def report_with_host(title, metrics, results, names, host=None, commands=None, notes=(), higher_is_better=True):
    """report() for runs that may have failed, with the host's own figure
    beside them: results[name][key] = [values] (empty when every run
    failed: 'failed' is printed), and results[host] the same jobs run by
    the host itself; each VMM's median is also printed as a fraction of
    the host's.  Then each VMM's command line ({name: argv}, the peer's
    options) and the notes.  Returns the medians, {name: {key: median or
    None}}."""
    cols = list(names) + ([host] if host else [])
    med = {n: {k: median_or_none(results[n][k]) for k, _, _ in metrics} for n in cols}

    def fig(v, unit):
        return '%14s %s' % ('failed', ' ' * len(unit)) if v is None else '%14.1f %-3s' % (v, unit)

    def frac(a, b, fmt):
        return ('%' + fmt) % (a / b) if a is not None and b else 'n/a'
    print()
    print(title)
    head = '%-22s' % '' + ''.join('%18s' % n for n in names) + '%12s' % 'ratio'
    if host:
        head += '%18s' % host + ''.join('%20s' % (n + '/' + host) for n in names)
    print(head)
    for key, label, unit in metrics:
        line = '%-22s' % label + ''.join(fig(med[n][key], unit) for n in names)
        line += '%12s' % frac(med[names[0]][key], med[names[1]][key], '.2fx')
        if host:
            line += fig(med[host][key], unit)
            line += ''.join('%20s' % frac(med[n][key], med[host][key], '.2f') for n in names)
        print(line)
    print('(medians; ratio = %s / %s; %s is better%s)' % (names[0], names[1], 'higher' if higher_is_better else 'lower',
                                                           '; %s = the same measurement without a guest' % host
                                                           if host else ''))
    if commands:
        print_commands(commands)
    for line in notes:
        print(line)
    return med


def print_failures(failures):
    """The failed runs, after a report."""
    if failures:
        print('failed runs (each tried twice): %d' % len(failures))
        for f in failures:
            print('  ' + f)


def any_column_failed(medians):
    """Whether some column of report_with_host()'s medians has no figure."""
    return any(v is None for m in medians.values() for v in m.values())


def print_commands(argv):
    """Each VMM's command line under the report (the peer's options)."""
    for name, a in argv.items():
        print('%-13s %s' % (name + ':', peer_command(a)))


def print_target(med, metrics, keys, host, target, what):
    """'target: casulo-vmm >= T of the host for WHAT: <label> <fraction> (met|not met), ...'"""
    ours, limit = med[NAMES[0]], med[host]
    parts = []
    for key, label, _ in metrics:
        if key in keys:
            f = ours[key] / limit[key] if ours[key] is not None and limit[key] else None
            parts.append('%s %s' % (label, 'n/a' if f is None else '%.2f (%s)' % (f, 'met' if f >= target
                                                                                  else 'not met')))
    print('target: %s >= %.1f of the %s for %s: %s' % (NAMES[0], target, host, what, ', '.join(parts)))
