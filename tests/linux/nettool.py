#!/usr/bin/python3
"""Host-side TCP peers for the network tests (run inside a network
namespace with `ip netns exec`).

  nettool.py send PORT NBYTES   accept one connection, send NBYTES of random
                                data, close; print the data's sha256
  nettool.py recv PORT NBYTES   accept one connection, read NBYTES (or until
                                EOF), close; print the byte count and sha256
A line "LISTENING" on stdout says the socket is ready.
"""
import hashlib
import os
import socket
import sys


def listen(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', port))
    s.listen(1)
    s.settimeout(300)
    print('LISTENING', flush=True)
    conn, _ = s.accept()
    conn.settimeout(300)
    return conn


def main():
    mode, port, nbytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conn = listen(port)
    h = hashlib.sha256()
    done = 0
    if mode == 'send':
        block = os.urandom(1 << 20)
        while done < nbytes:
            chunk = block[:min(len(block), nbytes - done)]
            # Vary the data so that a reordered or repeated chunk shows.
            chunk = done.to_bytes(8, 'little') + chunk[8:] if len(chunk) >= 8 else chunk
            conn.sendall(chunk)
            h.update(chunk)
            done += len(chunk)
        conn.shutdown(socket.SHUT_WR)
    else:
        while done < nbytes:
            data = conn.recv(1 << 20)
            if not data:
                break
            h.update(data)
            done += len(data)
    conn.close()
    print('%d %s' % (done, h.hexdigest()), flush=True)


if __name__ == '__main__':
    main()
