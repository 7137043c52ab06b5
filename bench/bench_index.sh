#!/bin/bash
# bench/bench_index.sh - the chunk index:
#  1. RAM per million chunks, lookup rates and the longest insert: the bounded index
#     (filter + sorted runs on disk + small table of recent changes, runs merged by a
#     background thread) side by side with the former all-in-RAM hash table and with the
#     former inline merges, for 1 and 4 million synthetic uniform chunk ids (each case in
#     its own process; VmRSS/VmHWM deltas from /proc/self/status);
#  2. the open time of a repository of 1 million chunks in 4000 packs: the former open
#     (every index segment read) against the reopen from the table kept in the state
#     directory;
#  3. the cairn binary's commands that open that repository themselves (no daemon):
#     `cairn volume list` and `cairn stats` with no kept table (every segment read: the
#     former open of every command) against with the table a writable command kept in
#     the state directory ($CAIRN_STATE_DIR, as `cairn serve` keeps it), best of 3 each;
#     BENCH_COLD=1 (root) drops the page cache before each run (segments and runs read
#     from the disk).
# Usage: bash bench/bench_index.sh [MILLIONS...] after make build (MILLIONS for part 1;
# default 1 4); OPEN_MILLIONS (default 1) for parts 2 and 3; BENCH_DIR sets where the
# run files and the repositories go (default $TMPDIR); BENCH_PARTS (default "1 2 3").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${CAIRN_BUILD:-$ROOT/build}
BENCH=$BUILD/tests/unit/stores/bench_stores_index
PARTS=" ${BENCH_PARTS:-1 2 3} "
[ $# -gt 0 ] || set -- 1 4
if [[ $PARTS == *" 1 "* ]]; then
	"$BENCH" "$@" ${BENCH_DIR:+"$BENCH_DIR"}
	echo
fi
if [[ $PARTS == *" 2 "* ]]; then
	"$BENCH" --open "${OPEN_MILLIONS:-1}" ${BENCH_DIR:+"$BENCH_DIR"}
	echo
fi
[[ $PARTS == *" 3 "* ]] || exit 0

W=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/cairn-bench-cli.XXXXXX")
trap 'rm -rf "$W"' EXIT
export CAIRN_RUN_DIR=$W/run # no daemon is found: every command opens the repository
"$BENCH" --make-repo "$W/repo" "${OPEN_MILLIONS:-1}"
# best S CMD...: the best wall time of RUNS (3) runs of `cairn CMD` with $CAIRN_STATE_DIR=S
best() {
	local st=$1 b= t0 t1 t; shift
	for _ in $(seq "${RUNS:-3}"); do
		if [ -n "${BENCH_COLD:-}" ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
		t0=$(date +%s.%N)
		CAIRN_STATE_DIR=$st "$BUILD/cairn" "$@" -r "$W/repo" >/dev/null
		t1=$(date +%s.%N)
		t=$(echo "$t1 - $t0" | bc)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
	done
	echo "$b"
}
# a writable command keeps the table; read-only commands never create one (none/ stays absent)
t_first=$(RUNS=1 best "$W/state" gc --dry-run)
[ -s "$(find "$W/state" -name manifest | head -1)" ] || { echo "no kept table in $W/state" >&2; exit 1; }
printf '%-44s %12s %12s %8s\n' "command (no daemon)" "no table s" "kept table s" "ratio"
for cmd in "volume list" "stats"; do
	# shellcheck disable=SC2086
	t_none=$(best "$W/none" $cmd)
	# shellcheck disable=SC2086
	t_kept=$(best "$W/state" $cmd)
	printf '%-44s %12.3f %12.3f %8.3f\n' "cairn $cmd" "$t_none" "$t_kept" "$(echo "$t_kept / $t_none" | bc -l)"
done
[ ! -e "$W/none" ] || { echo "a read-only command created $W/none" >&2; exit 1; }
printf '%-44s %12.3f %12s\n' "cairn gc --dry-run (first: keeps the table)" "$t_first" ""
