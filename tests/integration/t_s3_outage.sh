#!/bin/bash
# The gateway through an S3 outage: `cairn serve` on an S3 repository reached through
# tests/s3/fault_proxy.py in front of the real s3rver. While the proxy resets every
# request, initiators keep writing (acknowledged from the journal) and reading (journal,
# overlay and the local cache), and other clients keep being served; when S3 returns, the
# daemon catches up by itself. At the end every byte is in the bucket: a fresh state
# directory (nothing local) serves the exact image, and `cairn check` passes. The same
# with a kill -9 in the middle of the outage.
source "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node is not installed (s3rver needs it)"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_SHARED_CREDENTIALS_FILE=$T/no-credentials

"$ROOT/tests/s3/start-s3rver.sh" "$T/s3data" >"$T/s3.port" 2>"$T/s3.log" &
S3PID=$!
for _ in $(seq 600); do [ -s "$T/s3.port" ] && break; sleep 0.1; done
S3PORT=$(head -1 "$T/s3.port")
[ -n "$S3PORT" ] || { cat "$T/s3.log"; fail "s3rver did not start"; }
python3 "$ROOT/tests/s3/fault_proxy.py" --upstream "127.0.0.1:$S3PORT" --rate 0 \
	>"$T/proxy.port" 2>"$T/proxy.log" &
PXPID=$!
outage_cleanup() {
	local rc=$?
	kill "$PXPID" "$S3PID" 2>/dev/null || true
	wait "$PXPID" "$S3PID" 2>/dev/null || true
	(exit $rc)
	cleanup
}
trap outage_cleanup EXIT
for _ in $(seq 100); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
PXPORT=$(head -1 "$T/proxy.port")
[ -n "$PXPORT" ] || { cat "$T/proxy.log"; fail "fault proxy did not start"; }
export CAIRN_S3_ENDPOINT=http://127.0.0.1:$PXPORT
# proxy QUERY: change the proxy's fault settings (rate=1&modes=reset is an outage)
proxy() { python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1]).read()' \
	"http://127.0.0.1:$PXPORT/__fault_proxy_set?$1"; }
proxy_requests() { python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1]))["requests"])' \
	"http://127.0.0.1:$PXPORT/__fault_proxy_stats"; }

R=s3://cairn-outage/repo
SIZE=256M
"$CAIRN" init -r "$R" >/dev/null || fail "init"
"$CAIRN" volume create disk --size $SIZE -r "$R" >/dev/null || fail "volume create"

# image N: the expected content after phase N (random data does not dedup or compress,
# so every phase's new chunks need new packs in S3)
truncate -s $SIZE "$T/e1.img"
head -c 96M /dev/urandom | dd of="$T/e1.img" conv=notrunc status=none
cp "$T/e1.img" "$T/e2.img"
head -c 64M /dev/urandom | dd of="$T/e2.img" bs=1M seek=96 conv=notrunc status=none
cp "$T/e2.img" "$T/e3.img"
head -c 48M /dev/urandom | dd of="$T/e3.img" bs=1M seek=200 conv=notrunc status=none
head -c 1M /dev/urandom | dd of="$T/e3.img" bs=1M seek=10 conv=notrunc status=none

log "S3 up: write and compare"
start_daemon "$R" "$T/state"
qemu-img convert -n -f raw -O raw "$T/e1.img" "$(url disk)"
qemu-img compare -f raw -F raw "$T/e1.img" "$(url disk)" >/dev/null || fail "image differs before the outage"

log "S3 down (every request reset): writes are acknowledged, reads served, daemon answers"
proxy "rate=1&modes=reset"
before=$(proxy_requests)
qemu-img convert -n -f raw -O raw "$T/e2.img" "$(url disk)" || fail "writes failed during the outage"
qemu-img compare -f raw -F raw "$T/e2.img" "$(url disk)" >/dev/null || fail "reads differ during the outage"
"$CAIRN" session list -r "$R" >"$T/sessions" || fail "the daemon did not answer session list during the outage"
iscsi-inq "$(url disk)" | qgrep DIRECT_ACCESS || fail "a new initiator was not served during the outage"
sleep 3
[ "$(proxy_requests)" -gt "$before" ] || fail "the daemon did not try S3 during the outage (the test proves nothing)"
qgrep -i "s3\|store\|fold" "$T/serve.log" || fail "the outage was not logged"

log "S3 back: the daemon catches up by itself, a clean stop leaves everything in the bucket"
proxy "rate=0"
# bucket_has IMG: the bucket alone (a direct read-only open that cannot see the daemon or
# its journal) holds exactly IMG
bucket_has() {
	rm -f "$T/bucket.img"
	CAIRN_RUN_DIR=$T/no-daemon CAIRN_STATE_DIR=$T/no-state "$CAIRN" export disk "$T/bucket.img" \
		-r "$R" >/dev/null 2>&1 && cmp -s "$1" "$T/bucket.img"
}
caught_up=
for _ in $(seq 24); do bucket_has "$T/e2.img" && { caught_up=1; break; }; sleep 5; done
[ -n "$caught_up" ] || fail "the daemon did not catch up within 2 minutes of S3's return"
stop_daemon
start_daemon "$R" "$T/fresh1"
qemu-img compare -f raw -F raw "$T/e2.img" "$(url disk)" >/dev/null || fail "the bucket lacks writes made during the outage"
stop_daemon

log "kill -9 during an outage, restart once S3 is back: nothing lost"
start_daemon "$R" "$T/state"
proxy "rate=1&modes=503,reset,drop"
qemu-img convert -n -f raw -O raw "$T/e3.img" "$(url disk)" || fail "writes failed during the second outage"
kill9_daemon
proxy "rate=0"
start_daemon "$R" "$T/state"
qemu-img compare -f raw -F raw "$T/e3.img" "$(url disk)" >/dev/null || fail "image differs after kill -9 in an outage"
stop_daemon
start_daemon "$R" "$T/fresh2"
qemu-img compare -f raw -F raw "$T/e3.img" "$(url disk)" >/dev/null || fail "the bucket lacks the writes replayed after the crash"
stop_daemon
"$CAIRN" check -r "$R" >"$T/check.log" 2>&1 || { cat "$T/check.log"; fail "check after the outages"; }
echo "ok"
