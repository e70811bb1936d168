#!/usr/bin/python3
"""Host-side TCP peers for the network tests (run inside a network
namespace with `ip netns exec`).

  nettool.py send PORT NBYTES [--timeout S]
                                accept one connection, send NBYTES of random
                                data, close; print the data's sha256
  nettool.py fetch PORT URL [--timeout S]
                                accept one connection, download URL with
                                HTTP GET, then close the connection: the
                                peer's close says the download is done;
                                print the byte count and sha256
  nettool.py sink PORT          accept one connection, read until it closes;
                                print the byte count
  nettool.py source PORT        accept one connection, write to it until the
                                peer closes; print the byte count
A line "LISTENING" on stdout says the socket is ready.  The timeout (300 s
unless given) bounds the wait for the connection and for each read or write.
"""
import hashlib
import os
import socket
import sys
import urllib.request


def listen(port, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', port))
    s.listen(1)
    s.settimeout(timeout)
    print('LISTENING', flush=True)
    conn, _ = s.accept()
    conn.settimeout(timeout)
    return conn


def stream(conn, sending):
    """Read or write until the peer closes; returns the bytes moved."""
    block, done = b'x' * (1 << 16), 0
    try:
        while True:
            if sending:
                conn.sendall(block)
                done += len(block)
            else:
                data = conn.recv(1 << 16)
                if not data:
                    break
                done += len(data)
    except OSError:
        pass  # the peer went away: the end of a source's stream
    return done


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode not in ('send', 'fetch', 'sink', 'source'):
        sys.exit('nettool.py: unknown mode %r (send, fetch, sink or source)' % mode)
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == '--timeout' else 300
    conn = listen(port, timeout)
    if mode in ('sink', 'source'):
        done = stream(conn, mode == 'source')
        conn.close()
        print('%d' % done, flush=True)
        return
    h = hashlib.sha256()
    done = 0
    if mode == 'fetch':
        with urllib.request.urlopen(sys.argv[3], timeout=timeout) as r:
            while True:
                data = r.read(1 << 20)
                if not data:
                    break
                h.update(data)
                done += len(data)
    elif mode == 'send':
        nbytes = int(sys.argv[3])
        block = os.urandom(1 << 20)
        while done < nbytes:
            chunk = block[:min(len(block), nbytes - done)]
            # Vary the data so that a reordered or repeated chunk shows.
            chunk = done.to_bytes(8, 'little') + chunk[8:] if len(chunk) >= 8 else chunk
            conn.sendall(chunk)
            h.update(chunk)
            done += len(chunk)
        conn.shutdown(socket.SHUT_WR)
    conn.close()
    print('%d %s' % (done, h.hexdigest()), flush=True)


if __name__ == '__main__':
    main()
