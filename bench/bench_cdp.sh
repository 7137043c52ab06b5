#!/bin/bash
# bench_cdp.sh - the cost and speed of cairn's history (issue 5), measured in one run
# through the real daemon with qemu-img as the initiator:
#   1. snapshot-create latency: N `cairn snapshot create` (CLI process included) while
#      a writer runs (median, max);
#   2. write throughput with CDP retention on (the default 24 h window: journal kept,
#      sealed segments stored in the repository) versus off (`volume set --retain 0`),
#      rounds interleaved, medians and the on/off ratio;
#   3. time to open a point with 10^6 journal records: `cairn export VOL@seq:N -` and
#      `VOL@<time>` (resolve, open, read the 64 MiB image) next to `cairn export VOL -`
#      (the current state: no replay) in the same run, and their ratio.
#
#   CAIRN_BUILD=build-x bash bench/bench_cdp.sh     (a release build; default build/)
#   CDP_RECORDS (1000000), CDP_SNAPS (20), CDP_ROUNDS (3), CDP_WRITES (100000)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${CAIRN_BUILD:-$ROOT/build}
CAIRN=$B/cairn
RECORDS=${CDP_RECORDS:-1000000}
SNAPS=${CDP_SNAPS:-20}
ROUNDS=${CDP_ROUNDS:-3}
WRITES=${CDP_WRITES:-100000}
DIR=$(mktemp -d /tmp/cairn-bench-cdp.XXXXXX)
export CAIRN_RUN_DIR=$DIR/run
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

"$CAIRN" init -r "$DIR/repo" >/dev/null
for v in on off million; do "$CAIRN" volume create $v --size 64M -r "$DIR/repo" >/dev/null; done
"$CAIRN" volume set off --retain 0 -r "$DIR/repo" >/dev/null
"$CAIRN" serve -r "$DIR/repo" --listen 127.0.0.1:0 --state-dir "$DIR/state" >"$DIR/serve.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do grep -q "cairn: serving" "$DIR/serve.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*cairn: serving .* on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$DIR/serve.log")
url() { echo "iscsi://127.0.0.1:$PORT/iqn.2026-11.org.cairn:$1/0"; }
echo "cairn: $CAIRN ($(nproc) cores); daemon on port $PORT"

# 1. snapshot latency under a writer
qemu-img bench -f raw -w -d 16 -s 4k -c 100000000 -S 12288 --pattern=0x11 "$(url on)" >/dev/null 2>&1 &
W=$!
sleep 1
: >"$DIR/snap.ms"
for i in $(seq 1 "$SNAPS"); do
	t0=$(now); "$CAIRN" snapshot create on --name "s$i" -r "$DIR/repo" >/dev/null; t1=$(now)
	ms "$t0" "$t1" >>"$DIR/snap.ms"
	sleep 0.2
done
kill "$W" 2>/dev/null; wait "$W" 2>/dev/null || true
snap_med=$(median <"$DIR/snap.ms")
snap_max=$(sort -n "$DIR/snap.ms" | tail -1)

# 2. write throughput, CDP on vs off, rounds interleaved
iops() {
	local t0 t1
	t0=$(now)
	qemu-img bench -f raw -w -d 32 -s 4k -c "$WRITES" -S 12288 --pattern=0x$2 "$(url "$1")" >/dev/null
	t1=$(now)
	echo $(( WRITES * 1000000000 / (t1 - t0) ))
}
mbps() {
	local t0 t1
	t0=$(now)
	qemu-img bench -f raw -w -d 8 -s 1M -c 512 --pattern=0x$2 "$(url "$1")" >/dev/null
	t1=$(now)
	echo $(( 512 * 1048576 * 1000 / (t1 - t0) ))  # bytes per us = MB/s
}
: >"$DIR/on.iops"; : >"$DIR/off.iops"; : >"$DIR/on.mbps"; : >"$DIR/off.mbps"
for r in $(seq 1 "$ROUNDS"); do
	iops on $((20 + r)) >>"$DIR/on.iops"
	iops off $((20 + r)) >>"$DIR/off.iops"
	mbps off $((40 + r)) >>"$DIR/off.mbps"
	mbps on $((40 + r)) >>"$DIR/on.mbps"
done
on_iops=$(median <"$DIR/on.iops"); off_iops=$(median <"$DIR/off.iops")
on_mbps=$(median <"$DIR/on.mbps"); off_mbps=$(median <"$DIR/off.mbps")
stored=$("$CAIRN" cdp list on --json -r "$DIR/repo" | jget 'd["repo_segments"]')

# 3. a history of RECORDS writes (512 B each: one journal record apiece)
t0=$(now)
qemu-img bench -f raw -w -d 32 -s 512 -c "$RECORDS" -S 4096 --pattern=0x77 "$(url million)" >/dev/null
t1=$(now)
"$CAIRN" cdp list million --json -r "$DIR/repo" >"$DIR/million.json"
first=$(jget 'd["first_seq"]' <"$DIR/million.json")
next=$(jget 'd["next_seq"]' <"$DIR/million.json")
t_first=$(jget 'd["first_time"]' <"$DIR/million.json")
t_last=$(jget 'd["last_time"]' <"$DIR/million.json")
echo "history: $((next - first)) records (seq $first..$next) written in $(ms "$t0" "$t1") ms"
open_ms() { local t0 t1; t0=$(now); "$CAIRN" export "$1" - -r "$DIR/repo" >/dev/null; t1=$(now); ms "$t0" "$t1"; }
: >"$DIR/now.ms"; : >"$DIR/seq.ms"; : >"$DIR/time.ms"
for f in 0.1 0.5 0.9 0.3 0.7; do
	q=$(python3 -c "print(int($first + ($next - $first) * $f))")
	when=$(python3 - "$t_first" "$t_last" "$f" <<'PY'
import sys, datetime
a, b = (datetime.datetime.fromisoformat(x.replace("Z", "+00:00")) for x in sys.argv[1:3])
print((a + (b - a) * float(sys.argv[3])).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
PY
)
	open_ms million >>"$DIR/now.ms"
	open_ms "million@seq:$q" >>"$DIR/seq.ms"
	open_ms "million@$when" >>"$DIR/time.ms"
done
now_med=$(median <"$DIR/now.ms"); seq_med=$(median <"$DIR/seq.ms"); time_med=$(median <"$DIR/time.ms")
seq_max=$(sort -n "$DIR/seq.ms" | tail -1); time_max=$(sort -n "$DIR/time.ms" | tail -1)
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }

echo
echo "| figure | unit | value | peer in the same run | ratio |"
echo "|---|---|---|---|---|"
echo "| snapshot create under a 4 KiB writer (CLI included), median / max of $SNAPS | ms | $snap_med / $snap_max | - | - |"
echo "| 4 KiB write QD32, CDP on (24 h) vs off (--retain 0) | IOPS | $on_iops | $off_iops | $(ratio "$on_iops" "$off_iops") |"
echo "| 1 MiB write QD8, CDP on vs off | MB/s | $on_mbps | $off_mbps | $(ratio "$on_mbps" "$off_mbps") |"
echo "| open + export seq point, $((next - first)) records, median / max | ms | $seq_med / $seq_max | now: $now_med | $(ratio "$seq_med" "$now_med") |"
echo "| open + export time point, median / max | ms | $time_med / $time_max | now: $now_med | $(ratio "$time_med" "$now_med") |"
echo
echo "(journal segments of 'on' stored in the repository: $stored; per-run figures in $DIR are removed at exit)"
echo "snapshot ms: $(tr '\n' ' ' <"$DIR/snap.ms")"
echo "iops on: $(tr '\n' ' ' <"$DIR/on.iops") off: $(tr '\n' ' ' <"$DIR/off.iops"); MB/s on: $(tr '\n' ' ' <"$DIR/on.mbps") off: $(tr '\n' ' ' <"$DIR/off.mbps")"
echo "open ms now: $(tr '\n' ' ' <"$DIR/now.ms") seq: $(tr '\n' ' ' <"$DIR/seq.ms") time: $(tr '\n' ' ' <"$DIR/time.ms")"
