"""The image benchmark (bench/image.sh runs it): see image.sh."""
import argparse
import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'image'))
import imagetest  # noqa: E402
from imagetest import F, D, Image, Registry, listing, tar_bytes  # noqa: E402

CASULO = os.path.join(HERE, '..', 'build', 'casulo')

# Layers of Debian packages that `scripts/install-deps.sh bench` installs.
LAYERS = [
    ['base-files', 'base-passwd', 'libc6', 'bash', 'coreutils', 'dash', 'zlib1g', 'libzstd1', 'tar', 'grep',
     'sed', 'findutils', 'libacl1', 'libattr1', 'libselinux1', 'libpcre2-8-0', 'libgmp10'],
    ['python3.11-minimal', 'libpython3.11-minimal', 'libpython3.11-stdlib'],
    ['gcc-12', 'cpp-12', 'libgcc-12-dev', 'binutils-x86-64-linux-gnu'],
    ['libllvm14'],
    ['containerd'],
]


def package_files(pkgs, seen):
    """Files of installed packages as one layer, parents first."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        for pkg in pkgs:
            listed = subprocess.run(['dpkg', '-L', pkg], capture_output=True, text=True)
            if listed.returncode != 0:
                continue
            for path in listed.stdout.split('\n'):
                if not path.startswith('/') or path in seen or not os.path.lexists(path):
                    continue
                parts = path.strip('/').split('/')
                for i in range(1, len(parts)):
                    parent = '/' + '/'.join(parts[:i])
                    if parent not in seen and os.path.isdir(parent) and not os.path.islink(parent):
                        seen.add(parent)
                        t.add(parent, arcname=parent.lstrip('/'), recursive=False)
                # a path under a symlinked directory (usrmerge) is stored by its real parent
                if os.path.realpath(os.path.dirname(path)) != os.path.dirname(path):
                    continue
                seen.add(path)
                t.add(path, arcname=path.lstrip('/'), recursive=False)
    return buf.getvalue()


def build_image(cache):
    layout = os.path.join(cache, 'layout')
    if os.path.exists(os.path.join(layout, 'index.json')):
        return layout
    seen = set()
    raws = [package_files(pkgs, seen) for pkgs in LAYERS]
    pkgs = [p for group in LAYERS for p in group]
    status = subprocess.run(['dpkg-query', '-s'] + pkgs, capture_output=True, text=True).stdout
    raws.append(tar_bytes([D('etc'), F('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/bash\n'),
                           F('etc/group', 'root:x:0:\napp:x:1000:\n'), F('etc/shadow', 'root:*:19000::::::\napp:!:19000::::::\n', mode=0o640),
                           D('var/lib/dpkg'), F('var/lib/dpkg/status', status), D('home/app', uid=1000, gid=1000)]))
    img = Image(raws, config={'User': 'app', 'Cmd': ['bash']})
    total = sum(len(x['raw']) for x in img.layers)
    print(f'built the image: {len(raws)} layers, {total / 2**20:.0f} MiB uncompressed, '
          f'{sum(len(x["blob"]) for x in img.layers) / 2**20:.0f} MiB compressed', flush=True)
    if total < 200 * 2**20:
        sys.exit(f'the image is only {total / 2**20:.0f} MiB: install the bench packages (scripts/install-deps.sh bench)')
    tmp = layout + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    img.write_layout(tmp, 'bench')
    os.rename(tmp, layout)
    return layout


def timed(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f'{" ".join(cmd)} failed: {p.stderr.strip()[-800:]}')
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=5)
    args = ap.parse_args()
    cache = os.path.join(HERE, '..', 'build', 'bench', 'image')
    os.makedirs(cache, exist_ok=True)
    layout = build_image(cache)
    work = os.path.join(cache, 'work')
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    reg = Registry()
    try:
        ref = reg.push(layout, 'bench', 'bench/debian:1')
        times = {'casulo pull': [], 'casulo unpack': [], 'skopeo copy': [], 'umoci unpack': []}
        for i in range(args.runs):
            store, bundle = os.path.join(work, 'store'), os.path.join(work, 'casulo-bundle')
            oci, ubundle = os.path.join(work, 'oci'), os.path.join(work, 'umoci-bundle')
            for d in (store, bundle, oci, ubundle):
                shutil.rmtree(d, ignore_errors=True)
            subprocess.run(['sync'])
            times['casulo pull'].append(timed([CASULO, 'image', 'pull', '--root', store, '--quiet', ref]))
            times['casulo unpack'].append(timed([CASULO, 'image', 'unpack', '--root', store, '--quiet', ref, bundle]))
            subprocess.run(['sync'])
            times['skopeo copy'].append(timed(['skopeo', '--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false',
                                               f'docker://{ref}', f'oci:{oci}:bench']))
            times['umoci unpack'].append(timed(['umoci', 'unpack', '--image', f'{oci}:bench', ubundle]))
            print(f'run {i + 1}: casulo {times["casulo pull"][-1] + times["casulo unpack"][-1]:.2f} s, '
                  f'skopeo+umoci {times["skopeo copy"][-1] + times["umoci unpack"][-1]:.2f} s', flush=True)
        ours = listing(os.path.join(work, 'casulo-bundle', 'rootfs'))
        theirs = listing(os.path.join(work, 'umoci-bundle', 'rootfs'))
        diff = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        audit, audit_cpu = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            r0 = os.times()
            p = subprocess.run([CASULO, 'image', 'audit', '--root', os.path.join(work, 'store'), '--format', 'json', ref],
                               capture_output=True, text=True)
            r1 = os.times()
            audit.append(time.perf_counter() - t0)
            audit_cpu.append(r1.children_user - r0.children_user + r1.children_system - r0.children_system)
        rep = json.loads(p.stdout)
    finally:
        reg.stop()
        shutil.rmtree(imagetest.WORK, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ours_t = [a + b for a, b in zip(times['casulo pull'], times['casulo unpack'])]
    peer_t = [a + b for a, b in zip(times['skopeo copy'], times['umoci unpack'])]
    print(f'\n## pull + unpack of {ref} ({args.runs} interleaved runs, medians)')
    print(f'{"step":<16} {"median":>9}')
    for k in times:
        print(f'{k:<16} {med[k]:8.2f}s')
    mo, mp = statistics.median(ours_t), statistics.median(peer_t)
    print(f'{"casulo total":<16} {mo:8.2f}s')
    print(f'{"skopeo+umoci":<16} {mp:8.2f}s')
    print(f'ratio casulo / (skopeo+umoci): {mo / mp:.2f}x  (target <= 0.5x)')
    print(f'rootfs: {len(ours)} entries; identical to umoci\'s: {"yes" if not diff else "NO"}')
    for k in diff[:20]:
        print(f'  differs: {k}: casulo {ours.get(k)} umoci {theirs.get(k)}')
    print(f'audit: median {statistics.median(audit):.2f}s wall, {statistics.median(audit_cpu):.2f}s CPU over 3 runs '
          f'(target < 2 s); {len(rep["findings"])} findings, {rep["packages"]} packages, {rep["files"]} files')
    print(f'load average at the end: {" ".join(f"{x:.1f}" for x in os.getloadavg())} on {os.cpu_count()} CPUs')
    shutil.rmtree(work, ignore_errors=True)
    return 1 if diff else 0


if __name__ == '__main__':
    sys.exit(main())
