#!/usr/bin/python3
"""Write the seed inputs of the vsock protocol fuzzer (fuzz/fuzz-vmc.c).

vmc-guest.bin: what an agent sends (HELLO, a create's REPLY, output, a ps
REPLY, EXIT); vmc-host.bin: what the host sends (REQUESTs of every
operation, input, a resize, a signal); vmc-plan.bin: a config.json with
bind mounts, hooks and namespaces by path.  Each stream is cut into
pieces by a byte before each (the fuzzer's chunking).

usage: make-vmc-seeds.py [DIR]   (default: this script's folder)
"""
import json
import os
import struct
import sys

HELLO, REQUEST, REPLY, STDIN, STDOUT, STDERR, RESIZE, SIGNAL, EXIT = range(1, 10)


def frame(kind, payload):
    if isinstance(payload, (dict, list)):
        payload = json.dumps(payload).encode()
    return struct.pack('<IHH', len(payload), kind, 0) + payload


def chunked(data, step=3):
    out = b''
    for i in range(0, len(data), step * 7 + 1):
        out += bytes([step]) + data[i:i + step * 7 + 1]
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    guest = (frame(HELLO, {'agent': 'casulo-init', 'version': 1}) + frame(REPLY, {'ok': True, 'pid': 42}) +
             frame(STDOUT, b'hello\n') + frame(STDERR, b'oops\n') +
             frame(REPLY, {'ok': True, 'pids': [1, 7], 'table': 'PID CMD\n1 sleep\n'}) +
             frame(REPLY, {'error': 'exec: "x": executable file not found in $PATH'}) + frame(EXIT, struct.pack('<I', 7)))
    host = (frame(REQUEST, {'op': 'create', 'id': 'c1', 'spec': {'ociVersion': '1.1.0'},
                            'net': {'address': '10.88.0.2', 'prefix': 16, 'gateway': '10.88.0.1', 'mtu': 1500}}) +
            frame(REQUEST, {'op': 'start'}) + frame(STDIN, b'input\n') + frame(STDIN, b'') +
            frame(RESIZE, struct.pack('<HH', 24, 80)) + frame(SIGNAL, struct.pack('<I', 15)) +
            frame(REQUEST, {'op': 'kill', 'signal': 9, 'all': True}) +
            frame(REQUEST, {'op': 'exec', 'args': ['sh', '-c', 'id'], 'env': ['A=1'], 'cwd': '/', 'user': '1000:1000',
                            'additional_gids': ['5'], 'caps': ['CAP_SYS_TIME'], 'tty': True, 'rows': 24, 'cols': 80}) +
            frame(REQUEST, {'op': 'ps', 'args': ['-o', 'pid,comm']}) +
            frame(REQUEST, {'op': 'update', 'resources': {'pids': {'limit': 10}}}))
    config = {
        'ociVersion': '1.1.0', 'root': {'path': 'rootfs'},
        'process': {'args': ['sh'], 'cwd': '/', 'terminal': False},
        'annotations': {'io.casulo.vm': 'on', 'io.casulo.vm.cpus': '2', 'io.casulo.vm.memory': '256M'},
        'mounts': [{'destination': '/proc', 'type': 'proc', 'source': 'proc'},
                   {'destination': '/data', 'type': 'bind', 'source': '/srv/data', 'options': ['rbind', 'ro']},
                   {'destination': '/etc/hosts', 'source': 'hosts', 'options': ['bind']}],
        'hooks': {'prestart': [{'path': '/bin/true'}], 'startContainer': [{'path': '/bin/true'}]},
        'linux': {'namespaces': [{'type': 'pid'}, {'type': 'network', 'path': '/run/netns/x'},
                                 {'type': 'ipc', 'path': '/proc/1/ns/ipc'}],
                  'resources': {'cpu': {'quota': 150000, 'period': 100000}, 'memory': {'limit': 134217728}},
                  'cgroupsPath': '/pod/c1'},
    }
    for name, data in (('vmc-guest.bin', b'\0' + chunked(guest)), ('vmc-host.bin', b'\1' + chunked(host)),
                       ('vmc-plan.bin', b'\2' + json.dumps(config).encode())):
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
