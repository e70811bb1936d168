#!/bin/sh
# make check: install test dependencies, build (plain and with ASan+UBSan),
# run every suite, then print "N passed, N failed[, N skipped]" last.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}

scripts/install-deps.sh test || { echo "check: installing dependencies failed"; echo "0 passed, 1 failed"; exit 1; }

build_dir() {
	dir=$1; shift
	[ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null || return 1
	ninja -C "$dir" >/dev/null || ninja -C "$dir"
}

logs=""
status=0
if ! build_dir "$BUILD" || ! build_dir "$ASAN_BUILD" -Db_sanitize=address,undefined -Db_lundef=false; then
	echo "check: build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

# The default guest for the linux suite (cached; without it those tests skip).
scripts/install-deps.sh guest lab >/dev/null 2>&1 || true
guest/build.sh "$BUILD/guest" >"$BUILD/guest-build.log" 2>&1 || echo "check: building the default guest failed (see $BUILD/guest-build.log)"

# Unit tests run sanitized; everything that boots guests runs the plain build.
rm -f "$ASAN_BUILD/meson-logs/testlog.json"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C "$ASAN_BUILD" --suite unit --print-errorlogs >/dev/null 2>&1 || status=1
cp "$ASAN_BUILD/meson-logs/testlog.json" "$ASAN_BUILD/meson-logs/testlog-unit.json" 2>/dev/null
logs="$logs $ASAN_BUILD/meson-logs/testlog-unit.json"

for suite in $(scripts/suites.sh); do
	meson test -C "$BUILD" --list --suite "$suite" >/dev/null 2>&1 || continue
	rm -f "$BUILD/meson-logs/testlog.json"
	meson test -C "$BUILD" --suite "$suite" --print-errorlogs --no-rebuild >/dev/null 2>&1 || status=1
	cp "$BUILD/meson-logs/testlog.json" "$BUILD/meson-logs/testlog-$suite.json" 2>/dev/null
	logs="$logs $BUILD/meson-logs/testlog-$suite.json"
done

# Per-test lines for the reader, then the summary as the last line.
python3 scripts/test-summary.py --details $logs
