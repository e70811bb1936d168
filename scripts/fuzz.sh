#!/bin/sh
# Build the libFuzzer targets with clang (ASan+UBSan) and run each one.
#   scripts/fuzz.sh [SECONDS]     (default 60 per target)
# Crashes are written to build-fuzz/crashes/; corpora grow in build-fuzz/corpus/.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}
dir=build-fuzz
scripts/install-deps.sh test
if [ ! -f "$dir/build.ninja" ]; then
	CC=clang meson setup "$dir" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$dir" >/dev/null
mkdir -p "$dir/crashes"
status=0
for bin in "$dir"/fuzz/fuzz-*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	name=$(basename "$bin")
	corpus="$dir/corpus/$name"
	mkdir -p "$corpus"
	# Seed with the test guests: real kernels in each boot format.
	case $name in
	fuzz-kernel-image) cp -n "$dir"/tests/kvm/test-guest* "$corpus"/ 2>/dev/null || true ;;
	*) cp -n fuzz/seeds/"${name#fuzz-}"* "$corpus"/ 2>/dev/null || true ;;
	esac
	echo "fuzz: $name for ${seconds}s"
	if ! "$bin" -max_total_time="$seconds" -artifact_prefix="$dir/crashes/$name-" -print_final_stats=1 \
		"$corpus" >"$dir/$name.log" 2>&1; then
		echo "fuzz: $name FAILED; see $dir/$name.log"
		tail -30 "$dir/$name.log"
		status=1
	else
		grep -E "stat::number_of_executed_units|cov:" "$dir/$name.log" | tail -2
	fi
done
exit $status
