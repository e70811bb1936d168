#!/usr/bin/python3
"""Write the seed inputs of the virtio-vsock and virtio-balloon fuzzers.

The layout is fuzz/virtio-harness.h (fuzz_drive_queues)'s: 8 header bytes (queue size,
enabled queues, features), then the 64 KiB window at guest address
0x10000 with queue i's rings at +i*4 KiB and buffers from +16 KiB.

usage: make-virtio-seeds.py [DIR]   (default: this script's folder)
"""
import os
import struct
import sys

WINDOW = 0x10000
QSIZE = 16
HDR = 44


class Seed:
    def __init__(self, queues, features, flags=0):
        self.header = bytes([4, 0, flags, queues]) + struct.pack('<I', features)
        self.window = bytearray(0x10000)
        self.next_buf = 0x4000
        self.heads = {}

    def buf(self, data=b'', size=None):
        size = size or max(len(data), 1)
        gpa = WINDOW + self.next_buf
        self.window[self.next_buf:self.next_buf + len(data)] = data
        self.next_buf += (size + 15) & ~15
        return gpa

    def chain(self, q, segs):
        """segs: (gpa, len, writable); published in q's avail ring."""
        desc = q * 0x1000
        avail = desc + 16 * QSIZE
        used_free = self.heads.setdefault(q, 0)
        head = used_free
        for k, (gpa, length, writable) in enumerate(segs):
            i = used_free + k
            flags = (2 if writable else 0) | (1 if k + 1 < len(segs) else 0)
            struct.pack_into('<QIHH', self.window, desc + 16 * i, gpa, length, flags, i + 1 if flags & 1 else 0)
        self.heads[q] = used_free + len(segs)
        idx = struct.unpack_from('<H', self.window, avail + 2)[0]
        struct.pack_into('<H', self.window, avail + 4 + 2 * (idx % QSIZE), head)
        struct.pack_into('<H', self.window, avail + 2, idx + 1)

    def bytes(self):
        # The fuzzer zero-fills the window past the input: trailing zeros need not be stored.
        return self.header + bytes(self.window).rstrip(b'\0')


def vsock_pkt(op, src_port, dst_port, payload=b'', flags=0, src_cid=3, dst_cid=2, typ=1, buf_alloc=65536):
    return struct.pack('<QQIIIHHIII', src_cid, dst_cid, src_port, dst_port, len(payload), typ, op, flags,
                       buf_alloc, 0) + payload


def vsock_seed(packets, flags=0):
    s = Seed(queues=0x7, features=0, flags=flags)
    for _ in range(4):
        s.chain(0, [(s.buf(size=HDR), HDR, True), (s.buf(size=1024), 1024, True)])
    for p in packets:
        s.chain(1, [(s.buf(p), len(p), False)])
    s.chain(2, [(s.buf(size=4), 4, True)])
    return s.bytes()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    seeds = {}
    # The guest connects to the host's port 1234, talks, shuts down.
    seeds['virtio-vsock-connect.bin'] = vsock_seed([
        vsock_pkt(1, 5000, 1234),
        vsock_pkt(5, 5000, 1234, b'hello host'),
        vsock_pkt(7, 5000, 1234),
        vsock_pkt(4, 5000, 1234, flags=3),
    ])
    # Packets for nobody, an RST, an unknown op, another CID; then a transport reset.
    seeds['virtio-vsock-host.bin'] = vsock_seed([
        vsock_pkt(1, 5001, 4321),
        vsock_pkt(3, 5002, 1234),
        vsock_pkt(9, 5003, 1234),
        vsock_pkt(1, 5004, 1234, dst_cid=7),
        vsock_pkt(6, 5005, 1234),
    ], flags=1)
    # Inflate, deflate, statistics and a free page report (STATS_VQ, REPORTING).
    s = Seed(queues=0xf, features=(1 << 1) | (1 << 5))
    pfns = struct.pack('<16I', *range(0x800, 0x810))
    s.chain(0, [(s.buf(pfns), len(pfns), False)])
    s.chain(1, [(s.buf(pfns), len(pfns), False)])
    stats = struct.pack('<HQHQHQ', 4, 100 << 20, 5, 256 << 20, 99, 1)
    s.chain(2, [(s.buf(stats), len(stats), False)])
    s.chain(3, [(0x1000000, 0x10000, True), (0x1200000, 0x1000, True)])
    seeds['virtio-balloon-inflate.bin'] = s.bytes()
    # Statistics only, then a PFN past the end of memory.
    s = Seed(queues=0x7, features=1 << 1)
    s.chain(2, [(s.buf(stats[:20]), 20, False)])
    bad = struct.pack('<2I', 0x900, 0xfffff)
    s.chain(0, [(s.buf(bad), len(bad), False)])
    seeds['virtio-balloon-stats.bin'] = s.bytes()
    for name, data in seeds.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
