#!/bin/sh
# bench/container.sh [RUNS]: `run` of a busybox container whose process is
# /bin/true, casulo-runtime beside Debian's crun and runc, interleaved
# (casulo, crun, runc, casulo, ...), RUNS rounds (default 50).  Prints the
# median wall time of each, its ratio to crun, and peak RSS (GNU time's
# maximum resident set of the runtime's process tree, in separate runs so
# that `time` does not add to the timed ones).
#
# crun 1.8 refuses the hybrid cgroup layout (v1 controllers plus a cgroup2
# mount at /sys/fs/cgroup/unified).  On such a host all three are measured
# in a mount namespace where /sys/fs/cgroup/unified is unmounted (a plain
# v1 host), as the report says; casulo and runc are then also measured on
# the real hybrid layout.
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-50}
scripts/install-deps.sh bench
[ -x build/casulo-runtime ] || { [ -f build/build.ninja ] || meson setup build >/dev/null; ninja -C build >/dev/null; }

work=$(mktemp -d /tmp/casulo-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin"
cp "$(command -v busybox)" "$work/bundle/rootfs/bin/busybox"
ln -s busybox "$work/bundle/rootfs/bin/true"
ln -s busybox "$work/bundle/rootfs/bin/sh"
build/casulo-runtime spec --bundle "$work/bundle"
python3 - "$work/bundle/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c['process']['terminal'] = False
c['process']['args'] = ['/bin/true']
json.dump(c, open(sys.argv[1], 'w'), indent=1)
EOF

cat > "$work/bench.py" <<'EOF'
import os, statistics, subprocess, sys, time
work, runs, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rts = [('casulo-runtime', os.path.abspath('build/casulo-runtime'))]
for name in sys.argv[4:]:
    rts.append((name, subprocess.run(['sh', '-c', f'command -v {name}'], capture_output=True, text=True).stdout.strip()))
bundle = os.path.join(work, 'bundle')
times = {n: [] for n, _ in rts}
rss = {n: [] for n, _ in rts}
seq = 0
def cmd(name, path):
    global seq
    seq += 1
    return [path, '--root', os.path.join(work, 'root-' + name), 'run', '--bundle', bundle, f'b{seq}']
for _ in range(3):  # warm the page cache
    for n, p in rts:
        subprocess.run(cmd(n, p), stdout=subprocess.DEVNULL, check=True)
for _ in range(runs):
    for n, p in rts:
        t0 = time.perf_counter()
        r = subprocess.run(cmd(n, p), stdout=subprocess.DEVNULL)
        times[n].append(time.perf_counter() - t0)
        if r.returncode != 0:
            sys.exit(f'{n} failed: exit {r.returncode}')
    for n, p in rts:
        out = os.path.join(work, 'rss')
        subprocess.run(['/usr/bin/time', '-f', '%M', '-o', out] + cmd(n, p), stdout=subprocess.DEVNULL, check=True)
        rss[n].append(int(open(out).read().split()[-1]))
base = rts[1][0]
print(f'## {label}: {runs} interleaved runs each')
print(f'{"runtime":<16} {"median":>9} {"p10":>8} {"p90":>8} {"vs " + base:>9} {"peak RSS":>9} {"median RSS":>11}')
for n, _ in rts:
    t = sorted(times[n])
    med = statistics.median(t)
    ratio = med / statistics.median(times[base])
    print(f'{n:<16} {med*1000:7.2f}ms {t[len(t)//10]*1000:6.2f}ms {t[len(t)*9//10]*1000:6.2f}ms '
          f'{ratio:8.2f}x {max(rss[n]):7d}kB {statistics.median(rss[n]):9.0f}kB')
EOF

crun_ok=yes
if ! command -v crun >/dev/null || ! crun --root "$work/probe" run --bundle "$work/bundle" probe >/dev/null 2>&1; then
	crun_ok=no
fi
if [ "$crun_ok" = yes ]; then
	python3 "$work/bench.py" "$work" "$RUNS" "this host's cgroup layout" crun runc
else
	echo "crun cannot run on this host's cgroup layout (hybrid: cgroup2 at /sys/fs/cgroup/unified);"
	echo "all three are measured in a mount namespace where /sys/fs/cgroup/unified is unmounted."
	unshare -m --propagation private sh -c \
		'umount /sys/fs/cgroup/unified && exec python3 "$1/bench.py" "$1" "$2" "v1 layout (cgroup2 unmounted)" crun runc' \
		sh "$work" "$RUNS"
	echo
	python3 "$work/bench.py" "$work" "$RUNS" "hybrid layout as the host has it (no crun)" runc
fi
