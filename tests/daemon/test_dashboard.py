#!/usr/bin/python3
"""The dashboard in headless Chromium (Debian's chromium, driven by
playwright-core from npm: tests/daemon/dashboard/dashboard.mjs): sign in,
create from the form, see it running with CPU and memory, type into its
console and read the answer, stop and delete it.

  test_dashboard.py            a container, with casulod on this host
  test_dashboard.py --vm       a VM booting the default guest: casulod runs
                               in the lab (tests/lab/run --forward), the
                               browser here, over HTTPS with a token

Prints TAP.  The lab side is this file with --serve DIR PORT."""
import glob
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

from daemonlib import BUILD, CASULOD, ROOT, TESTS, Daemon, Failure, Skip, bundle, check, free_port, main, test, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
TOKEN = 'dashboard-test-token-0123456789'
LAB_RUN = os.path.join(ROOT, 'tests', 'lab', 'run')


def node_workdir():
    """playwright-core installed from the npm registry (npm ci, pinned by
    the lock file) into the build tree, beside the script."""
    if not shutil.which('node') or not shutil.which('npm'):
        raise Skip('node and npm are needed (scripts/install-deps.sh test)')
    if not os.access(CHROMIUM, os.X_OK):
        raise Skip('%s is missing (Debian package chromium: scripts/install-deps.sh test)' % CHROMIUM)
    work = os.path.join(BUILD, 'tests', 'daemon', 'dashboard-node')
    os.makedirs(work, exist_ok=True)
    src = os.path.join(HERE, 'dashboard')
    lock = open(os.path.join(src, 'package-lock.json')).read()
    stamp = os.path.join(work, 'installed-lock.json')
    if not os.path.exists(stamp) or open(stamp).read() != lock:
        for f in ('package.json', 'package-lock.json'):
            shutil.copy(os.path.join(src, f), work)
        p = subprocess.run(['npm', 'ci', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'],
                           cwd=work, capture_output=True, text=True, timeout=600)
        check(p.returncode == 0, 'npm ci playwright-core: %s' % p.stderr[-500:])
        with open(stamp, 'w') as f:
            f.write(lock)
    shutil.copy(os.path.join(src, 'dashboard.mjs'), work)
    return work


def make_tls(directory):
    sys.path.insert(0, os.path.join(ROOT, 'tests', 'image'))
    from imagetest import make_ca
    make_ca(directory)
    token = os.path.join(directory, 'token')
    with open(token, 'w') as f:
        f.write(TOKEN + '\n')
    return ['--tls-cert', os.path.join(directory, 'server.crt'), '--tls-key', os.path.join(directory, 'server.key'),
            '--token-file', token]


def browse(work, url, spec, timeout=600):
    p = subprocess.run(['node', 'dashboard.mjs', url, TOKEN, json.dumps(spec)], cwd=work, capture_output=True,
                       text=True, timeout=timeout, env=dict(os.environ, CHROMIUM=CHROMIUM))
    for line in p.stdout.splitlines():
        if line.startswith('#'):
            print(line, flush=True)
    if p.returncode == 0 and 'PASSED' in p.stdout:
        return
    # The browser's own verdict (its FAILED line) last, its stderr before it.
    verdict = [line for line in p.stdout.splitlines() if not line.startswith('#')]
    raise Failure('%sthe browser (exit %d): %s' % ('browser stderr: %s\n' % p.stderr[-800:] if p.stderr.strip() else '',
                                                  p.returncode, ' '.join(verdict)[-800:] or '(nothing)'))


@test
def dashboard_with_a_container():
    work = node_workdir()
    if not os.path.isdir(os.path.join(BUILD, 'dashboard')):
        raise Skip('the dashboard is not built (npm missing at build time)')
    base = tempfile.mkdtemp(prefix='cd-dash-', dir='/tmp')
    port = free_port()
    d = Daemon(base=base, extra=['--listen', '127.0.0.1:%d' % port] + make_tls(base))
    try:
        b = bundle(['sh'], terminal=True)
        spec = {'name': 'web1', 'type': 'container', 'fields': {'#create-bundle': b, '#create-stop-timeout': 2},
                'ready': '#', 'input': 'echo $((6*7))', 'answer': '42'}
        browse(work, 'https://127.0.0.1:%d/' % port, spec)
        check(d.get('/v1/instances') == [], 'left: %r' % d.get('/v1/instances'))
    finally:
        d.cleanup()


LAB_RETRIES = 2


def lab_trouble(base, lab_text):
    """Why a failed try may be the lab's doing, not casulo's: the lab died
    (tests/lab/run booted it again) or the guest triple-faulted, as nested
    SVM on TCG does to busy guests (docs/lab.md); None otherwise."""
    if 'the lab died' in lab_text:
        return 'the lab died'
    for log in glob.glob(os.path.join(base, 'logs', '*.log')):
        if 'triple fault' in open(log, errors='replace').read():
            return 'the guest triple-faulted in the lab'
    return None


def lab_context(base, lab_text):
    """The lab's and casulod's last words, for a failure message."""
    parts = ['lab: ' + lab_text[-1200:]]
    for log in sorted(glob.glob(os.path.join(base, '*.log')) + glob.glob(os.path.join(base, 'logs', '*.log'))):
        if os.path.basename(log) != 'lab.log':
            parts.append('%s: %s' % (os.path.relpath(log, base), open(log, errors='replace').read()[-800:]))
    return '\n'.join(parts)


def wait_for_https(port, lab, timeout=120):
    """casulod answers HTTPS (any status) through the lab's forwarded port,
    so that the browser does not race the forwarding."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def answers():
        if lab.poll() is not None:
            raise Failure('the lab ended (status %s) before casulod answered through port %d' % (lab.returncode, port))
        try:
            c = http.client.HTTPSConnection('127.0.0.1', port, timeout=5, context=ctx)
            c.request('GET', '/')
            c.getresponse().read()
            c.close()
            return True
        except (OSError, http.client.HTTPException):
            return False

    wait_for(answers, timeout, 'casulod over the forwarded port %d' % port, interval=1)


def dashboard_vm_once(work, base, port):
    """One lab boot with casulod, one browser run against it."""
    lab_log = open(os.path.join(base, 'lab.log'), 'w+')
    lab = subprocess.Popen([LAB_RUN, '--timeout', '900', '--mem', '2048', '--forward', str(port), '--rw', base,
                            '--', sys.executable, os.path.abspath(__file__), '--serve', base, str(port)],
                           stdout=lab_log, stderr=subprocess.STDOUT, text=True)
    try:
        ready = os.path.join(base, 'ready')
        wait_for(lambda: os.path.exists(ready) or lab.poll() is not None, 300, 'casulod in the lab', interval=0.5)
        if not os.path.exists(ready):
            raise Failure('the lab ended (status %s) before casulod was up' % lab.returncode)
        wait_for_https(port, lab)
        spec = {'name': 'vm1', 'type': 'vm', 'fields': {'#create-cmdline': 'console=ttyS0 quiet',
                                                        '#create-memory': '256', '#create-stop-timeout': 5},
                'ready': '# ', 'input': 'echo $((6*7))', 'answer': '42'}
        browse(work, 'https://127.0.0.1:%d/' % port, spec, timeout=900)
    finally:
        with open(os.path.join(base, 'done'), 'w'):
            pass
        try:
            lab.wait(timeout=120)
        except subprocess.TimeoutExpired:
            lab.kill()
            lab.wait()
        lab_log.close()


@test
def dashboard_with_a_vm_in_the_lab():
    work = node_workdir()
    guest = os.path.join(BUILD, 'guest')
    if not os.path.exists(os.path.join(guest, 'vmlinuz')):
        raise Skip('the default guest is not built (make guest)')
    tries = 0
    while True:
        base = tempfile.mkdtemp(prefix='cd-dashvm-', dir='/tmp')
        try:
            dashboard_vm_once(work, base, free_port())
            break
        except Failure as e:
            with open(os.path.join(base, 'lab.log'), errors='replace') as f:
                lab_text = f.read()
            trouble = lab_trouble(base, lab_text)
            if trouble is None or tries >= LAB_RETRIES:
                # The cause last: a CI summary keeps the lines just before
                # 'not ok' and may cut the logs above them.
                raise Failure('%s\n%s%s' % (lab_context(base, lab_text), e,
                                             ' (%s, %d tries)' % (trouble, tries + 1) if trouble else ''))
            tries += 1
            print('# %s; running the test again' % trouble, flush=True)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    return 'after %d lab fault%s' % (tries, 's' * (tries > 1)) if tries else None


def serve(base, port):
    """In the lab: casulod on 0.0.0.0:PORT until the driver is done."""
    tls = make_tls(os.path.join(base, 'tls'))
    state = tempfile.mkdtemp(prefix='cd-lab-', dir='/tmp')
    casulod_log = open(os.path.join(base, 'casulod.log'), 'w')
    p = subprocess.Popen([CASULOD, '--state-dir', state + '/state', '--run-dir', state + '/run', '--image-root',
                          state + '/images', '--guest-dir', os.path.join(BUILD, 'guest'),
                          '--listen', '0.0.0.0:%s' % port] + tls,
                         stdin=subprocess.DEVNULL, stdout=casulod_log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: os.path.exists(state + '/run/casulod.sock') or p.poll() is not None, 60, 'casulod')
        if p.poll() is not None:
            # No 'ready': the driver sees the lab end and reports casulod.log.
            print('casulod exited with status %s at its start' % p.returncode, flush=True)
            return 1
        with open(os.path.join(base, 'ready'), 'w'):
            pass
        end = time.time() + 900
        while not os.path.exists(os.path.join(base, 'done')) and time.time() < end and p.poll() is None:
            time.sleep(0.5)
        if p.poll() is not None:
            print('casulod exited with status %s while the browser ran' % p.returncode, flush=True)
            return 1
    finally:
        p.terminate()
        p.wait()
        subprocess.run(['pkill', '-KILL', '-f', state + '/run/'], capture_output=True)
        # The instances' logs (a VMM's stderr) for the driver's failure
        # message and its look for a guest fault.
        if os.path.isdir(os.path.join(state, 'state', 'logs')):
            shutil.copytree(os.path.join(state, 'state', 'logs'), os.path.join(base, 'logs'), dirs_exist_ok=True)
    return 0


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == '--serve':
        os.makedirs(os.path.join(sys.argv[2], 'tls'), exist_ok=True)
        raise SystemExit(serve(sys.argv[2], sys.argv[3]))
    # Two meson tests: the container here (dashboard), the VM in a lab
    # boot of its own (dashboard-vm, --vm).
    vm_run = '--vm' in sys.argv
    TESTS[:] = [t for t in TESTS if (t is dashboard_with_a_vm_in_the_lab) == vm_run]
    raise SystemExit(main())
