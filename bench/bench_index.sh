#!/bin/bash
# bench/bench_index.sh - RAM per million chunks and lookup rates of the chunk index:
# the bounded index (filter + sorted runs on disk + small table of recent changes)
# side by side with the former all-in-RAM hash table, for 1 and 4 million synthetic
# uniform chunk ids (each case in its own process; VmRSS/VmHWM deltas from
# /proc/self/status). Usage: bash bench/bench_index.sh [MILLIONS...] after make build;
# BENCH_DIR sets where the run files go (default $TMPDIR).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${CAIRN_BUILD:-$ROOT/build}
[ $# -gt 0 ] || set -- 1 4
exec "$BUILD/tests/unit/stores/bench_stores_index" "$@" ${BENCH_DIR:+"$BENCH_DIR"}
