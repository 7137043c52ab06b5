#!/bin/bash
# The gateway through an S3 outage: `cairn serve` on an S3 repository reached through
# tests/s3/fault_proxy.py in front of the real s3rver. While the proxy resets every
# request, initiators keep writing (acknowledged from the journal) and reading (journal,
# overlay and the local cache), and other clients keep being served; when S3 returns, the
# daemon catches up by itself. At the end every byte is in the bucket: a fresh state
# directory (nothing local) serves the exact image, and `cairn check` passes. The same
# with a kill -9 in the middle of the outage. Then two partial outages: index segments
# refused while packs are taken (the daemon stores the missing segments by itself once
# S3 takes them again), and 30% of all requests failing (503 SlowDown, 500, drops,
# resets, cut answers, stalls) while several packs upload at once; each ends with the
# bucket alone serving the exact image and `cairn check` passing.
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
	set +e # (under set -e the failing status below would end the trap before cleanup)
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
# proxy_stat NAME: one figure of the proxy's stats (0 when absent)
proxy_stat() { python3 -c 'import json,sys,urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1])).get(sys.argv[2], 0))' \
	"http://127.0.0.1:$PXPORT/__fault_proxy_stats" "$1"; }

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

# packs in the bucket / those without their index segment (s3rver keeps object K of
# bucket B as the file <data>/B/K._S3rver_object)
BK=$T/s3data/cairn-outage/repo
pack_count() { find "$BK/packs" -name '*._S3rver_object' | wc -l; }
seg_missing() {
	local p id n=0
	for p in "$BK"/packs/*/*._S3rver_object; do
		id=$(basename "$p" ._S3rver_object)
		[ -e "$BK/index/$id._S3rver_object" ] || n=$((n + 1))
	done
	echo $n
}
[ "$(seg_missing)" = 0 ] || fail "packs without index segments before the segment outage"
cp "$T/e3.img" "$T/e4.img"
head -c 32M /dev/urandom | dd of="$T/e4.img" bs=1M seek=120 conv=notrunc status=none
cp "$T/e4.img" "$T/e5.img"
head -c 64M /dev/urandom | dd of="$T/e5.img" bs=1M seek=16 conv=notrunc status=none

log "index segments refused, packs taken: writes served, segments caught up by the running daemon"
start_daemon "$R" "$T/state"
packs0=$(pack_count)
proxy "rate=1&modes=503&match=/index/"
qemu-img convert -n -f raw -O raw "$T/e4.img" "$(url disk)" || fail "writes failed while segments were refused"
qemu-img compare -f raw -F raw "$T/e4.img" "$(url disk)" >/dev/null || fail "reads differ while segments were refused"
# (a segment counts as failed once the backend has given up retrying it: seconds later)
for _ in $(seq 60); do
	[ "$(seg_missing)" -gt 0 ] && qgrep "index segment .* failed" "$T/serve.log" && break
	sleep 2
done
[ "$(pack_count)" -gt "$packs0" ] || fail "no pack was stored while segments were refused (the test proves nothing)"
[ "$(seg_missing)" -gt 0 ] || fail "every pack has its segment although S3 refused them (the test proves nothing)"
qgrep "index segment .* failed" "$T/serve.log" || fail "the refused segments were not logged"
proxy "rate=0"
caught_up=
for _ in $(seq 60); do [ "$(seg_missing)" = 0 ] && { caught_up=1; break; }; sleep 2; done
[ -n "$caught_up" ] || fail "the daemon did not store the refused index segments within 2 minutes of S3 taking them"
for _ in $(seq 24); do bucket_has "$T/e4.img" && break; sleep 5; done
bucket_has "$T/e4.img" || fail "the bucket lacks writes made while segments were refused"
stop_daemon
[ "$(seg_missing)" = 0 ] || fail "a pack lacks its index segment after a clean stop"

log "30% of requests fail (503, 500, drops, resets, cut answers, stalls), several packs upload at once"
# (each request also waits 0.5 s, so packs sealed close together are uploaded together)
proxy "rate=0.3&modes=503,500,drop,reset,drop-after,truncate,stall&reset=1&delay=0.5&track=/packs/"
start_daemon "$R" "$T/state"
qemu-img convert -n -f raw -O raw "$T/e5.img" "$(url disk)" || fail "writes failed under random faults"
qemu-img compare -f raw -F raw "$T/e5.img" "$(url disk)" >/dev/null || fail "reads differ under random faults"
stop_daemon
inflight=$(proxy_stat max_inflight_PUT_track)
log "fault proxy: $(proxy_requests) requests, at most $inflight pack uploads at once"
[ "$inflight" -ge 2 ] || fail "never more than one pack upload in flight (the test proves nothing about parallel uploads)"
# (tests/unit/s3/test_s3_repo.c makes enough requests to see every kind of fault; here
# a few dozen requests are enough for both families)
http5xx=$(( $(proxy_stat 503) + $(proxy_stat 500) ))
conn=0
for m in drop reset drop-after truncate stall; do conn=$((conn + $(proxy_stat "$m"))); done
log "faults injected: $http5xx 503/500 answers, $conn dropped, reset, cut or stalled connections"
[ "$http5xx" -gt 0 ] && [ "$conn" -gt 0 ] || fail "too few faults were injected (the test proves nothing)"
proxy "rate=0&delay=0"
start_daemon "$R" "$T/fresh3"
qemu-img compare -f raw -F raw "$T/e5.img" "$(url disk)" >/dev/null || fail "the bucket lacks writes made under random faults"
stop_daemon
[ "$(seg_missing)" = 0 ] || fail "a pack lacks its index segment after the random faults"
"$CAIRN" check -r "$R" >"$T/check.log" 2>&1 || { cat "$T/check.log"; fail "check after the partial outages"; }
echo "ok"
