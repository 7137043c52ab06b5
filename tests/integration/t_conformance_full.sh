#!/bin/bash
# t_conformance_full.sh - libiscsi's whole conformance suite (iscsi-test-cu) against a
# cairn volume with its own key in an encrypted repository: the SCSI family (with a second session to the same target for
# MultipathIO) and the iSCSI family, then the ReadOnly suite through an initiator whose
# ACL gives it read-only access (the LUN is write-protected for it). Fails on any failed
# test or assert, and on a run that did not reach CUnit's summary; counts the tests that
# skipped themselves ([SKIPPED], which CUnit counts as passed) and names each, with the
# reason it gave.
#
# One test runs on a LUN of its own: Sanitize.Reset sends a SANITIZE OVERWRITE, sleeps
# 3 s, resets the task, LUN and target, logs out, sleeps 1 s more and expects the
# sanitize still to be running. Its premise is a medium that takes more than those ~4.5 s
# to overwrite. The 1 GiB LUN of the rest of the suite is erased in well under a second,
# so that test runs, unchanged, against a thin 2 TiB LUN (a datastore-sized LUN; no block
# of it is ever written), which cairn erases in 16 MiB range-locked steps in about 16 s
# here. Every other SCSI test runs against the 1 GiB LUN, as before.
source "$(dirname "$0")/lib.sh"
R=$T/repo
# An encrypted repository and a volume with its own key, so that SANITIZE CRYPTO ERASE
# is supported and its tests run rather than skip (plain repositories are covered by
# t_conformance.sh and the other tests).
printf 'conformance password\n' >"$T/pw"
export CAIRN_PASSWORD_FILE=$T/pw
"$CAIRN" init -r "$R" --encrypt >/dev/null
"$CAIRN" volume create conf --size 1G --own-key -r "$R" >/dev/null
"$CAIRN" volume create big --size 2T -r "$R" >/dev/null
"$CAIRN" volume create e512 --size 1G --physical-block-size 4K -r "$R" >/dev/null
TGT=$IQN:conf
RO_INIT=iqn.2026-01.test:readonly
cat >"$T/gw.conf" <<CONF
targets = ( { iqn = "$TGT"; luns = ( { lun = 0; volume = "conf"; } );
              acl = ( { initiator = "$RO_INIT"; access = "read-only"; } ); },
            { iqn = "$IQN:big"; luns = ( { lun = 0; volume = "big"; } ); },
            { iqn = "$IQN:e512"; luns = ( { lun = 0; volume = "e512"; } ); } );
CONF
start_daemon "$R" "$T/state" --config "$T/gw.conf"
U=$(url conf)
iscsi-readcapacity16 "$(url e512)" >"$T/rc16" || fail "READ CAPACITY (16) failed"
grep -q "LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT:3" "$T/rc16" ||
	fail "the 512e volume does not report 4 KiB physical blocks: $(cat "$T/rc16")"
bad=0

# run NAME iscsi-test-cu-args...: one run, its summary checked
run() {
	local name=$1 out=$T/cu.$1 rc=0
	shift
	iscsi-test-cu --dataloss --allow-sanitize "$@" >"$out" 2>&1 || rc=$?
	kill -0 "$DAEMON_PID" || fail "the daemon died during the $name run"
	local tests_line asserts_line ran failed_t failed_a skipped nskip
	tests_line=$(grep -A4 "Run Summary" "$out" | tr -s ' ' | grep " tests " || true)
	asserts_line=$(grep -A4 "Run Summary" "$out" | tr -s ' ' | grep " asserts " || true)
	[ -n "$tests_line" ] || { tail -20 "$out"; fail "no CUnit summary for the $name run (exit $rc)"; }
	ran=$(echo "$tests_line" | awk '{print $3}')
	failed_t=$(echo "$tests_line" | awk '{print $5}')
	failed_a=$(echo "$asserts_line" | awk '{print $5}')
	# A test that skips itself prints "Test: NAME ...    [SKIPPED] reason" on its line.
	skipped=$(grep -E "^  Test: .*\.\.\. +\[SKIPPED\]" "$out" | sed -E 's/^  Test: ([^ ]+) \.\.\. +\[SKIPPED\] */\1: /' || true)
	nskip=$(printf '%s' "$skipped" | grep -c . || true)
	echo "$name: ran $ran tests, failed $failed_t (asserts failed $failed_a), skipped $nskip"
	[ -z "$skipped" ] || printf '%s\n' "$skipped" | sed 's/^/  skipped /'
	if [ "${ran:-0}" = 0 ] || [ "$failed_t" != 0 ] || [ "$failed_a" != 0 ]; then
		# CUnit lists each failed assert as "N. test_<file>.c:LINE - ..."
		grep -E '^ +[0-9]+\. test_' "$out" | head -40
		bad=1
	fi
}

# The SCSI family but Sanitize.Reset, as a test list (one FAMILY.SUITE[.TEST] per line,
# in the family's order): every suite but Sanitize whole, then Sanitize's tests but Reset.
iscsi-test-cu --list >"$T/all.list"
grep -E '^SCSI\.[A-Za-z0-9]+$' "$T/all.list" | grep -v -x SCSI.Sanitize >"$T/scsi.list"
grep -E '^SCSI\.Sanitize\.' "$T/all.list" | grep -v -x SCSI.Sanitize.Reset >>"$T/scsi.list"
grep -q -x SCSI.Sanitize.Reset "$T/all.list" || fail "iscsi-test-cu has no SCSI.Sanitize.Reset"
[ "$(grep -c . "$T/scsi.list")" -gt 50 ] || fail "the SCSI test list is short: $(cat "$T/scsi.list")"
log "SCSI family but Sanitize.Reset (two sessions for MultipathIO)"
run SCSI --test="$T/scsi.list" "$U" "$U"
log "Sanitize.Reset against the 2 TiB thin LUN"
run SanitizeReset --test=SCSI.Sanitize.Reset "$(url big)"
grep -q "LUN big: SANITIZE done" "$T/serve.log" ||
	fail "the 2 TiB LUN's sanitize did not end well"
# The suites whose tests depend on the geometry, against the "512e" LUN (512-byte
# logical, 4 KiB physical blocks): on the 512n LUN the tests of unaligned UNMAP and of
# wrong DataOut sizes skip themselves (LBPPB < 2). GetLBAStatus.UnmapSingle is left out
# here (it runs, and passes, on the 512n LUN): for LBPPB > 1 it asks for the status of
# LBA i+1 and requires the first descriptor to start at i+LBPPB, which cannot contain
# the requested LBA as SBC-3 requires of the first descriptor.
printf '%s\n' SCSI.ReadCapacity16 SCSI.CompareAndWrite SCSI.WriteSame10 SCSI.WriteSame16 \
	SCSI.Unmap SCSI.GetLBAStatus.Simple SCSI.GetLBAStatus.BeyondEol >"$T/e512.list"
log "geometry-dependent suites against the 512e LUN"
run 512e --test="$T/e512.list" "$(url e512)"
grep -q "LBPPB < 2" "$T/cu.512e" && fail "a test skipped on the 512e LUN for LBPPB < 2"
log "iSCSI family"
run iSCSI --test=iSCSI "$U"
log "ReadOnly suite: an initiator with read-only access sees a write-protected LUN"
run ReadOnly --test=SCSI.ReadOnly -i "$RO_INIT" "$U"
grep -q "Logical unit is not write-protected" "$T/cu.ReadOnly" &&
	fail "the read-only initiator was not shown a write-protected LUN"
[ $bad = 0 ] || fail "iscsi-test-cu reported failures"
stop_daemon
