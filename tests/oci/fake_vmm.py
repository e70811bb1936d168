#!/usr/bin/env python3
"""A fake casulo-vmm for tests/oci/test_vm_hostile.py: it boots nothing,
and plays the guest agent's side of the vsock protocol (src/vmc/proto.h)
on the Unix socket where casulo-vmm would forward the agent's connection
(vsock_1025 in its working directory), as FAKE_VMM_SCENARIO says."""
import json
import os
import socket
import struct
import sys
import time

HELLO, REQUEST, REPLY, STDIN, STDOUT, STDERR, RESIZE, SIGNAL, EXIT = range(1, 10)


def frame(kind, payload=b'', length=None):
    if isinstance(payload, dict):
        payload = json.dumps(payload).encode()
    return struct.pack('<IHH', len(payload) if length is None else length, kind, 0) + payload


def read_frame(s):
    head = b''
    while len(head) < 8:
        chunk = s.recv(8 - len(head))
        if not chunk:
            raise EOFError
        head += chunk
    length, kind, _ = struct.unpack('<IHH', head)
    body = b''
    while len(body) < length:
        chunk = s.recv(length - len(body))
        if not chunk:
            raise EOFError
        body += chunk
    return kind, body


def read_request(s):
    while True:
        kind, body = read_frame(s)
        if kind == REQUEST:
            return json.loads(body)


def main():
    scenario = os.environ.get('FAKE_VMM_SCENARIO', 'honest')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    for _ in range(100):
        try:
            s.connect('vsock_1025')
            break
        except OSError:
            time.sleep(0.05)
    hello = frame(HELLO, {'agent': 'fake', 'version': 1})
    if scenario == 'garbage':
        s.sendall(b'\xff' * 64)
    elif scenario == 'huge':
        s.sendall(frame(HELLO, length=0xffffffff))
    elif scenario == 'request':
        s.sendall(frame(REQUEST, {'op': 'start'}))
    elif scenario == 'exit-first':
        s.sendall(frame(EXIT, struct.pack('<I', 0)))
    else:
        s.sendall(hello)
        read_request(s)  # create
        if scenario == 'bad-reply':
            s.sendall(frame(REPLY, {'ok': True, 'pid': -5}))
        elif scenario == 'evil-error':
            s.sendall(frame(REPLY, {'error': '\x1b[31mevil\nlevel=info msg=forged'}))
        elif scenario == 'die':
            sys.exit(0)
        else:
            s.sendall(frame(REPLY, {'ok': True, 'pid': 5}))
            try:
                read_request(s)  # start
            except EOFError:
                sys.exit(0)
            s.sendall(frame(REPLY, {'ok': True}) + frame(STDOUT, b'output before\n'))
            time.sleep(0.2)
            if scenario == 'running-bad-frame':
                s.sendall(frame(99, b'x'))
            elif scenario == 'running-bad-exit':
                s.sendall(frame(EXIT, struct.pack('<I', 1000)))
            elif scenario == 'running-die':
                sys.exit(0)
            else:
                s.sendall(frame(EXIT, struct.pack('<I', 42)))
                try:
                    while read_frame(s):
                        pass
                except EOFError:
                    pass
                sys.exit(42)
    # Wait to be killed, or for the host to close.
    s.settimeout(60)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass


if __name__ == '__main__':
    main()
