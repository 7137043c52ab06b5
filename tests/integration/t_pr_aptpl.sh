#!/bin/bash
# t_pr_aptpl.sh - SCSI-3 persistent reservations made with APTPL (activate persist
# through power loss) survive the daemon: a clean stop and a kill -9. Two initiators
# (real libiscsi sessions, tests/tools/iscsi_pr) register keys with APTPL, one holds a
# WRITE EXCLUSIVE reservation; after each restart a new session of each sees the same
# keys and reservation, the holder writes and the other gets RESERVATION CONFLICT. The
# state lives in the repository (encrypted here: no object holds the initiator names in
# clear). Clearing APTPL drops the saved state: the next restart starts with none.
source "$(dirname "$0")/lib.sh"
PR=$BUILD/tests/tools/iscsi_pr
[ -x "$PR" ] || fail "missing $PR (build the test tools)"
R=$T/repo
printf 'reservation test password\n' >"$T/pw"
export CAIRN_PASSWORD_FILE=$T/pw
"$CAIRN" init -r "$R" --encrypt >/dev/null
"$CAIRN" volume create -r "$R" prvol --size 64M >/dev/null
A=iqn.2026-01.test:pr-node-alpha
B=iqn.2026-01.test:pr-node-bravo

pr() { "$PR" "$(url prvol)" "$@"; }
# check WHAT EXPECTED cmd...: the output of an iscsi_pr run must be EXPECTED
check() {
	local what=$1 want=$2 got
	shift 2
	got=$(pr "$@") || fail "$what: iscsi_pr $* failed: $got"
	[ "$got" = "$want" ] || fail "$what: expected '$want', got '$got'"
}
# state WHEN: the registrations and reservation must be the ones made below
state() {
	local keys
	keys=$(pr "$A" 7 keys) || fail "$1: read keys failed"
	echo "$keys" | qgrep -x "key 0xa11a" || fail "$1: key of A missing: $keys"
	echo "$keys" | qgrep -x "key 0xb22b" || fail "$1: key of B missing: $keys"
	[ "$(echo "$keys" | grep -c '^key ')" = 2 ] || fail "$1: expected two keys: $keys"
	check "$1: reservation" "reservation 0xa11a type 1" "$B" 9 reservation
	check "$1: the holder writes" "write GOOD" "$A" 7 write 100
	check "$1: the other initiator is refused" "write RESERVATION CONFLICT" "$B" 9 write 100
}

start_daemon "$R" "$T/state"
log "register A and B with APTPL, A reserves WRITE EXCLUSIVE"
check "register A" "registered 0xa11a aptpl 1" "$A" 7 register 0xa11a 1
check "register B" "registered 0xb22b aptpl 1" "$B" 9 register 0xb22b 1
check "reserve" "reserved 0xa11a type 1" "$A" 7 reserve 0xa11a 1
state "before any restart"
gen=$(pr "$A" 7 keys | sed -n 's/^generation //p')

log "clean restart"
stop_daemon
for f in $(find "$R" -type f); do
	qgrep -a "pr-node-alpha" "$f" && fail "the repository holds an initiator name in clear: $f"
done
start_daemon "$R" "$T/state"
state "after a clean restart"
[ "$(pr "$A" 7 keys | sed -n 's/^generation //p')" = "$gen" ] || fail "PRgeneration changed by a restart"

log "kill -9 and restart"
kill9_daemon
start_daemon "$R" "$T/state"
state "after kill -9"

log "A re-registers without APTPL: nothing is kept past the next restart"
check "register A without APTPL" "registered 0xa11a aptpl 0" "$A" 7 register 0xa11a 0
stop_daemon
start_daemon "$R" "$T/state"
check "after a restart without APTPL: no reservation" "reservation none" "$A" 7 reservation
[ "$(pr "$A" 7 keys | grep -c '^key ')" = 0 ] || fail "keys were kept without APTPL"
check "without a reservation anyone writes" "write GOOD" "$B" 9 write 100
stop_daemon
"$CAIRN" check -r "$R" >/dev/null || fail "cairn check fails after the reservation state was kept"
