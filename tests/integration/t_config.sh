#!/bin/bash
# t_config.sh - the declarative config file: offline edits, serve --config, live
# changes through the CLI applied at once and persisted across a restart, sessions
# listing, a daemon killed in the middle of changes leaves a whole file (old or new),
# and bad configs / bad edits give clear errors and change nothing.
source "$(dirname "$0")/lib.sh"

R=$T/repo; CF=$T/gw.conf
"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create -r "$R" v1 --size 32M >/dev/null
"$CAIRN" volume create -r "$R" v2 --size 16M >/dev/null
printf 'aaaa-secret-long\n' >"$T/alice.secret"; chmod 600 "$T/alice.secret"

log "offline edits build the file"
"$CAIRN" target add --config "$CF" $IQN:one
"$CAIRN" lun add --config "$CF" $IQN:one 0 v1
"$CAIRN" lun add --config "$CF" $IQN:one 1 v2
"$CAIRN" target list --config "$CF" | qgrep "$IQN:one .*0=v1,1=v2" || fail "offline target list"
expect_fail "already has LUN 1" "$CAIRN" lun add --config "$CF" $IQN:one 1 v1
expect_fail "not a valid iSCSI name" "$CAIRN" target add --config "$CF" "Bad Name"
expect_fail "pass --config FILE" env -u CAIRN_CONFIG "$CAIRN" target list

log "serve --config exports the file's targets only"
start_daemon "$R" "$T/state" --config "$CF"
iscsi-ls "iscsi://127.0.0.1:$PORT" | qgrep "$IQN:one" || fail "target one missing"
iscsi-ls "iscsi://127.0.0.1:$PORT" | qgrep "$IQN:v1" && fail "default targets exported with a config"
iscsi-readcapacity16 "iscsi://127.0.0.1:$PORT/$IQN:one/1" | qgrep "Total size:16777216" || fail "LUN 1 is not v2"

log "live changes apply at once"
"$CAIRN" target add -r "$R" $IQN:two
"$CAIRN" lun add -r "$R" $IQN:two 0 v2
iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN:two/0" | qgrep DIRECT_ACCESS || fail "live target two"
"$CAIRN" chap add -r "$R" alice --secret-file "$T/alice.secret" --target $IQN:two
out=$(timeout 20 iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN:two/0" 2>&1) && fail "CHAP added live not enforced"
iscsi-inq "iscsi://alice%aaaa-secret-long@127.0.0.1:$PORT/$IQN:two/0" | qgrep DIRECT_ACCESS || fail "live CHAP login"
"$CAIRN" chap list -r "$R" | qgrep alice || fail "chap list"
"$CAIRN" chap list -r "$R" --json | qgrep "aaaa-secret-long" && fail "chap list shows the secret"
qgrep "aaaa-secret-long" "$T/serve.log" && fail "the secret is in the log"
printf 'short\n' >"$T/short.secret"
expect_fail "use 12 to 255 characters; nothing was changed" "$CAIRN" chap add -r "$R" bob --secret-file "$T/short.secret"
expect_fail "last CHAP account of target" "$CAIRN" chap remove -r "$R" alice
"$CAIRN" portal add -r "$R" 127.0.0.3:0
"$CAIRN" portal list -r "$R" | qgrep "127.0.0.3:0" || fail "portal list"
expect_fail "portal 'nonsense' is invalid" "$CAIRN" portal add -r "$R" nonsense
log "sessions list with counters"
qemu-io -f raw -c "write -P 0x11 0 64k" -c "read -P 0x11 0 64k" -c "sleep 3000" "iscsi://127.0.0.1:$PORT/$IQN:one/0" >/dev/null &
QP=$!
for _ in $(seq 1 40); do
	"$CAIRN" session list -r "$R" --json >"$T/sessions.json"
	qgrep '"bytes_written": 65536' "$T/sessions.json" && break
	sleep 0.1
done
wait $QP || fail "qemu-io on target one"
qgrep '"bytes_written": 65536' "$T/sessions.json" || fail "session counters: $(cat "$T/sessions.json")"
qgrep "\"target\": \"$IQN:one\"" "$T/sessions.json" || fail "session target: $(cat "$T/sessions.json")"
qgrep '"address": "127.0.0.1:' "$T/sessions.json" || fail "session address"
"$CAIRN" target list -r "$R" --json | qgrep "$IQN:two" || fail "target list --json"
"$CAIRN" lun remove -r "$R" $IQN:one 1
stop_daemon

log "the changes survive a restart"
qgrep "$IQN:two" "$CF" || fail "target two not saved"
start_daemon "$R" "$T/state" --config "$CF"
iscsi-inq "iscsi://alice%aaaa-secret-long@127.0.0.1:$PORT/$IQN:two/0" | qgrep DIRECT_ACCESS || fail "target two after restart"
out=$(timeout 20 iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN:two/0" 2>&1) && fail "CHAP lost on restart"
out=$(iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN:one/1" 2>&1) && fail "removed LUN 1 came back"
"$CAIRN" target remove -r "$R" $IQN:two
iscsi-ls "iscsi://127.0.0.1:$PORT" | qgrep "$IQN:two" && fail "removed target still listed"

log "kill -9 in the middle of changes: the file is the old or the new one, never torn"
for i in $(seq 1 20); do "$CAIRN" target add -r "$R" $IQN:k$i >/dev/null 2>&1 || true; done &
EP=$!
sleep 0.3
kill9_daemon
wait $EP 2>/dev/null || true
"$CAIRN" target list --config "$CF" >/dev/null || fail "config torn after a crash: $(cat "$CF")"
start_daemon "$R" "$T/state" --config "$CF"
iscsi-ls "iscsi://127.0.0.1:$PORT" | qgrep "$IQN:one" || fail "target one lost after the crash"
stop_daemon

log "bad config files: clear error with file and line"
printf 'targets = ( { iqn = "iqn.2026-11.org.cairn:x"; luns = ( { lun = 0; volume = "v1"; } ) }\n' >"$T/bad1.conf"
expect_fail "bad1.conf:[0-9]+: .*syntax" "$CAIRN" serve -r "$R" --listen 127.0.0.1:0 --state-dir "$T/state" --config "$T/bad1.conf"
printf 'targetz = ();\n' >"$T/bad2.conf"
expect_fail "bad2.conf:1: unknown setting 'targetz'" "$CAIRN" serve -r "$R" --listen 127.0.0.1:0 --state-dir "$T/state" --config "$T/bad2.conf"
printf 'targets = ( { iqn = "iqn.2026-11.org.cairn:x"; chap = [ "nobody" ]; } );\n' >"$T/bad3.conf"
expect_fail "CHAP account 'nobody' is not defined" "$CAIRN" serve -r "$R" --listen 127.0.0.1:0 --state-dir "$T/state" --config "$T/bad3.conf"
printf 'targets = ( { iqn = "iqn.2026-11.org.cairn:x"; acl = ( { ip = "10.0.0.0/99"; access = "deny"; } ); } );\n' >"$T/bad4.conf"
expect_fail "bad4.conf:1: ACL address '10.0.0.0/99' is invalid" "$CAIRN" serve -r "$R" --listen 127.0.0.1:0 --state-dir "$T/state" --config "$T/bad4.conf"
expect_fail "cannot read config file .*missing.conf" "$CAIRN" serve -r "$R" --listen 127.0.0.1:0 --state-dir "$T/state" --config "$T/missing.conf"
echo "t_config: ok"
