#!/bin/bash
# bench_xcopy.sh - EXTENDED COPY of 1 GiB (a VAAI clone of a 1 GiB disk: the ext4 image of
# /usr/share) between two LUNs of one target, measured in one run, rounds interleaved:
#   ref   cairn, XCOPY chunk-aligned: chunks shared by reference (COPY journal records);
#   rw    cairn, XCOPY shifted by one block: the same command, every byte read and written
#         inside the target (what copy by reference saves);
#   host  cairn, no XCOPY: the initiator reads and writes (qemu-img convert LUN to LUN);
#   tgt   the peer, tgt 1.0.85 (no EXTENDED COPY: initiators copy through the host), the
#         same qemu-img convert between two file-backed LUNs.
# Prints the medians and the ratios rw/ref, host/ref and tgt/ref (how many times longer
# than the copy by reference).
#
#   CAIRN_BUILD=build-x bash bench/bench_xcopy.sh   (a release build; default build/)
#   BENCH_ROUNDS (3)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${CAIRN_BUILD:-$ROOT/build}
CAIRN=$B/cairn
XC=$B/tests/tools/iscsi_xcopy
ROUNDS=${BENCH_ROUNDS:-3}
DIR=$(mktemp -d /tmp/cairn-bench-xcopy.XXXXXX)
TGT_PORT=3263 TGT_CTL=78
export CAIRN_RUN_DIR=$DIR/run
CPID= TPID=
cleanup() {
	[ -n "$CPID" ] && kill -TERM "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
	[ -n "$TPID" ] && kill -9 "$TPID" 2>/dev/null && wait "$TPID" 2>/dev/null # tgtd ignores SIGTERM
	rm -rf "$DIR"
}
trap cleanup EXIT
now() { date +%s%N; }
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

IMG=$ROOT/tests/out/cache/usr-share.img
if [ ! -f "$IMG" ]; then
	mkdir -p "$(dirname "$IMG")" "$DIR/src"
	cp -a /usr/share "$DIR/src/"
	mkfs.ext4 -q -F -N 100000 -E lazy_itable_init=0,lazy_journal_init=0 -d "$DIR/src" "$IMG.tmp" 1G >/dev/null
	mv "$IMG.tmp" "$IMG"; rm -rf "$DIR/src"
fi
SIZE=$(stat -c %s "$IMG")
BLOCKS=$((SIZE / 512))

# tgt: two file-backed LUNs on the same disk as cairn's repository
cp "$IMG" "$DIR/tgt1.img"
truncate -s "$SIZE" "$DIR/tgt2.img"
tgtd -f -C $TGT_CTL --iscsi portal=127.0.0.1:$TGT_PORT >"$DIR/tgtd.log" 2>&1 &
TPID=$!
sleep 1
tgtadm -C $TGT_CTL --lld iscsi --op new --mode target --tid 1 -T iqn.2026-11.org.tgt:xc
tgtadm -C $TGT_CTL --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$DIR/tgt1.img"
tgtadm -C $TGT_CTL --lld iscsi --op new --mode logicalunit --tid 1 --lun 2 -b "$DIR/tgt2.img"
tgtadm -C $TGT_CTL --lld iscsi --op bind --mode target --tid 1 -I ALL
TGT=iscsi://127.0.0.1:$TGT_PORT/iqn.2026-11.org.tgt:xc

# cairn: volume a holds the image, b (one MiB larger) receives the copies
"$CAIRN" init -r "$DIR/repo" >/dev/null
"$CAIRN" volume create a --size "$SIZE" -r "$DIR/repo" >/dev/null
"$CAIRN" volume create b --size $((SIZE + 1048576)) -r "$DIR/repo" >/dev/null
"$CAIRN" target add --config "$DIR/c.conf" iqn.2026-11.org.cairn:xc >/dev/null
"$CAIRN" lun add --config "$DIR/c.conf" iqn.2026-11.org.cairn:xc 0 a >/dev/null
"$CAIRN" lun add --config "$DIR/c.conf" iqn.2026-11.org.cairn:xc 1 b >/dev/null
"$CAIRN" serve -r "$DIR/repo" --listen 127.0.0.1:0 --state-dir "$DIR/state" --config "$DIR/c.conf" \
	>"$DIR/serve.log" 2>&1 &
CPID=$!
for _ in $(seq 1 100); do grep -q "cairn: serving" "$DIR/serve.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*cairn: serving .* on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$DIR/serve.log")
C=iscsi://127.0.0.1:$PORT/iqn.2026-11.org.cairn:xc
qemu-img convert -n -f raw -O raw "$IMG" "$C/0"
echo "cairn: $CAIRN ($(nproc) cores); copying $((SIZE >> 20)) MiB, $ROUNDS rounds"

: >"$DIR/ref"; : >"$DIR/rw"; : >"$DIR/host"; : >"$DIR/tgt"
for r in $(seq 1 "$ROUNDS"); do
	t0=$(now); "$XC" "$C/0" copy 0 0 "$BLOCKS" 1 --sync >/dev/null; t1=$(now)
	echo $(( (t1 - t0) / 1000000 )) >>"$DIR/ref"
	t0=$(now); "$XC" "$C/0" copy 0 1 "$BLOCKS" 1 --sync >/dev/null; t1=$(now)
	echo $(( (t1 - t0) / 1000000 )) >>"$DIR/rw"
	t0=$(now); qemu-img convert -n -f raw -O raw "$C/0" "$C/1"; t1=$(now)
	echo $(( (t1 - t0) / 1000000 )) >>"$DIR/host"
	t0=$(now); qemu-img convert -n -f raw -O raw "$TGT/1" "$TGT/2"; t1=$(now)
	echo $(( (t1 - t0) / 1000000 )) >>"$DIR/tgt"
	echo "round $r: ref $(tail -1 "$DIR/ref") ms, rw $(tail -1 "$DIR/rw") ms, host $(tail -1 "$DIR/host") ms, tgt $(tail -1 "$DIR/tgt") ms"
done
"$XC" "$C/0" copy 0 0 "$BLOCKS" 1 --sync >/dev/null
"$XC" "$C/0" cmp 0 0 "$BLOCKS" 1 >/dev/null || { echo "the copy differs from its source"; exit 1; }
ref=$(median <"$DIR/ref"); rw=$(median <"$DIR/rw"); host=$(median <"$DIR/host"); tgt=$(median <"$DIR/tgt")
echo "median: XCOPY by reference $ref ms; XCOPY read+write $rw ms; host copy $host ms; tgt host copy $tgt ms"
python3 -c "r=max($ref,1); print(f'rw/ref {$rw/r:.1f}x, host/ref {$host/r:.1f}x, tgt/ref {$tgt/r:.1f}x')"
