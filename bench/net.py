#!/usr/bin/python3
"""Network benchmark: iperf3 (Debian's, in the guest with its libraries)
between the guest and the host over a TAP device in a network namespace,
casulo-vmm beside QEMU microvm with virtio-net (no vhost), same run,
alternating.  Guest-to-host and host-to-guest throughput in Mbit/s.

usage: net.py --vmm build/casulo-vmm --guest build/guest --initrd TOOLS_INITRD [--runs N]
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import NAMES, QUIET, json_between, lab_retry, report, run_guest, tool_bench_setup  # noqa: E402

NS = 'casulo-bench'
METRICS = [('tx', 'guest -> host', 'Mb/s'), ('rx', 'host -> guest', 'Mb/s')]


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def netns_up():
    subprocess.run(['ip', 'netns', 'del', NS], capture_output=True)
    sh('ip', 'netns', 'add', NS)
    sh('ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up')
    sh('ip', 'netns', 'exec', NS, 'ip', 'tuntap', 'add', 'dev', 'btap0', 'mode', 'tap')
    sh('ip', 'netns', 'exec', NS, 'ip', 'addr', 'add', '10.88.0.1/24', 'dev', 'btap0')
    sh('ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'btap0', 'up')


def mbits(iperf_report):
    return iperf_report['end']['sum_received']['bits_per_second'] / 1e6


def one_run(vmm, cmd, wrap):
    """One guest: (guest->host, host->guest) in Mb/s."""
    out, _ = run_guest(vmm.argv(cmd, taps=[('btap0', '52:54:00:00:88:02')]), wrap=wrap, timeout=180)
    return mbits(json_between(out, 'TX-BEGIN', 'TX-END')), mbits(json_between(out, 'RX-BEGIN', 'RX-END'))


def main():
    args, vmms = tool_bench_setup()
    names = NAMES
    cmd = QUIET + (' ip=10.88.0.2::10.88.0.1:255.255.255.0::eth0:off -- /bin/sh -c "'
                   'echo TX-BEGIN; iperf3 -c 10.88.0.1 -t 6 -O 1 -J; echo TX-END; '
                   'echo RX-BEGIN; iperf3 -c 10.88.0.1 -t 6 -O 1 -R -J; echo RX-END"')
    wrap = lambda argv: ['ip', 'netns', 'exec', NS] + argv  # noqa: E731
    results = {n: {'tx': [], 'rx': []} for n in names}
    netns_up()
    server = subprocess.Popen(wrap(['iperf3', '-s']), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        for i in range(args.runs):
            for n in (names if i % 2 == 0 else names[::-1]):
                tx, rx = lab_retry(lambda: one_run(vmms[n], cmd, wrap), 'run %d of %s' % (i + 1, n))
                results[n]['tx'].append(tx)
                results[n]['rx'].append(rx)
                print('run %d %-13s guest->host %.0f Mb/s  host->guest %.0f Mb/s' % (i + 1, n, tx, rx), flush=True)
    finally:
        server.terminate()
        server.wait()
        subprocess.run(['ip', 'netns', 'del', NS], capture_output=True)
    report('network benchmark: iperf3, %d runs each, 1 vCPU, 512 MiB, TAP in a netns, no vhost' % args.runs,
           METRICS, results, names)


if __name__ == '__main__':
    sys.exit(main())
