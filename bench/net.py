#!/usr/bin/python3
"""Network benchmark: iperf3 (Debian's, in the guest with its libraries)
between the guest and the host over a TAP device in a network namespace,
casulo-vmm beside QEMU microvm with virtio-net at its best (vhost=on where
/dev/vhost-net is there), same run, alternating.  Guest-to-host and
host-to-guest throughput in Mbit/s.

The limit beside them: the same iperf3 runs between two network
namespaces over a veth pair on the host (in the lab, L1), against the
same server; each VMM's figure is printed as a fraction of it.  Target:
casulo-vmm reaches 0.5 of the host for TCP.

A run whose iperf3 reports an error (its JSON's "error"), whose guest does
not finish or whose report cannot be read is run once more, then counted
as failed (benchlib.run_or_fail).

usage: net.py --vmm build/casulo-vmm --guest build/guest --initrd TOOLS_INITRD [--runs N]
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (NAMES, QUIET, any_column_failed, json_between, load_line, print_failures,  # noqa: E402
                      print_target, report_with_host, run_guest, run_rounds, tool_bench_setup)

NS = 'casulo-bench'            # the iperf3 server, the guests' TAP and one end of the veth
PEER_NS = 'casulo-bench-peer'  # the host's own client, at the veth's other end
METRICS = [('tx', 'guest -> host', 'Mb/s'), ('rx', 'host -> guest', 'Mb/s')]
TARGET = 0.5
HOST = 'host'
IPERF = 'iperf3 -c %s -t 6 -O 1 -J'
GUEST_CMD = QUIET + (' ip=10.88.0.2::10.88.0.1:255.255.255.0::eth0:off -- /bin/sh -c "'
                     'echo TX-BEGIN; ' + IPERF % '10.88.0.1' + '; echo TX-END; '
                     'echo RX-BEGIN; ' + IPERF % '10.88.0.1' + ' -R; echo RX-END"')


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def in_ns(ns, argv):
    return ['ip', 'netns', 'exec', ns] + argv


def netns_up():
    """The server's namespace with the guests' TAP (10.88.0.1) and a veth
    (10.88.1.1) to a second namespace (10.88.1.2) for the host's own runs."""
    netns_down()
    sh('ip', 'netns', 'add', NS)
    sh('ip', 'netns', 'add', PEER_NS)
    sh(*in_ns(NS, ['ip', 'link', 'set', 'lo', 'up']))
    sh(*in_ns(NS, ['ip', 'tuntap', 'add', 'dev', 'btap0', 'mode', 'tap']))
    sh(*in_ns(NS, ['ip', 'addr', 'add', '10.88.0.1/24', 'dev', 'btap0']))
    sh(*in_ns(NS, ['ip', 'link', 'set', 'btap0', 'up']))
    sh(*in_ns(NS, ['ip', 'link', 'add', 'bveth0', 'type', 'veth', 'peer', 'name', 'bveth1', 'netns', PEER_NS]))
    sh(*in_ns(NS, ['ip', 'addr', 'add', '10.88.1.1/24', 'dev', 'bveth0']))
    sh(*in_ns(NS, ['ip', 'link', 'set', 'bveth0', 'up']))
    sh(*in_ns(PEER_NS, ['ip', 'link', 'set', 'lo', 'up']))
    sh(*in_ns(PEER_NS, ['ip', 'addr', 'add', '10.88.1.2/24', 'dev', 'bveth1']))
    sh(*in_ns(PEER_NS, ['ip', 'link', 'set', 'bveth1', 'up']))


def netns_down():
    for ns in (NS, PEER_NS):
        subprocess.run(['ip', 'netns', 'del', ns], capture_output=True)


class IperfServer:
    """A fresh iperf3 server for each run, listening once this returns: a
    client that died mid-test (a failed guest) leaves a server busy."""

    def __enter__(self):
        self.p = subprocess.Popen(in_ns(NS, ['iperf3', '-s']), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while b'5201' not in subprocess.run(in_ns(NS, ['ss', '-Hltn', 'sport', '=', ':5201']),
                                            capture_output=True).stdout:
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError('iperf3 -s did not listen (exit status %s)' % self.p.returncode)
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.p.kill()
        self.p.wait()


def mbits(iperf_report, what):
    """Mbit/s from one iperf3 JSON report; its "error" is a failed run."""
    if iperf_report.get('error'):
        raise RuntimeError('iperf3 %s: %s' % (what, iperf_report['error']))
    try:
        return iperf_report['end']['sum_received']['bits_per_second'] / 1e6
    except (KeyError, TypeError):
        raise RuntimeError('iperf3 %s: no sum_received in its report: %s'
                           % (what, json.dumps(iperf_report.get('end'))[-300:]))


def guest_run(argv):
    """One guest: {'tx': guest->host, 'rx': host->guest} in Mb/s."""
    out, _ = run_guest(argv, timeout=180)
    return {'tx': mbits(json_between(out, 'TX-BEGIN', 'TX-END'), 'guest -> host'),
            'rx': mbits(json_between(out, 'RX-BEGIN', 'RX-END'), 'host -> guest')}


def host_run():
    """The same from the second namespace over the veth."""
    return {'tx': host_iperf(False), 'rx': host_iperf(True)}


def host_iperf(reverse):
    argv = in_ns(PEER_NS, (IPERF % '10.88.1.1').split() + (['-R'] if reverse else []))
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise RuntimeError('iperf3 over the veth did not finish in 60 s')
    out = p.stdout.decode(errors='replace')
    what = 'over the veth' + (' (-R)' if reverse else '')
    try:
        rep = json.JSONDecoder().raw_decode(out[out.index('{'):])[0]
    except ValueError:
        raise RuntimeError('iperf3 %s exited with status %d and no JSON report: %r %r'
                           % (what, p.returncode, out[-300:], p.stderr[-300:]))
    return mbits(rep, what)


def qemu_vhost():
    """('vhost=on', None) where /dev/vhost-net opens (vhost_net loaded if
    it is missing), else ('vhost=off', why not)."""
    if not os.path.exists('/dev/vhost-net'):
        try:
            subprocess.run(['modprobe', 'vhost_net'], capture_output=True)
        except OSError:
            pass
    try:
        os.close(os.open('/dev/vhost-net', os.O_RDWR))
    except OSError as e:
        return 'vhost=off', '/dev/vhost-net: %s' % e.strerror
    return 'vhost=on', None


def main():
    args, vmms = tool_bench_setup()
    names = NAMES
    print(load_line(), flush=True)
    vhost, vhost_note = qemu_vhost()
    vmms['qemu-microvm'].qemu_netdev = vhost
    argv = {n: in_ns(NS, vmms[n].argv(GUEST_CMD, taps=[('btap0', '52:54:00:00:88:02')])) for n in names}
    failures = []

    def run_one(name):
        with IperfServer():
            return host_run() if name == HOST else guest_run(argv[name])
    netns_up()
    try:
        results = run_rounds(args.runs, names, HOST, METRICS, run_one, failures)
    finally:
        netns_down()
    notes = ['  (QEMU without vhost: %s)' % vhost_note] if vhost_note else []
    notes.append('host:         iperf3 from a second netns over a veth pair to the same server ("guest -> host": '
                 'the client sends, "host -> guest": it receives, -R)')
    med = report_with_host('network benchmark: iperf3 TCP, %d runs each, 1 vCPU, 512 MiB, TAP in a netns'
                           % args.runs, METRICS, results, names, HOST, argv, notes)
    ours, peer = med['casulo-vmm'], med['qemu-microvm']
    for k, label, _ in METRICS:
        if ours[k] is not None and peer[k] is not None and ours[k] < peer[k]:
            print('casulo-vmm is behind QEMU (%s) on %s: %.0f against %.0f Mb/s; the lever is vhost-net for '
                  'casulo-vmm\'s virtio-net' % (vhost, label, ours[k], peer[k]))
    print_target(med, METRICS, ('tx', 'rx'), HOST, TARGET, 'TCP')
    print(load_line())
    print_failures(failures)
    return 1 if any_column_failed(med) else 0


if __name__ == '__main__':
    sys.exit(main())
