#!/bin/bash
# tests/run.sh - run every test: the unit tests (meson test, suite "unit", built with
# ASan and UBSan in build-san/) and the integration tests (tests/integration/t_*.sh,
# which drive the real daemon with real initiators). Prints one line per test and, last,
# exactly "N passed, N failed" (", N skipped" when any were skipped).
#
# Environment: CAIRN_TESTS="pattern" runs only integration tests whose name matches;
# CAIRN_SKIP_UNIT=1 skips the unit tests; CAIRN_LONG=1 asks the tests for longer runs.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/tests/out
mkdir -p "$OUT"
passed=0 failed=0 skipped=0

# Free space: the integration tests write up to a few GiB at a time under /tmp (each
# removes its files when it ends). A disk that fills mid-run fails tests with ENOSPC
# far from the cause, so say so first.
free_mib() { df -Pm "$1" 2>/dev/null | awk 'NR == 2 {print $4}'; }
tmp_free=$(free_mib /tmp)
if [ -n "$tmp_free" ] && [ "$tmp_free" -lt 8192 ]; then
	echo "warning: only $tmp_free MiB free under /tmp; the suite needs about 8 GiB" \
		"(leftovers of earlier runs: /tmp/cairn-it.*, /tmp/cairn-bench*)"
fi
failed_names=()

export CAIRN_BUILD=${CAIRN_BUILD:-$ROOT/build-san}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ -z "${CAIRN_SKIP_UNIT:-}" ]; then
	meson test -C "$CAIRN_BUILD" --suite unit --print-errorlogs --num-processes 2 \
		>"$OUT/unit.log" 2>&1
	grep -E '^ *[0-9]+/[0-9]+ ' "$OUT/unit.log" | sed 's/^/unit: /'
	ok=$(awk '/^Ok:/ {print $2}' "$OUT/unit.log")
	fl=$(awk '/^Fail:/ {print $2}' "$OUT/unit.log")
	to=$(awk '/^Timeout:/ {print $2}' "$OUT/unit.log")
	up=$(awk '/^Unexpected Pass:/ {print $3}' "$OUT/unit.log")
	sk=$(awk '/^Skipped:/ {print $2}' "$OUT/unit.log")
	if [ -z "$ok" ]; then
		echo "unit: meson test did not run; see tests/out/unit.log"
		tail -20 "$OUT/unit.log"
		failed=$((failed + 1)); failed_names+=("unit (meson test)")
	else
		passed=$((passed + ok)); failed=$((failed + ${fl:-0} + ${to:-0} + ${up:-0}))
		skipped=$((skipped + ${sk:-0}))
		[ "${fl:-0}" != 0 ] || [ "${to:-0}" != 0 ] && failed_names+=("unit tests (see tests/out/unit.log)")
	fi
fi

for t in tests/integration/t_*.sh; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .sh)
	if [ -n "${CAIRN_TESTS:-}" ] && [[ ! $name =~ ${CAIRN_TESTS} ]]; then
		continue
	fi
	start=$(date +%s)
	timeout -k 10 900 bash "$t" >"$OUT/$name.log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) passed=$((passed + 1)); echo "PASS $name (${secs}s)" ;;
	77) skipped=$((skipped + 1)); echo "SKIP $name: $(tail -1 "$OUT/$name.log")" ;;
	*) failed=$((failed + 1)); failed_names+=("$name")
	   echo "FAIL $name (rc=$rc, ${secs}s); last lines of tests/out/$name.log:"
	   tail -25 "$OUT/$name.log" | sed 's/^/    /'
	   f=$(free_mib /tmp)
	   [ -n "$f" ] && [ "$f" -lt 1024 ] && echo "    (only $f MiB left free under /tmp)" ;;
	esac
done

[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
