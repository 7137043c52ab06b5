#!/bin/bash
# bench/bench_index.sh - the chunk index:
#  1. RAM per million chunks, lookup rates and the longest insert: the bounded index
#     (filter + sorted runs on disk + small table of recent changes, runs merged by a
#     background thread) side by side with the former all-in-RAM hash table and with the
#     former inline merges, for 1 and 4 million synthetic uniform chunk ids (each case in
#     its own process; VmRSS/VmHWM deltas from /proc/self/status);
#  2. the open time of a repository of 1 million chunks in 4000 packs: the former open
#     (every index segment read) against the reopen from the table kept in the state
#     directory.
# Usage: bash bench/bench_index.sh [MILLIONS...] after make build (MILLIONS for part 1;
# default 1 4); OPEN_MILLIONS (default 1) for part 2; BENCH_DIR sets where the run
# files and the repository go (default $TMPDIR).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${CAIRN_BUILD:-$ROOT/build}
[ $# -gt 0 ] || set -- 1 4
"$BUILD/tests/unit/stores/bench_stores_index" "$@" ${BENCH_DIR:+"$BENCH_DIR"}
echo
exec "$BUILD/tests/unit/stores/bench_stores_index" --open "${OPEN_MILLIONS:-1}" ${BENCH_DIR:+"$BENCH_DIR"}
