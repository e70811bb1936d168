#!/usr/bin/python3
"""Write the seed inputs of fuzz-snapshot-check.c: a sound 1-vCPU state
and hostile variants (0xff-filled pit and clock, memory_mib that wraps
when shifted, 1000 vCPUs, a duplicated section, a vCPU section beyond
the configuration).  The layout is the target's: per section a byte
picking its name, a little-endian u16 length, the contents.

usage: make-snapshot-check-seeds.py [DIR]   (default: this script's folder)
"""
import os
import struct
import sys

NAMES = {'vm.config': 0, 'irqchip': 1, 'pit': 2, 'clock': 3, 'vcpu.0': 4, 'vcpu.1': 5}
CONFIG = b'{"vcpus":1,"memory_mib":64,"kernel":"","cmdline":"","disks":[],"nets":[]}'


def section(name, body):
    return struct.pack('<BH', NAMES[name], len(body)) + body


def irqchip():
    ioapic = struct.pack('<QIIII', 0xfec00000, 0, 0, 0, 24) + struct.pack('<Q', 0x10000) * 24
    return bytes(32) + ioapic


def pit(fill=None):
    if fill is not None:
        return bytes([fill]) * (3 * 24 + 4)
    out = b''
    for ch in range(3):
        # count, latched count, then count_latched .. gate (mode 0xff:
        # never programmed), then the load time.
        out += struct.pack('<IH', 0x10000, 0) + bytes([0, 0, 0, 0, 0, 0, 0, 0xff, 0, int(ch != 2)])
        out += struct.pack('<Q', 12345)
    return out + struct.pack('<I', 0)


def clock(value=10**9):
    return struct.pack('<Q', value)


def state(config=CONFIG, pit_body=None, clock_body=None, extra=b''):
    return (section('vm.config', config) + section('irqchip', irqchip()) +
            section('pit', pit_body if pit_body is not None else pit()) +
            section('clock', clock_body if clock_body is not None else clock()) +
            section('vcpu.0', bytes(4)) + extra)


SEEDS = {
    'snapshot-check-sound.bin': state(),
    'snapshot-check-ff.bin': state(pit_body=pit(0xff), clock_body=b'\xff' * 8),
    'snapshot-check-limits.bin': state(config=b'{"vcpus":1000,"memory_mib":17592186044672}'),
    'snapshot-check-sections.bin': state(extra=section('vm.config', CONFIG) + section('vcpu.1', bytes(4))),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
