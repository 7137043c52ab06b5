#!/bin/bash
# t_mcs.sh - Multiple Connections per Session (ERL 0) through an independent raw-PDU
# initiator, tests/tools/mcs_client.py (Python standard library only, PDUs built from
# RFC 7143; no initiator on this machine speaks MC/S): one session over 2-4 connections
# writing different data through each (immediate, unsolicited and R2T-solicited WRITE 10)
# and reading it back through the others; CmdSN n+1 on one connection before n on
# another; ABORT TASK / ABORT TASK SET on one connection of another's tasks; logout of
# one connection, of another, of the session; refused logins (too many connections,
# wrong TSIH, another InitiatorName or ISID, denied IQN, denied and read-only addresses,
# CHAP on the added connection); connection reinstatement; a connection reset mid-write.
# libiscsi's tools against the same target keep working and `cairn session list` shows
# each connection. The daemon's own limit is checked too: --max-connections, the config
# file's max_connections (kept by a live edit, a bad value refused), the flag over the file.
source "$(dirname "$0")/lib.sh"
MCS=$ROOT/tests/tools/mcs_client.py
R=$T/repo
"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create -r "$R" v1 --size 64M >/dev/null
"$CAIRN" volume create -r "$R" v2 --size 16M >/dev/null
TGT=$IQN:mcs
cat >"$T/gw.conf" <<CONF
accounts = ( { user = "alice"; secret = "alice-secret-1"; },
             { user = "bob"; secret = "bob-secret-123"; } );
targets = ( { iqn = "$TGT"; luns = ( { lun = 0; volume = "v1"; } );
              acl = ( { initiator = "iqn.2026-01.test:bad*"; access = "deny"; },
                      { ip = "127.0.0.2/32"; access = "deny"; },
                      { ip = "127.0.0.3/32"; access = "read-only"; } ); },
            { iqn = "$IQN:mcs-chap"; luns = ( { lun = 0; volume = "v2"; } );
              chap = [ "alice", "bob" ]; } );
CONF

mcs() { # mcs SCENARIO [args]: run one scenario of the raw-PDU initiator
	local sc=$1; shift
	log "mcs_client $sc"
	timeout 120 python3 "$MCS" --port "$PORT" --target "$TGT" --cairn "$CAIRN" --repo "$R" "$@" "$sc" ||
		{ tail -40 "$T/serve.log"; fail "mcs_client $sc"; }
}
libiscsi_ok() { # the same target through libiscsi, as a plain single-connection initiator
	iscsi-inq -i iqn.2026-01.test:libiscsi "iscsi://127.0.0.1:$PORT/$TGT/0" | qgrep DIRECT_ACCESS ||
		fail "iscsi-inq against $TGT failed ($1)"
	iscsi-ls -i iqn.2026-01.test:libiscsi "iscsi://127.0.0.1:$PORT" | qgrep "$TGT" ||
		fail "iscsi-ls does not list $TGT ($1)"
}

start_daemon "$R" "$T/state" --config "$T/gw.conf"
libiscsi_ok "at start"
mcs io
mcs order
mcs abort
mcs logout
mcs kill
libiscsi_ok "after a connection reset"
qgrep "connection CID 1 left session" "$T/serve.log" || fail "the reset connection's end is not logged"
mcs chap --target "$IQN:mcs-chap" --chap-user alice --chap-secret alice-secret-1 \
	--chap-user2 bob --chap-secret2 bob-secret-123
log "no session left once every scenario logged out or dropped its connections"
"$CAIRN" session list -r "$R" >"$T/sessions.txt" || fail "session list"
"$CAIRN" session list -r "$R" --json | python3 -c 'import json,sys; assert json.load(sys.stdin) == []' ||
	fail "sessions left: $(cat "$T/sessions.txt")"
stop_daemon

log "--max-connections 3: the fourth connection of a session is refused"
expect_fail "max-connections takes a number from 1 to 64" "$CAIRN" serve -r "$R" --max-connections 0
expect_fail "max-connections takes a number from 1 to 64" "$CAIRN" serve -r "$R" --max-connections 65
start_daemon "$R" "$T/state" --config "$T/gw.conf" --max-connections 3
mcs refuse --expect-max 3
libiscsi_ok "after the refused logins"
qgrep "reinstating connection CID 5" "$T/serve.log" || fail "the reinstatement is not logged"
stop_daemon

log "max_connections = 2 in the config file; kept by a live edit; --max-connections wins"
{ cat "$T/gw.conf"; echo "max_connections = 2;"; } >"$T/gw2.conf"
{ cat "$T/gw.conf"; echo "max_connections = 0;"; } >"$T/gw3.conf"
expect_fail "max_connections must be a number from 1 to 64" "$CAIRN" serve -r "$R" --config "$T/gw3.conf"
start_daemon "$R" "$T/state" --config "$T/gw2.conf"
mcs refuse --expect-max 2
"$CAIRN" target add -r "$R" "$IQN:mcs-extra" >/dev/null || fail "live target add"
qgrep "mcs-extra" "$T/gw2.conf" || fail "the live edit was not saved"
qgrep "max_connections = 2" "$T/gw2.conf" || fail "a live edit dropped max_connections from the file"
stop_daemon
start_daemon "$R" "$T/state" --config "$T/gw2.conf" --max-connections 3
mcs refuse --expect-max 3
stop_daemon
echo "t_mcs: ok"
