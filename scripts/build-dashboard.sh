#!/bin/sh
# The web dashboard into the build output: casulod serves OUT (build/dashboard)
# at / and /ui/.  xterm.js comes from the npm registry at build time (npm ci
# against the committed package-lock.json) and is copied in, so that nothing
# is fetched when the page runs.
#   scripts/build-dashboard.sh SRC_DIR OUT_DIR STAMP
set -eu
src=$1
out=$2
stamp=$3
work=$(dirname "$stamp")/dashboard-npm
mkdir -p "$work" "$out/vendor"
cp "$src/package.json" "$src/package-lock.json" "$work/"
(cd "$work" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
cp "$work/node_modules/@xterm/xterm/lib/xterm.js" "$out/vendor/xterm.js"
cp "$work/node_modules/@xterm/xterm/css/xterm.css" "$out/vendor/xterm.css"
cp "$work/node_modules/@xterm/addon-fit/lib/addon-fit.js" "$out/vendor/addon-fit.js"
cp "$src/index.html" "$src/app.js" "$src/style.css" "$out/"
touch "$stamp"
