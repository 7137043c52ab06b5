#!/bin/bash
# libiscsi's whole conformance suite (iscsi-test-cu) against a cairn volume: the SCSI
# family (with a second session to the same target for MultipathIO) and the iSCSI
# family. Fails on any failed test or assert; counts the tests that skipped themselves
# ([SKIPPED], which CUnit counts as passed) and names each, with the reason it gave.
source "$(dirname "$0")/integration/lib.sh"
R=$T/repo
"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create conf --size 1G -r "$R" >/dev/null
start_daemon "$R" "$T/state"
U=$(url conf)
bad=0
for fam in SCSI iSCSI; do
	out=$T/cu.$fam
	rc=0
	if [ $fam = SCSI ]; then
		iscsi-test-cu --dataloss --allow-sanitize --test=$fam "$U" "$U" >"$out" 2>&1 || rc=$?
	else
		iscsi-test-cu --dataloss --allow-sanitize --test=$fam "$U" >"$out" 2>&1 || rc=$?
	fi
	kill -0 "$DAEMON_PID" || fail "the daemon died during the $fam family"
	tests_line=$(grep -A4 "Run Summary" "$out" | tr -s ' ' | grep " tests " || true)
	asserts_line=$(grep -A4 "Run Summary" "$out" | tr -s ' ' | grep " asserts " || true)
	[ -n "$tests_line" ] || { tail -20 "$out"; fail "no CUnit summary for the $fam family (exit $rc)"; }
	ran=$(echo "$tests_line" | awk '{print $3}')
	failed_t=$(echo "$tests_line" | awk '{print $5}')
	failed_a=$(echo "$asserts_line" | awk '{print $5}')
	# A test that skips itself prints "Test: NAME ...    [SKIPPED] reason" on its line.
	skipped=$(grep -E "^  Test: .*\.\.\. +\[SKIPPED\]" "$out" | sed -E 's/^  Test: ([^ ]+) \.\.\. +\[SKIPPED\] */\1: /' || true)
	nskip=$(printf '%s' "$skipped" | grep -c . || true)
	echo "$fam: ran $ran tests, failed $failed_t (asserts failed $failed_a), skipped $nskip"
	[ -z "$skipped" ] || printf '%s\n' "$skipped" | sed 's/^/  skipped /'
	if [ "${ran:-0}" = 0 ] || [ "$failed_t" != 0 ] || [ "$failed_a" != 0 ]; then
		bad=1
		# the failed tests: the "Test: NAME ..." line before each CUnit FAILED block
		awk '/^  Test: /{t=$2} /^FAILED$|\.\.\.FAILED$/{print "  FAILED " t} /^ +[0-9]+\. test_/{print "   " $0}' "$out" | head -40
	fi
done
[ $bad = 0 ] || fail "iscsi-test-cu reported failures"
stop_daemon
