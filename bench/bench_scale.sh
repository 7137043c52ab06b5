#!/bin/bash
# bench_scale.sh - snapshot, clone and restore touch only metadata (issue 5): each is
# timed on a 1 TiB thin volume and on a 1 GiB volume holding the same data, in one run
# through the real daemon, and the 1TiB/1GiB ratio of the medians is printed (1.0: the
# volume size does not matter).
#
# Data: the 1 GiB ext4 image of /usr/share that bench/run.sh uses (real files), written
# with qemu-img over iSCSI into the 1 GiB volume once, and into the 1 TiB volume at four
# places (0, 256 GiB, 512 GiB and its last GiB: 4 GiB of data, map entries spread over
# the whole radix tree). The daemon is then restarted, so both volumes start folded and
# checkpointed. Each round, for the two volumes in alternating order: a 1 MiB write
# (so every operation has a little unfolded journal to deal with, as in real use), then
#   snapshot  `cairn snapshot create V --name sN`
#   clone     `cairn volume clone V@sN V-cN`   (a new volume, opened and exported)
#   restore   `cairn restore V V@sN`           (the 1 MiB write since sN is undone)
# All times are whole CLI runs (process start, control socket, reply).
#
#   CAIRN_BUILD=build-x bash bench/bench_scale.sh    (a release build; default build/)
#   SCALE_ROUNDS (7)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${CAIRN_BUILD:-$ROOT/build}
CAIRN=$B/cairn
ROUNDS=${SCALE_ROUNDS:-7}
DIR=$(mktemp -d /tmp/cairn-bench-scale.XXXXXX)
export CAIRN_RUN_DIR=$DIR/run
R=$DIR/repo
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'echo "bench_scale: failed at line $LINENO; the daemon log ends:" >&2; tail -20 "$DIR/serve.log" >&2' ERR
now() { date +%s%N; }
ms() { python3 -c "print('%.1f' % (($2 - $1) / 1e6))"; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }

IMG=$ROOT/tests/out/cache/usr-share.img
if [ ! -f "$IMG" ]; then
	mkdir -p "$(dirname "$IMG")" "$DIR/src"
	cp -a /usr/share "$DIR/src/"
	mkfs.ext4 -q -F -N 100000 -E lazy_itable_init=0,lazy_journal_init=0 -d "$DIR/src" "$IMG.tmp" 1G >/dev/null
	mv "$IMG.tmp" "$IMG"; rm -rf "$DIR/src"
fi
ISZ=$(stat -c %s "$IMG")

start() {
	: >"$DIR/serve.log"
	"$CAIRN" serve -r "$R" --listen 127.0.0.1:0 --state-dir "$DIR/state" >>"$DIR/serve.log" 2>&1 &
	PID=$!
	for _ in $(seq 1 600); do grep -q "cairn: serving" "$DIR/serve.log" && break; sleep 0.1; done
	PORT=$(sed -n 's/.*cairn: serving .* on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$DIR/serve.log")
	[ -n "$PORT" ] || { cat "$DIR/serve.log"; exit 1; }
}
stop() { kill -TERM "$PID"; wait "$PID"; PID=; }
# put VOLUME OFFSET: the image into VOLUME at byte OFFSET (raw driver with an offset)
put() {
	qemu-img convert -n -f raw --target-image-opts "$IMG" \
		"driver=raw,offset=$2,size=$ISZ,file.driver=iscsi,file.transport=tcp,file.portal=127.0.0.1:$PORT,file.target=iqn.2026-11.org.cairn:$1,file.lun=0"
}

"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create big --size 1T -r "$R" >/dev/null
"$CAIRN" volume create small --size 1G -r "$R" >/dev/null
start
echo "cairn: $CAIRN ($(nproc) cores); daemon on port $PORT"
t0=$(now)
put small 0
for off in 0 $((256 << 30)) $((512 << 30)) $(((1 << 40) - (1 << 30))); do put big $off; done
t1=$(now)
echo "data: $((ISZ >> 20)) MiB into small, 4 x $((ISZ >> 20)) MiB into big, in $(ms "$t0" "$t1") ms"
t0=$(now); stop; start; t1=$(now)
echo "restart (fold, checkpoint, open): $(ms "$t0" "$t1") ms"

url() { echo "iscsi://127.0.0.1:$PORT/iqn.2026-11.org.cairn:$1/0"; }
timed() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); ms "$t0" "$t1"; }
for v in big small; do : >"$DIR/$v.snap"; : >"$DIR/$v.clone"; : >"$DIR/$v.restore"; done
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then order="big small"; else order="small big"; fi
	for v in $order; do
		qemu-io -f raw -c "write -P $((r + 16)) $(((r * 7 % 900) << 20)) 1M" "$(url $v)" >/dev/null
		timed "$CAIRN" snapshot create $v --name "s$r" -r "$R" >>"$DIR/$v.snap"
		qemu-io -f raw -c "write -P $((r + 64)) $(((r * 11 % 900) << 20)) 1M" "$(url $v)" >/dev/null
		timed "$CAIRN" volume clone "$v@s$r" "$v-c$r" -r "$R" >>"$DIR/$v.clone"
		timed "$CAIRN" restore $v "$v@s$r" -r "$R" >>"$DIR/$v.restore"
	done
done
echo
echo "| operation (CLI run included), median of $ROUNDS | 1 TiB volume, 4 GiB data (ms) | 1 GiB volume, 1 GiB data (ms) | ratio 1TiB/1GiB |"
echo "|---|---|---|---|"
for op in snap clone restore; do
	b=$(median <"$DIR/big.$op"); s=$(median <"$DIR/small.$op")
	name=$op; [ $op = snap ] && name="snapshot create"
	echo "| $name | $b | $s | $(ratio "$b" "$s") |"
done
echo
for op in snap clone restore; do
	echo "$op ms big: $(tr '\n' ' ' <"$DIR/big.$op")small: $(tr '\n' ' ' <"$DIR/small.$op")"
done
# the clones and restores are real: the last clone and the restored volume hold the
# snapshot's write, and the write made after the snapshot is gone from the restored one
check() {
	local out
	out=$(qemu-io -f raw -c "read -P $2 $3 1M" "$(url "$1")" 2>&1) || true
	grep -q "read 1048576" <<<"$out" && ! grep -q "verification failed" <<<"$out" ||
		{ echo "$1 does not hold pattern $2 at $3: $out" >&2; exit 1; }
}
for v in big small; do
	check "$v-c$ROUNDS" $((ROUNDS + 16)) $(((ROUNDS * 7 % 900) << 20))
	check "$v" $((ROUNDS + 16)) $(((ROUNDS * 7 % 900) << 20))
	out=$(qemu-io -f raw -c "read -P $((ROUNDS + 64)) $(((ROUNDS * 11 % 900) << 20)) 1M" "$(url $v)" 2>&1) || true
	grep -q "verification failed" <<<"$out" || { echo "restore of $v did not undo the later write" >&2; exit 1; }
done
echo "checked: the last clones hold their snapshot's data; the restored volumes lost the write made after it"
