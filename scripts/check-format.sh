#!/bin/sh
# Every C source and header of the tree is formatted as .clang-format says.
#   scripts/check-format.sh         list the files clang-format would change; exit 1 if any
#   scripts/check-format.sh --fix   format them in place
# The files are git's (git ls-files), or those under src/ tests/ fuzz/
# guest/ bench/ outside a checkout.  clang-format comes from Debian's
# clang-format package (scripts/install-deps.sh test); its output can change
# between major versions, so the one CI installs is the reference.
set -u
cd "$(dirname "$0")/.."
fix=false
[ "${1:-}" = "--fix" ] && fix=true

if ! command -v clang-format >/dev/null 2>&1; then
	echo "check-format: clang-format is missing (scripts/install-deps.sh test)"
	exit 77
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	files=$(git ls-files --cached --others --exclude-standard '*.c' '*.h' | while read -r f; do
		[ -f "$f" ] && echo "$f"
	done)
else
	files=$(find src tests fuzz guest bench -name '*.[ch]' 2>/dev/null | sort)
fi

if $fix; then
	# shellcheck disable=SC2086
	clang-format -i $files
	exit $?
fi
# One clang-format for the whole tree: its diagnostics name each file that differs.
# shellcheck disable=SC2086
bad=$(clang-format --dry-run --Werror $files 2>&1 | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: .*/\1/p' | sort -u)
if [ -n "$bad" ]; then
	for f in $bad; do
		echo "check-format: $f is not formatted (scripts/check-format.sh --fix)"
	done
	echo "check-format: $(echo "$bad" | wc -l) file(s) differ from $(clang-format --version | head -1)"
	exit 1
fi
echo "check-format: $(echo "$files" | wc -w) files formatted as .clang-format says"
exit 0
