"""Pod start through containerd's CRI, per runtime handler (bench/pod.sh
says how it is run).  Each run: RunPodSandbox (pause image, CNI network),
CreateContainer and StartContainer of busybox `echo`, until the container's
first output line is in its CRI log.  The time is the log line's own
timestamp (containerd stamps a line when it reads it from the container's
stdout) minus the moment RunPodSandbox was sent; the pod is then removed,
untimed.  Handlers are interleaved, a few warm-up rounds first."""
import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'cri'))
import benchlib  # noqa: E402
import crilib  # noqa: E402
import ocitest  # noqa: E402  (crilib builds its busybox rootfs with it)


def log_time(line):
    """A CRI log line's timestamp, in seconds since the epoch."""
    stamp = line.split(' ', 1)[0]
    whole, _, frac = stamp.rstrip('Z').partition('.')
    t = datetime.datetime.strptime(whole, '%Y-%m-%dT%H:%M:%S').replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + float('0.' + (frac or '0'))


def stop_pod(d, pod, handler):
    """StopPodSandbox, untimed.  With casulo-vm a stop that comes while the
    container's guest is shutting down after its process ended can fail
    ("unknown error after kill"): once more after a pause, and said."""
    import grpc
    try:
        d.stop_pod(pod)
    except grpc.RpcError as e:
        print(f'# {handler}: StopPodSandbox failed, once more in 2 s: {e.details()[:300]}', flush=True)
        time.sleep(2)
        d.stop_pod(pod)


def one_pod(d, handler, seq):
    parent = f'/casulo-bench-pod-{os.getpid()}/{handler}-{seq}'  # a kubelet's cgroupfs layout
    config = d.pod_config(f'bench-{handler}-{seq}', cgroup_parent=parent)
    start = time.time()
    pod = d.run_pod(config, handler)
    sandbox = time.time()
    cid = d.create_container(pod, config, 'first', ['echo', 'first-output'])
    d.start_container(cid)
    log = os.path.join(config.log_directory, 'first.log')
    deadline = time.monotonic() + 60
    while True:
        try:
            with open(log) as f:
                line = f.readline()
            if line.endswith('first-output\n'):
                break
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f'{handler}: no output from the container after 60 s')
        time.sleep(0.001)
    first = log_time(line)
    stop_pod(d, pod, handler)
    d.remove_pod(pod)
    shutil.rmtree(config.log_directory, ignore_errors=True)
    crilib.remove_cgroup_parents(parent)
    return {'sandbox': (sandbox - start) * 1000, 'first_output': (first - start) * 1000}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', required=True)
    ap.add_argument('--runs', type=int, default=20)
    ap.add_argument('--label', default='this host')
    ap.add_argument('handlers', nargs='+', help='casulo casulo-vm runc crun ...')
    args = ap.parse_args()
    binaries = {'casulo': os.path.abspath(os.path.join(args.build, 'casulo-runtime')),
                'casulo-vm': os.path.abspath(os.path.join(args.build, 'casulo-runtime-vm'))}
    handlers = {h: binaries.get(h) or shutil.which(h) for h in args.handlers}
    work = tempfile.mkdtemp(prefix='casulo-bench-pod.')
    d = None
    try:
        d = crilib.Containerd(work, handlers, os.path.join(args.build, 'tests', 'cri', 'casulo-pause'))
        results = {h: {'sandbox': [], 'first_output': []} for h in handlers}
        seq = 0
        for rnd in range(args.runs + 2):  # two warm-up rounds, not counted
            for h in handlers:
                seq += 1
                r = one_pod(d, h, seq)
                if rnd >= 2:
                    for k, v in r.items():
                        results[h][k].append(v)
        names = list(handlers)
        benchlib.report(f'## pod start through containerd {crilib.sh("containerd", "--version").stdout.split()[2]}\'s '
                        f'CRI, {args.label}: {args.runs} interleaved runs each',
                        [('sandbox', 'RunPodSandbox', 'ms'), ('first_output', 'to first output', 'ms')],
                        results, names, higher_is_better=False)
        for h in names:
            t = sorted(results[h]['first_output'])
            print(f'{h:<8} to first output: p10 {t[len(t) // 10]:.1f} ms, p90 {t[len(t) * 9 // 10]:.1f} ms')
    finally:
        if d:
            d.close()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(ocitest.WORK, ignore_errors=True)


if __name__ == '__main__':
    main()
