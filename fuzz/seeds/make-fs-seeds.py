#!/usr/bin/python3
"""Write the seed inputs of the virtio-fs fuzzer (fuzz/fuzz-virtio-fs.c).

virtio-fs-session.bin: a mount's worth of FUSE requests straight to the
server (INIT, lookups, reads, writes, directory listing, xattrs, renames,
removals, and a few hostile ones), as records
[u16 request length][u16 reply length / 4][u8 split][request].
virtio-fs-ring.bin: INIT and a LOOKUP through the device's request queue
(fuzz/virtio-harness.h's layout after a first odd byte).

usage: make-fs-seeds.py [DIR]   (default: this script's folder)
"""
import importlib.util
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('virtio_seeds', os.path.join(HERE, 'make-virtio-seeds.py'))
virtio_seeds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(virtio_seeds)

(LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, OPEN, READ,
 WRITE, STATFS, RELEASE) = (1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
FSYNC, SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR, FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR = range(20, 30)
CREATE, DESTROY, BATCH_FORGET, FALLOCATE, READDIRPLUS, RENAME2, LSEEK, COPY_FILE_RANGE = 35, 38, 42, 43, 44, 45, 46, 47
ROOT = 1


def node(slot, gen=1):
    """The nodeid (or fh) the server hands out for a slot: its generation above."""
    return gen << 32 | slot


def request(opcode, nodeid, args=b'', unique=[0]):
    unique[0] += 1
    return struct.pack('<IIQQIIIHH', 40 + len(args), opcode, unique[0], nodeid, 0, 0, 1, 0, 0) + args


def name(s):
    return s.encode() + b'\0'


def session():
    hello, new, d = node(2), node(3), node(4)  # slots in lookup order
    fh1, fh2, dirfh = node(1), node(2), node(2, 2)  # OPENDIR reuses RELEASE's slot
    reqs = [
        request(INIT, 0, struct.pack('<IIII', 7, 38, 131072, 0x13fffbfb) + bytes(48)),
        request(LOOKUP, ROOT, name('hello')),
        request(GETATTR, hello, struct.pack('<IIQ', 0, 0, 0)),
        request(OPEN, hello, struct.pack('<II', 0, 0)),
        request(READ, hello, struct.pack('<QQIIQII', fh1, 0, 4096, 0, 0, 0, 0)),
        request(CREATE, ROOT, struct.pack('<IIII', 0o102, 0o100644, 0o22, 0) + name('new')),
        request(WRITE, new, struct.pack('<QQIIQII', fh2, 0, 5, 0, 0, 0, 0) + b'guest'),
        request(LSEEK, new, struct.pack('<QQII', fh2, 0, 3, 0)),
        request(FALLOCATE, new, struct.pack('<QQQII', fh2, 0, 8192, 1, 0)),
        request(FSYNC, new, struct.pack('<QII', fh2, 1, 0)),
        request(FLUSH, new, struct.pack('<QIIQ', fh2, 0, 0, 0)),
        request(COPY_FILE_RANGE, hello, struct.pack('<QQQQQQQ', fh1, 0, new, fh2, 100, 13, 0)),
        request(RELEASE, new, struct.pack('<QIIQ', fh2, 0, 0, 0)),
        request(MKDIR, ROOT, struct.pack('<II', 0o755, 0o22) + name('d')),
        request(RENAME, ROOT, struct.pack('<Q', d) + name('new') + name('moved')),
        request(RENAME2, ROOT, struct.pack('<QII', ROOT, 1, 0) + name('hello') + name('h2')),
        request(SYMLINK, ROOT, name('sym') + name('/etc/passwd')),
        request(READLINK, node(5)),
        request(LINK, d, struct.pack('<Q', hello) + name('hard')),
        request(MKNOD, ROOT, struct.pack('<IIII', 0o10644, 0, 0, 0) + name('fifo')),
        request(SETXATTR, hello, struct.pack('<II', 3, 0) + name('user.k') + b'val'),
        request(GETXATTR, hello, struct.pack('<II', 64, 0) + name('user.k')),
        request(LISTXATTR, hello, struct.pack('<II', 0, 0)),
        request(REMOVEXATTR, hello, name('user.k')),
        request(SETATTR, hello, struct.pack('<IIQQQQQQIIIIIIII', 0x39, 0, 0, 4, 0, 1, 2, 0, 0, 0, 0, 0o600, 0,
                                            0, 0, 0)),
        request(OPENDIR, ROOT, struct.pack('<II', 0, 0)),
        request(READDIRPLUS, ROOT, struct.pack('<QQIIQII', dirfh, 0, 4096, 0, 0, 0, 0)),
        request(READDIR, ROOT, struct.pack('<QQIIQII', dirfh, 2, 96, 0, 0, 0, 0)),
        request(RELEASEDIR, ROOT, struct.pack('<QIIQ', dirfh, 0, 0, 0)),
        request(STATFS, ROOT),
        # What a hostile guest sends.
        request(LOOKUP, ROOT, name('..')),
        request(LOOKUP, ROOT, name('up')),
        request(LOOKUP, node(9), name('outside')),
        request(LOOKUP, ROOT, b'no-nul'),
        request(READ, hello, struct.pack('<QQIIQII', fh1, 1 << 63, 1 << 31, 0, 0, 0, 0)),
        request(UNLINK, d, name('moved')),
        request(RMDIR, ROOT, name('d')),
        request(FORGET, hello, struct.pack('<Q', 1)),
        request(BATCH_FORGET, 0, struct.pack('<II', 99, 0) + struct.pack('<QQ', hello, 1)),
        request(4242, ROOT),
        request(DESTROY, 0),
    ]
    out = b'\0'
    for i, r in enumerate(reqs):
        out += struct.pack('<HHB', len(r), 4096 // 4 if i % 3 else 70000 // 4, 0x80 | (i * 13 % 40)) + r
    return out


def ring():
    s = virtio_seeds.Seed(queues=0x3, features=0)
    init = request(INIT, 0, struct.pack('<IIII', 7, 38, 131072, 0) + bytes(48))
    look = request(LOOKUP, ROOT, name('hello'))
    for r in (init, look):
        s.chain(1, [(s.buf(r), len(r), False), (s.buf(size=256), 256, True)])
    fg = request(FORGET, node(2), struct.pack('<Q', 1))
    s.chain(0, [(s.buf(fg), len(fg), False)])
    return b'\x01' + s.bytes()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else HERE
    for fname, data in (('virtio-fs-session.bin', session()), ('virtio-fs-ring.bin', ring())):
        with open(os.path.join(out, fname), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
