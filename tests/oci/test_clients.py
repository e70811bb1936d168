#!/usr/bin/env python3
"""Real clients driving casulo-runtime as a new user would: podman (an
image that `podman import` made from a busybox rootfs tarball) and
containerd (`ctr run --runc-binary`, a private containerd daemon)."""
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from ocitest import RUNTIME, WORK, Skip, contains, eq, main, make_rootfs, test  # noqa: E402

IMAGE = 'localhost/casulo-test-busybox:latest'
# This sandbox's root lacks CAP_SYS_RESOURCE: podman's default rlimits
# (nofile 1048576) cannot be set by any runtime here, so ask for less.
ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024']


def sh(*cmd, timeout=60, check=False, **kw):
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} exited {p.returncode}: {p.stderr.strip()}')
    return p


_image = []


def podman_image():
    if not shutil.which('podman'):
        raise Skip('podman is not installed')
    if _image:
        return
    rootfs = make_rootfs(os.path.join(WORK, 'podman-rootfs'))
    tar = os.path.join(WORK, 'busybox.tar')
    with tarfile.open(tar, 'w') as t:
        t.add(rootfs, arcname='.')
    p = sh('podman', 'import', tar, IMAGE)
    if p.returncode != 0:
        raise Skip(f'podman import failed on this host: {p.stderr.strip()[-200:]}')
    _image.append(IMAGE)


def podman(*args, **kw):
    return sh('podman', '--runtime', RUNTIME, '--cgroup-manager', 'cgroupfs', *args, **kw)


@test
def podman_run_output_and_exit_status():
    podman_image()
    p = podman('run', '--rm', *ULIMITS, IMAGE, 'sh', '-c', 'echo hello from podman; hostname; id -u')
    eq(p.returncode, 0, f'podman run: {p.stderr.strip()}')
    lines = p.stdout.splitlines()
    eq(lines[0], 'hello from podman', 'output')
    eq(lines[2], '0', 'uid')
    eq(podman('run', '--rm', *ULIMITS, IMAGE, 'sh', '-c', 'exit 3').returncode, 3, 'exit status through podman')
    p = podman('run', '--rm', *ULIMITS, IMAGE, 'no-such-command')
    eq(p.returncode, 127, 'podman maps "executable file not found" to 127')
    contains(p.stderr, 'executable file not found', 'podman shows our error')


@test
def podman_detached_exec_pause_stop():
    podman_image()
    name = f'casulo-test-{os.getpid()}'
    try:
        p = podman('run', '-d', '--name', name, *ULIMITS, '--pids-limit', '33', IMAGE, 'sleep', '300')
        eq(p.returncode, 0, f'podman run -d: {p.stderr.strip()}')
        p = podman('exec', name, 'sh', '-c', 'echo exec-ok; cat /proc/1/cmdline')
        eq(p.returncode, 0, f'podman exec: {p.stderr.strip()}')
        eq(p.stdout.split('\n')[0], 'exec-ok', 'exec output')
        contains(p.stdout, 'sleep', 'pid 1 of the container')
        p = podman('exec', name, 'cat', '/sys/fs/cgroup/pids/pids.max')
        if p.returncode == 0:
            eq(p.stdout.strip(), '33', 'pids limit from podman')
        eq(podman('pause', name).returncode, 0, 'podman pause')
        eq(podman('inspect', '--format', '{{.State.Status}}', name).stdout.strip(), 'paused', 'paused')
        eq(podman('unpause', name).returncode, 0, 'podman unpause')
        p = podman('top', name)
        contains(p.stdout, 'sleep 300', 'podman top')
        start = time.time()
        eq(podman('stop', '-t', '2', name).returncode, 0, 'podman stop')
        eq(podman('inspect', '--format', '{{.State.Status}}', name).stdout.strip(), 'exited', 'exited')
        if time.time() - start > 15:
            raise AssertionError('podman stop took too long')
    finally:
        podman('rm', '-f', name)


@test
def podman_tty():
    podman_image()
    p = podman('run', '--rm', '-t', *ULIMITS, IMAGE, 'tty')
    eq(p.returncode, 0, f'podman run -t: {p.stderr.strip()}')
    contains(p.stdout, '/dev/pts/0', 'a terminal through the console socket')


class Containerd:
    def __init__(self):
        for tool in ('containerd', 'ctr', 'containerd-shim-runc-v2'):
            if not shutil.which(tool):
                raise Skip(f'{tool} is not installed')
        self.dir = tempfile.mkdtemp(prefix='containerd.', dir=WORK)
        self.sock = os.path.join(self.dir, 'containerd.sock')
        cfg = os.path.join(self.dir, 'config.toml')
        with open(cfg, 'w') as f:
            f.write(f'version = 2\nroot = "{self.dir}/root"\nstate = "{self.dir}/state"\n'
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    f'[grpc]\n  address = "{self.sock}"\n')
        self.log = open(os.path.join(self.dir, 'log'), 'w')
        self.proc = subprocess.Popen(['containerd', '--config', cfg], stdout=self.log, stderr=self.log)
        for _ in range(200):
            if os.path.exists(self.sock) and self.ctr('version').returncode == 0:
                return
            time.sleep(0.05)
        self.close()
        raise Skip('containerd did not start on this host')

    def ctr(self, *args, **kw):
        return sh('ctr', '--address', self.sock, *args, **kw)

    def kill_and_delete(self, cid, seconds=5):
        """ctr task kill -s KILL, STOPPED within seconds, ctr task delete."""
        eq(self.ctr('task', 'kill', '-s', 'KILL', cid).returncode, 0, 'ctr task kill')
        end = time.time() + seconds
        while time.time() < end and 'STOPPED' not in self.ctr('task', 'ls').stdout:
            time.sleep(0.05)
        contains(self.ctr('task', 'ls').stdout, 'STOPPED', 'stopped')
        eq(self.ctr('task', 'delete', cid).returncode, 0, 'ctr task delete')

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@test
def containerd_ctr_run_with_casulo_as_runc():
    d = Containerd()
    rootfs = make_rootfs(os.path.join(WORK, 'ctr-rootfs'))
    cid = f'casulo-ctr-{os.getpid()}'
    try:
        p = d.ctr('run', '--rm', '--runc-binary', RUNTIME, '--rootfs', rootfs, cid + '-a', 'sh', '-c',
                  'echo hello from containerd; cat /proc/1/cmdline')
        eq(p.returncode, 0, f'ctr run: {p.stderr.strip()}')
        eq(p.stdout.split('\n')[0], 'hello from containerd', 'output')
        p = d.ctr('run', '--rm', '--runc-binary', RUNTIME, '--rootfs', rootfs, cid + '-b', 'sh', '-c', 'exit 5')
        eq(p.returncode, 5, 'exit status through ctr')
        p = d.ctr('run', '-d', '--runc-binary', RUNTIME, '--rootfs', rootfs, cid, 'sleep', '300')
        eq(p.returncode, 0, f'ctr run -d: {p.stderr.strip()}')
        p = d.ctr('task', 'exec', '--exec-id', 'e1', cid, 'sh', '-c', 'echo exec-ok')
        eq((p.returncode, p.stdout), (0, 'exec-ok\n'), 'ctr task exec')
        p = d.ctr('task', 'ps', cid)
        eq(p.returncode, 0, f'ctr task ps: {p.stderr.strip()}')
        eq(d.ctr('task', 'pause', cid).returncode, 0, 'ctr task pause')
        contains(d.ctr('task', 'ls').stdout, 'PAUSED', 'paused')
        eq(d.ctr('task', 'resume', cid).returncode, 0, 'ctr task resume')
        contains(d.ctr('task', 'ls').stdout, 'RUNNING', 'running')
        d.kill_and_delete(cid)
    finally:
        d.ctr('task', 'delete', '--force', cid)
        d.ctr('container', 'delete', cid)
        d.close()


def cleanup_image():
    if _image:
        sh('podman', 'rmi', '-f', IMAGE)


if __name__ == '__main__':
    try:
        rc = main()
    finally:
        cleanup_image()
    sys.exit(rc)
