#!/bin/bash
# libiscsi's conformance suite (iscsi-test-cu) against a cairn volume: the tests the
# spine must pass, with no failure and no error.
source "$(dirname "$0")/lib.sh"
R=$T/repo
"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create conf --size 1G -r "$R" >/dev/null
start_daemon "$R" "$T/state"
iscsi-readcapacity16 "$(url conf)" | grep -q "LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT:0" ||
	fail "a volume created without --physical-block-size is not 512n"
bad=0
for t in SCSI.Read10 SCSI.Write10 SCSI.Read16 SCSI.Write16 SCSI.Inquiry SCSI.ReadCapacity16 \
	SCSI.TestUnitReady iSCSI.iSCSIResiduals; do
	iscsi-test-cu --dataloss --test="$t" "$(url conf)" >"$T/cu.$t" 2>&1 || true
	summary=$(grep -A4 "Run Summary" "$T/cu.$t" | tr -s ' ')
	tests_line=$(echo "$summary" | grep " tests ")
	asserts_line=$(echo "$summary" | grep " asserts ")
	failed_t=$(echo "$tests_line" | awk '{print $5}')
	failed_a=$(echo "$asserts_line" | awk '{print $5}')
	ran=$(echo "$tests_line" | awk '{print $3}')
	skipped=$(grep -c "\[SKIPPED\]" "$T/cu.$t" || true)
	echo "$t: ran $ran tests, failed $failed_t, failed asserts $failed_a, skipped $skipped"
	if [ -z "$tests_line" ] || [ "$failed_t" != 0 ] || [ "$failed_a" != 0 ] || [ "${ran:-0}" = 0 ]; then
		bad=1
		grep -E "FAILED|failed|Error|ERROR" "$T/cu.$t" | head -20
	fi
	kill -0 "$DAEMON_PID" || fail "the daemon died during $t"
done
[ $bad = 0 ] || fail "iscsi-test-cu reported failures"
stop_daemon
