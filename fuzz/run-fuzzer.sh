#!/bin/sh
# Run one libFuzzer target for a while, starting from its seed inputs.
#   run-fuzzer.sh FUZZER SECONDS CORPUS_DIR [SEED]...
# The corpus directory keeps what the fuzzer finds between runs; crash
# inputs land next to it as crash-* files.
set -eu
fuzzer=$1 seconds=$2 corpus=$3
shift 3
mkdir -p "$corpus"
for seed in "$@"; do
	cp -n "$seed" "$corpus"/ 2>/dev/null || true
done
# libFuzzer exits 77 on a finding by default, which meson counts as a
# skip: a crash, leak or timeout must fail the test.
exec "$fuzzer" -error_exitcode=1 -timeout_exitcode=1 -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$corpus/../" "$corpus"
