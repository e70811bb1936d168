#!/usr/bin/python3
"""Write a newc cpio archive holding files, to append to an initramfs.

usage: mkcpio.py OUT.cpio DEST SRC [DEST SRC...]

Each SRC file lands at DEST (e.g. bin/guest-tool build/guest-tool), mode
0755, with its parent directories.  Linux unpacks several concatenated
archives in a row, so OUT can follow the default guest's initrd.img.
"""
import os
import sys


def entry(name, mode, data=b''):
    name_b = name.encode() + b'\0'
    fields = [0, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
    head = b'070701' + b''.join(b'%08x' % f for f in fields)
    out = head + name_b
    out += b'\0' * (-len(out) % 4)
    out += data + b'\0' * (-len(data) % 4)
    return out


def main():
    if len(sys.argv) < 4 or len(sys.argv) % 2:
        sys.exit(__doc__)
    archive, dirs = b'', set()
    for dest, src in zip(sys.argv[2::2], sys.argv[3::2]):
        parts = dest.split('/')[:-1]
        for i in range(1, len(parts) + 1):
            d = '/'.join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                archive += entry(d, 0o40755)
        with open(src, 'rb') as f:
            archive += entry(dest, 0o100755, f.read())
    archive += entry('TRAILER!!!', 0)
    tmp = sys.argv[1] + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(archive)
    os.replace(tmp, sys.argv[1])


if __name__ == '__main__':
    main()
