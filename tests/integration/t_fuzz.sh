#!/bin/bash
# t_fuzz - the libFuzzer targets of tests/fuzz/ run for a bounded time each, starting from
# the committed corpus (seeds and regression inputs):
#   fuzz_pdu         the initiator's byte stream through the daemon's connection code
#   fuzz_login_text  text keys, login negotiation and CHAP
#   fuzz_cdb         CDB dispatch of the SCSI layer against RAM LUNs
# Any crash, leak, undefined behaviour, timeout or failed harness check fails the test and
# names the reproducer (tests/out/fuzz/<target>/crash-*), to be re-run with
#   build-fuzz-lf/tests/fuzz/<target> tests/out/fuzz/<target>/crash-...
# The clang build lives in build-fuzz-lf/ (configured here when missing, reused when
# present; CAIRN_FUZZ_BUILD overrides it). One process at a time (the machine has 2 cores).
#
#   CAIRN_FUZZ_SECS=N   seconds per target (default 25; CAIRN_LONG=1: 300)
source "$(dirname "$0")/lib.sh"

SECS=${CAIRN_FUZZ_SECS:-$([ -n "${CAIRN_LONG:-}" ] && echo 300 || echo 25)}
FUZZ_BUILD=${CAIRN_FUZZ_BUILD:-$ROOT/build-fuzz-lf}
ARTS=$ROOT/tests/out/fuzz
TARGETS=(fuzz_pdu fuzz_login_text fuzz_cdb)
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

command -v clang >/dev/null || fail "clang is not installed (make deps installs it: DEB_PACKAGES)"

log "build ${FUZZ_BUILD#"$ROOT"/} (clang, -Dfuzz=true)"
if [ ! -f "$FUZZ_BUILD/build.ninja" ]; then
	CC=clang meson setup "$FUZZ_BUILD" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false >"$T/setup.log" 2>&1 || { cat "$T/setup.log"; fail "meson setup of the fuzz build failed"; }
fi
ninja -C "$FUZZ_BUILD" "${TARGETS[@]/#/tests/fuzz/}" >"$T/build.log" 2>&1 ||
	{ tail -40 "$T/build.log"; fail "the fuzz targets do not build"; }

for t in "${TARGETS[@]}"; do
	bin=$FUZZ_BUILD/tests/fuzz/$t
	seeds=$ROOT/tests/fuzz/corpus/$t
	work=$T/corpus-$t
	args=(-max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
	[ "$t" = fuzz_cdb ] || args+=(-dict="$ROOT/tests/fuzz/iscsi.dict")
	[ "$t" = fuzz_pdu ] && args+=(-max_len=16384)
	[ -d "$seeds" ] && [ -n "$(ls -A "$seeds")" ] || fail "no corpus in ${seeds#"$ROOT"/}"
	mkdir -p "$work" "$ARTS/$t"
	cp "$seeds"/* "$work"/ # new inputs go to the copy: the repository stays as it is
	log "$t: $SECS s from $(ls "$seeds" | wc -l) corpus inputs"
	rc=0
	"$bin" "$work" "${args[@]}" -artifact_prefix="$ARTS/$t/" >"$T/$t.log" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		grep -E 'ERROR|runtime error|check failed|SUMMARY|fuzz_env|does not settle' "$T/$t.log" | head -20
		tail -60 "$T/$t.log"
		art=$(grep -oE "(Test unit|artifact) written to [^ ]+" "$T/$t.log" | tail -1 | awk '{print $NF}')
		fail "$t failed (exit $rc); reproducer: ${art:-see $T/$t.log}; run it with: $bin ${art:-FILE}"
	fi
	runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$T/$t.log")
	cov=$(grep -oE 'cov: [0-9]+' "$T/$t.log" | tail -1)
	echo "  ok: ${runs:-?} inputs, ${cov:-cov: ?}, corpus $(ls "$work" | wc -l) inputs, no crash, leak or UB"
done
log "all fuzz targets clean"
