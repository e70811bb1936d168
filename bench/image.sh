#!/bin/sh
# bench/image.sh [RUNS]: pull + unpack of a multi-layer image (>= 200 MiB,
# built here from Debian packages) from a loopback docker-registry:
# `casulo image pull` + `casulo image unpack` beside `skopeo copy` +
# `umoci unpack`, interleaved, RUNS rounds (default 5), medians and the
# ratio; the two rootfs compared (paths, modes, owners, sizes, content
# hashes); then the time of `casulo image audit` on that image.
set -eu
cd "$(dirname "$0")/.."
RUNS=${1:-5}
scripts/install-deps.sh bench
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec python3 bench/image.py --runs "$RUNS"
