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
extra="$BUILD/meson-logs/testlog-extra.json"

# Record a failure that happened outside meson test (a build step), so
# that the summary counts it.
record_failure() {
	mkdir -p "$(dirname "$extra")"
	printf '{"name": "%s", "result": "FAIL", "stdout": "", "duration": 0}\n' "$1" >>"$extra"
}
rm -f "$extra"
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

# libFuzzer targets, built with clang, each run briefly from its seeds.
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
if command -v clang >/dev/null 2>&1; then
	if { [ -f "$FUZZ_BUILD/build.ninja" ] || CC=clang meson setup "$FUZZ_BUILD" -Dfuzz=true \
		-Db_sanitize=address,undefined -Db_lundef=false >/dev/null; } && ninja -C "$FUZZ_BUILD" >/dev/null; then
		rm -f "$FUZZ_BUILD/meson-logs/testlog.json"
		meson test -C "$FUZZ_BUILD" --suite fuzz --no-rebuild >/dev/null 2>&1 || status=1
		logs="$logs $FUZZ_BUILD/meson-logs/testlog.json"
	else
		echo "check: building the fuzz targets failed"
		record_failure fuzz-build
		status=1
	fi
fi

# Per-test lines for the reader, then the summary as the last line.
[ -f "$extra" ] && logs="$logs $extra"
python3 scripts/test-summary.py --details $logs
