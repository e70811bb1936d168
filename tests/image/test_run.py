#!/usr/bin/env python3
"""casulo run: pulls what is missing, environment, volumes, exit status,
a terminal (-t) and stdin (-i), containers kept or removed, and the copy
that stands in for an overlay that cannot be mounted."""
import os
import pty
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from imagetest import (CASULO, F, Image, busybox_tar, casulo, contains, eq, main, new_root, push_image,  # noqa: E402
                       tar_bytes, test, tmpdir)


@test
def run_pulls_a_missing_image_and_passes_env_volumes_and_status():
    ref = push_image(Image([busybox_tar()], config={'Env': ['A=image', 'B=image'], 'Cmd': ['sh']}), 'run/basic')
    root = new_root()
    host = tmpdir('volume')
    with open(os.path.join(host, 'in'), 'w') as f:
        f.write('from the host\n')
    p = casulo('run', '--rm', '-q', '-e', 'B=cli', '-e', 'C=new', '-v', f'{host}:/data', '-v', f'{host}:/ro:ro', ref,
               'sh', '-c', 'echo $A $B $C; cat /data/in; echo out > /data/out; touch /ro/x 2>/dev/null || echo ro; '
               'exit 7', root=root)
    eq(p.returncode, 7, f'the container\'s exit status: {p.stderr}')
    eq(p.stdout.splitlines(), ['image cli new', 'from the host', 'ro'], 'env over the image\'s, volumes, ro')
    eq(open(os.path.join(host, 'out')).read(), 'out\n', 'written through the volume')
    eq(casulo('image', 'ls', '-q', root=root).stdout.strip(), ref, 'pulled on the way')
    eq(os.listdir(os.path.join(root, 'containers')), [], '--rm left nothing')
    p = casulo('run', '--rm', '-e', 'NOEQUALS', ref, 'true', root=root)
    eq(p.returncode, 2, 'a bad -e is a usage error')
    p = casulo('run', '--rm', '-v', '/no/such/dir:/x', ref, 'true', root=root)
    contains(p.stderr, "volume '/no/such/dir:/x': host path", 'a missing host path')


@test
def without_rm_the_container_stays_and_names_are_unique():
    root = new_root()
    img = Image([busybox_tar()])
    casulo('image', 'import', img.write_layout(tmpdir('l'), '1'), 'localhost/keep:1', root=root, check=True)
    p = casulo('run', '--name', 'kept', 'localhost/keep:1', 'sh', '-c', 'echo data > /state', root=root)
    eq(p.returncode, 0, p.stderr)
    eq(open(os.path.join(root, 'containers', 'kept', 'upper', 'state')).read(), 'data\n', 'upper kept')
    p = casulo('run', '--name', 'kept', 'localhost/keep:1', 'true', root=root)
    eq(p.returncode, 1, 'the name is taken')
    contains(p.stderr, "container 'kept': exists", 'says so')
    p = casulo('run', '--rm', 'localhost/keep:1', root=root)
    eq(p.returncode, 0, 'Cmd of the image')
    p = casulo('run', '--rm', 'localhost/nothing:1', root=root)
    eq(p.returncode, 1, 'a missing image that cannot be pulled')


@test
def terminal_and_stdin():
    root = new_root()
    casulo('image', 'import', Image([busybox_tar()]).write_layout(tmpdir('l'), '1'), 'localhost/tty:1', root=root,
           check=True)
    p = subprocess.run([CASULO, 'run', '--root', root, '--rm', '-i', 'localhost/tty:1', 'sh', '-c', 'cat; echo done'],
                       input='piped in\n', capture_output=True, text=True, timeout=60)
    eq(p.stdout, 'piped in\ndone\n', f'-i passes stdin: {p.stderr}')
    p = subprocess.run([CASULO, 'run', '--root', root, '--rm', 'localhost/tty:1', 'sh', '-c', 'cat; echo done'],
                       input='not read\n', capture_output=True, text=True, timeout=60)
    eq(p.stdout, 'done\n', 'without -i the container reads nothing')
    master, slave = pty.openpty()
    proc = subprocess.Popen([CASULO, 'run', '--root', root, '--rm', '-t', 'localhost/tty:1', 'sh', '-c',
                             'tty; echo TERM=$TERM; exit 4'], stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = b''
    deadline = time.time() + 60
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 1)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    proc.wait(30)
    os.close(master)
    text = out.decode(errors='replace')
    contains(text, '/dev/pts/', f'a terminal in the container: {text!r}')
    contains(text, 'TERM=xterm', 'TERM set')
    eq(proc.returncode, 4, 'exit status through the terminal')


@test
def too_many_layers_for_one_overlay_mount_fall_back_to_a_copy():
    layers = [busybox_tar()] + [tar_bytes([F(f'layer{i:03d}', str(i))]) for i in range(70)]
    img = Image(layers, config={'Cmd': ['sh', '-c', 'grep " / " /proc/mounts | cut -d" " -f3; ls / | grep -c layer']})
    root = new_root()
    casulo('image', 'import', img.write_layout(tmpdir('many'), '1'), 'localhost/many:1', root=root, check=True)
    p = casulo('run', '--rm', 'localhost/many:1', root=root)
    eq(p.returncode, 0, p.stderr)
    fstype, count = p.stdout.split()
    assert fstype != 'overlay', f'a copy, not an overlay: {fstype}'
    eq(count, '70', 'every layer in the copy')


if __name__ == '__main__':
    sys.exit(main())
