#!/bin/sh
# Builds mm and runs the whole test suite against the freshly built plugin
# (isolated registry in the build dir).  Ends with "N passed, N failed,
# N skipped".
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD"
ninja -C "$BUILD"
rc=0
meson test -C "$BUILD" --print-errorlogs --num-processes 2 || rc=$?
python3 scripts/test-summary.py "$BUILD/meson-logs/testlog.json"
exit $rc
