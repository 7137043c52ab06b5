#!/bin/bash
# The CLI contract: init, volume create/list/delete, serve, and a clear one-line error
# with a non-zero status for each kind of bad input. Also: commands reach a running
# daemon through its control socket, and a volume created there is exported at once.
source "$(dirname "$0")/lib.sh"
R=$T/repo

log "usage errors"
expect_fail "usage: cairn" "$CAIRN"
expect_fail "unknown command 'frobnicate'" "$CAIRN" frobnicate
expect_fail "no repository given" env -u CAIRN_REPO "$CAIRN" volume list
expect_fail "no cairn repository at $T/nope" "$CAIRN" volume list -r "$T/nope"
"$CAIRN" --help | qgrep "volume create" || fail "--help lacks volume create"
"$CAIRN" volume --help | qgrep -- "--size" || fail "volume --help lacks --size"
"$CAIRN" serve --help | qgrep -- "--listen" || fail "serve --help lacks --listen"
"$CAIRN" init --help | qgrep -- "--chunk-size" || fail "init --help lacks --chunk-size"

log "init"
"$CAIRN" init -r "$R"
expect_fail "already exists at $R" "$CAIRN" init -r "$R"
mkdir -p "$T/foreign" && echo "not json" >"$T/foreign/config"
expect_fail "not a cairn repository" "$CAIRN" volume list -r "$T/foreign"
expect_fail "chunk size '3K' is invalid" "$CAIRN" init -r "$T/r2" --chunk-size 3K
[ ! -e "$T/r2/config" ] || fail "a failed init left a repository behind"

log "volumes, direct"
export CAIRN_REPO=$R
"$CAIRN" volume create alpha --size 1G
"$CAIRN" volume create beta --size 64M --chunk-size 4K
expect_fail "volume named 'alpha' already exists" "$CAIRN" volume create alpha --size 1G
expect_fail "size 'ten' is not a size" "$CAIRN" volume create gamma --size ten
expect_fail "size '1000' is not a size" "$CAIRN" volume create gamma --size 1000
expect_fail "volume name 'bad name!' is invalid" "$CAIRN" volume create 'bad name!' --size 1G
expect_fail "needs --size" "$CAIRN" volume create gamma
expect_fail "no volume named 'ghost'" "$CAIRN" volume delete ghost
"$CAIRN" volume list | qgrep "^alpha .*1.0 GiB" || fail "volume list lacks alpha"
"$CAIRN" volume list --json | python3 -c '
import json, sys
v = {x["name"]: x for x in json.load(sys.stdin)}
assert set(v) == {"alpha", "beta"}, v
assert v["alpha"]["size"] == 1 << 30 and v["alpha"]["chunk_size"] == 65536, v
assert v["beta"]["size"] == 64 << 20 and v["beta"]["chunk_size"] == 4096, v
assert len(v["alpha"]["id"]) == 32 and v["alpha"]["created"].endswith("Z"), v
' || fail "volume list --json is wrong"
"$CAIRN" volume delete beta
"$CAIRN" volume list --json | python3 -c 'import json,sys; assert [x["name"] for x in json.load(sys.stdin)] == ["alpha"]' \
	|| fail "beta still listed after delete"

log "serve, and commands through the daemon"
start_daemon "$R" "$T/state"
iscsi-ls -s "iscsi://127.0.0.1:$PORT/" | qgrep "$IQN:alpha" || fail "alpha not discovered"
expect_fail "in use by another cairn process" "$CAIRN" serve -r "$R" --listen 127.0.0.1:0 --state-dir "$T/state2"
"$CAIRN" init -r "$T/other"
expect_fail "cannot listen on 127.0.0.1:$PORT: the port is already in use" \
	"$CAIRN" serve -r "$T/other" --listen 127.0.0.1:$PORT --state-dir "$T/state3"
expect_fail "listen address 'nonsense' is invalid" \
	"$CAIRN" serve -r "$T/other" --listen nonsense --state-dir "$T/state3"
"$CAIRN" volume create live --size 256M | qgrep "exported" || fail "create via the daemon did not say it exported"
iscsi-ls -s "iscsi://127.0.0.1:$PORT/" | qgrep "$IQN:live" || fail "a volume created live is not exported"
iscsi-inq "$(url live)" >/dev/null || fail "cannot inquire the live volume"
"$CAIRN" volume list | qgrep "^live " || fail "volume list through the daemon lacks live"
expect_fail "volume named 'live' already exists" "$CAIRN" volume create live --size 1G
"$CAIRN" volume delete live
iscsi-ls -s "iscsi://127.0.0.1:$PORT/" | qgrep "$IQN:live" && fail "deleted volume still exported"
stop_daemon
qgrep "stopped cleanly" "$T/serve.log" || fail "no clean stop message"
"$CAIRN" volume list | qgrep "^alpha " || fail "alpha gone after stop"
echo "all CLI checks passed"
