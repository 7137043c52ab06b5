#!/bin/bash
# t_config.sh - the declarative config file: offline edits, serve --config, live
# changes through the CLI applied at once and persisted across a restart, sessions
# listing, a daemon killed in the middle of changes leaves a whole file (old or new),
# and bad configs / bad edits give clear errors and change nothing. Retention from the
# file (a default and per-volume entries) is applied at start and on live changes, and
# `cairn volume set` saves into the file, so the file stays the truth across restarts.
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
log "retention in the config: a default, a volume entry, applied at start and shown"
jret() { "$CAIRN" volume list -r "$R" --json | python3 -c "import json,sys; print([v['retention']['$2'] for v in json.load(sys.stdin) if v['name']=='$1'][0])"; }
"$CAIRN" volume create -r "$R" v3 --size 16M >/dev/null
"$CAIRN" volume set -r "$R" v3 --retain 5h >/dev/null  # named nowhere in the file: kept
RC=$T/ret.conf
cat >"$RC" <<CONF
retention = { retain = "12h"; };   # every volume the file names
targets = ( { iqn = "$IQN:r"; luns = ( { lun = 0; volume = "v1"; }, { lun = 1; volume = "v2"; } ); } );
volumes = ( { name = "v2"; retention = { retain = "48h"; hourly = "14d/2h"; daily = 7776000; }; } );
CONF
start_daemon "$R" "$T/state" --config "$RC"
[ "$(jret v1 retain)" = 12h ] || fail "v1 does not have the file's default 12h: $(jret v1 retain)"
[ "$(jret v1 hourly)" = 1w ] || fail "v1's hourly tier is not the built-in 7 days"
[ "$(jret v2 retain)/$(jret v2 hourly)/$(jret v2 hourly_every)/$(jret v2 daily)" = 2d/2w/2h/90d ] ||
	fail "v2 does not have its entry's retention: $(jret v2 retain)/$(jret v2 hourly)/$(jret v2 hourly_every)/$(jret v2 daily)"
[ "$(jret v3 retain)" = 5h ] || fail "v3, which the file does not name, lost its own retention"
"$CAIRN" cdp list v2 -r "$R" --json | python3 -c "import json,sys; r=json.load(sys.stdin)['retention']; assert r['retain_s']==172800 and r['daily_s']==7776000, r" ||
	fail "cdp list does not show v2's retention from the file"

log "a bad value is refused with a clear error; the daemon keeps serving, the file is untouched"
cp "$RC" "$T/ret.before"
expect_fail "duration '3x' of --retain is invalid" "$CAIRN" volume set v1 --retain 3x -r "$R"
expect_fail "duration '7d/0' of --hourly is invalid" "$CAIRN" volume set v1 --hourly 7d/0 -r "$R"
cmp -s "$RC" "$T/ret.before" || fail "a refused change touched the config file"
iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN:r/0" | qgrep DIRECT_ACCESS || fail "the daemon stopped serving after a bad value"
[ "$(jret v1 retain)" = 12h ] || fail "a refused change altered v1"

log "a live 'volume set' is applied and saved in the file; a live LUN mapping gets the default"
"$CAIRN" volume set v1 --retain 6h -r "$R" | qgrep "saved in $RC" || fail "volume set did not save into the config"
[ "$(jret v1 retain)" = 6h ] || fail "volume set not applied live"
python3 - "$RC" <<'PY' || fail "the file does not hold v1's new window: $(cat "$RC")"
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r'name = "v1";\s*retention\s*[:=]\s*\{\s*retain = "6h";\s*\}', t)
assert m, t
PY
"$CAIRN" lun add -r "$R" $IQN:r 2 v3
[ "$(jret v3 retain)" = 12h ] || fail "v3, mapped live, did not get the file's default"
stop_daemon

log "the file wins at the next start, and saved changes survive it"
"$CAIRN" volume set v1 --retain 1h -r "$R" >/dev/null   # no daemon, no --config: the volume only
"$CAIRN" volume set v2 --daily 60d -r "$R" --config "$RC" | qgrep "saved in $RC" || fail "offline volume set --config"
start_daemon "$R" "$T/state" --config "$RC"
[ "$(jret v1 retain)" = 6h ] || fail "after a restart v1 does not have the window saved in the file: $(jret v1 retain)"
[ "$(jret v2 daily)/$(jret v2 retain)" = 60d/2d ] || fail "the offline change of v2 was not kept: $(jret v2 daily)/$(jret v2 retain)"
[ "$(jret v3 retain)" = 12h ] || fail "v3 lost the default after a restart"
qgrep "volume v1: retention from the configuration: every write for 6h" "$T/serve.log" ||
	fail "the daemon did not log that it took v1's retention from the file"
stop_daemon

log "bad retention in the file: serve refuses to start, naming file, line and fix"
sed 's/retain = "12h"/retain = "3x"/' "$T/ret.before" >"$T/bad5.conf"
expect_fail "bad5.conf:1: retention: retain '3x' is invalid: give a number with an optional unit" \
	"$CAIRN" serve -r "$R" --listen 127.0.0.1:0 --state-dir "$T/state" --config "$T/bad5.conf"
sed 's|hourly = "14d/2h"|hourly = "14d/0"|' "$T/ret.before" >"$T/bad6.conf"
expect_fail "bad6.conf:3: retention of volume 'v2': hourly '14d/0' is invalid" \
	"$CAIRN" serve -r "$R" --listen 127.0.0.1:0 --state-dir "$T/state" --config "$T/bad6.conf"
sed 's|retain = "48h"|retian = "48h"|' "$T/ret.before" >"$T/bad7.conf"
expect_fail "bad7.conf:3: retention of volume 'v2': unknown setting 'retian'; expected retain, hourly or daily" \
	"$CAIRN" serve -r "$R" --listen 127.0.0.1:0 --state-dir "$T/state" --config "$T/bad7.conf"
[ "$(jret v1 retain)" = 6h ] || fail "a refused config changed v1"
echo "t_config: ok"
