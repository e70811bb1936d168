#!/usr/bin/python3
"""Build an initrd that is the default guest's plus host programs.

  guest-tools.py OUT BASE_INITRD [--file SRC:DEST]... PROGRAM...

Each PROGRAM (e.g. /usr/bin/fio) goes in with every shared library ldd
lists for it and the dynamic loader, at the same paths, as a second newc
archive appended to BASE_INITRD (Linux unpacks concatenated archives in
order).  --file adds a file (a fio job, a script).  Benchmarks use it to
run Debian's fio and iperf3 inside the guest.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'guest'))
import kerneltool  # noqa: E402


def libraries(program):
    out = subprocess.run(['ldd', program], capture_output=True, text=True, check=True).stdout
    libs = set()
    for line in out.splitlines():
        m = re.search(r'(/\S+) \(0x', line)
        if m:
            libs.add(m.group(1))
    return libs


def main(argv):
    out, base, rest = argv[0], argv[1], argv[2:]
    files, programs = [], []
    while rest:
        if rest[0] == '--file':
            files.append(rest[1].split(':', 1))
            rest = rest[2:]
        else:
            programs.append(rest[0])
            rest = rest[1:]
    with tempfile.TemporaryDirectory() as root:
        wanted = set()
        for prog in programs:
            wanted.add(prog)
            wanted |= libraries(prog)
        for path in sorted(wanted):
            real = os.path.realpath(path)
            dest = os.path.join(root, path.lstrip('/'))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(real, dest)
        for src, dest in files:
            full = os.path.join(root, dest.lstrip('/'))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            shutil.copy2(src, full)
        archive = kerneltool.make_cpio(root)
    with open(base, 'rb') as f:
        data = f.read()
    tmp = out + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(data)
        f.write(b'\0' * (-len(data) % 512))
        f.write(archive)
    os.replace(tmp, out)
    print('%s: %d MiB' % (out, os.path.getsize(out) >> 20))


if __name__ == '__main__':
    main(sys.argv[1:])
