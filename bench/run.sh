#!/bin/bash
# bench/run.sh - cairn against tgt (file backing store) on the same machine, the same
# client tools and the same data, in one run; prints cairn/tgt ratios (> 1: cairn is
# faster). The data is a real 1 GiB ext4 image made with mkfs.ext4 -d from /usr/share.
#
#   seq write   qemu-img convert image -> iscsi://   (MB/s)
#   seq read    qemu-img convert iscsi:// -> tmpfs   (MB/s)
#   rand read   iscsi-perf -r, 4 KiB, queue depth 32 (IOPS)
#   write 4K    qemu-img bench -w, 4 KiB, queue depth 32 (IOPS)
#
# Every figure is measured BENCH_ROUNDS times (3), alternating tgt and cairn, and the
# median of each is reported: one run on a shared 2-core machine swings by 2x.
# Usage: make bench   (or bash bench/run.sh after make build). BENCH_SECONDS (10) sets
# the iscsi-perf run time; BENCH_DIR (/tmp/cairn-bench) the scratch directory;
# BENCH_RETAIN (unset) the CDP window, e.g. 0 to measure with CDP off.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CAIRN=${CAIRN_BIN:-$ROOT/build/cairn}
DIR=${BENCH_DIR:-/tmp/cairn-bench}
SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
TGT_PORT=3261 CAIRN_PORT=3262 TGT_CTL=77
rm -rf "$DIR"; mkdir -p "$DIR"
export CAIRN_RUN_DIR=$DIR/run

cleanup() {
	[ -n "${CPID:-}" ] && kill -TERM "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null
	[ -n "${TPID:-}" ] && kill -9 "$TPID" 2>/dev/null && wait "$TPID" 2>/dev/null  # tgtd ignores SIGTERM
	rm -f /dev/shm/cairn-bench.out
	true
}
trap cleanup EXIT

IMG=$ROOT/tests/out/cache/usr-share.img
if [ ! -f "$IMG" ]; then
	mkdir -p "$(dirname "$IMG")" "$DIR/src"
	cp -a /usr/share "$DIR/src/"
	mkfs.ext4 -q -F -N 100000 -E lazy_itable_init=0,lazy_journal_init=0 -d "$DIR/src" "$IMG.tmp" 1G >/dev/null
	mv "$IMG.tmp" "$IMG"; rm -rf "$DIR/src"
fi
SIZE=$(stat -c %s "$IMG")

# tgt: file backing store on the same disk as cairn's repository
truncate -s "$SIZE" "$DIR/tgt.img"
tgtd -f -C $TGT_CTL --iscsi portal=127.0.0.1:$TGT_PORT >"$DIR/tgtd.log" 2>&1 &
TPID=$!
sleep 1
tgtadm -C $TGT_CTL --lld iscsi --op new --mode target --tid 1 -T iqn.2026-11.org.tgt:bench
tgtadm -C $TGT_CTL --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$DIR/tgt.img"
tgtadm -C $TGT_CTL --lld iscsi --op bind --mode target --tid 1 -I ALL
TGT_URL=iscsi://127.0.0.1:$TGT_PORT/iqn.2026-11.org.tgt:bench/1

# cairn: local repository, journal and folding on, LZ4 and dedup on
"$CAIRN" init -r "$DIR/repo" >/dev/null
"$CAIRN" volume create bench --size "$SIZE" -r "$DIR/repo" >/dev/null
# BENCH_RETAIN: the CDP window of the volume (default: cairn's own, 24 h; 0: CDP off, the
# journal dropped once folded, as before retention existed)
[ -z "${BENCH_RETAIN:-}" ] || "$CAIRN" volume set bench --retain "$BENCH_RETAIN" -r "$DIR/repo" >/dev/null
"$CAIRN" serve -r "$DIR/repo" --listen 127.0.0.1:$CAIRN_PORT --state-dir "$DIR/state" >"$DIR/cairn.log" 2>&1 &
CPID=$!
for _ in $(seq 100); do grep -q "cairn: serving" "$DIR/cairn.log" && break; sleep 0.1; done
CAIRN_URL=iscsi://127.0.0.1:$CAIRN_PORT/iqn.2026-11.org.cairn:bench/0

now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$SIZE / ($2 - $1) / 1e6:.1f}')"; }

seq_write() { local t0 t1; t0=$(now); qemu-img convert -n -f raw -O raw "$IMG" "$1"; t1=$(now); mbps "$t0" "$t1"; }
seq_read() { local t0 t1; t0=$(now); qemu-img convert -f raw -O raw "$1" /dev/shm/cairn-bench.out; t1=$(now); rm -f /dev/shm/cairn-bench.out; mbps "$t0" "$t1"; }
rand_read() { iscsi-perf -r -m 32 -b 8 -t "$SECS" "$1" 2>&1 | tr '\r' '\n' | sed -n 's/^ *iops average \([0-9]*\) .*/\1/p' | tail -1; }
write_4k() {
	local n=200000 t0 t1
	t0=$(now); qemu-img bench -f raw -w -d 32 -s 4k -c $n -S 12288 --pattern=0x5a "$1" >/dev/null; t1=$(now)
	python3 -c "print(f'{$n / ($t1 - $t0):.0f}')"
}

declare -A R
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
for fig in seq_write seq_read rand_read write_4k; do
	t=() c=()
	for _ in $(seq "$ROUNDS"); do
		t+=("$($fig "$TGT_URL")")
		c+=("$($fig "$CAIRN_URL")")
	done
	echo "$fig: tgt ${t[*]} | cairn ${c[*]}" >&2
	R[tgt.$fig]=$(median "${t[@]}")
	R[cairn.$fig]=$(median "${c[@]}")
done
qemu-img compare -f raw -F raw "$IMG" "$TGT_URL" >/dev/null 2>&1 || true

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
{
	echo "cairn vs tgt $(tgtd -V 2>/dev/null | head -1 | tr -d '\n'), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, image $((SIZE >> 20)) MiB, median of $ROUNDS rounds"
	echo
	echo "| figure | unit | tgt | cairn | cairn/tgt |"
	echo "|---|---|---|---|---|"
	echo "| sequential write (qemu-img convert in) | MB/s | ${R[tgt.seq_write]} | ${R[cairn.seq_write]} | $(ratio "${R[cairn.seq_write]}" "${R[tgt.seq_write]}") |"
	echo "| sequential read (qemu-img convert out) | MB/s | ${R[tgt.seq_read]} | ${R[cairn.seq_read]} | $(ratio "${R[cairn.seq_read]}" "${R[tgt.seq_read]}") |"
	echo "| 4 KiB random read, QD32 (iscsi-perf -r) | IOPS | ${R[tgt.rand_read]} | ${R[cairn.rand_read]} | $(ratio "${R[cairn.rand_read]}" "${R[tgt.rand_read]}") |"
	echo "| 4 KiB write, QD32 (qemu-img bench -w) | IOPS | ${R[tgt.write_4k]} | ${R[cairn.write_4k]} | $(ratio "${R[cairn.write_4k]}" "${R[tgt.write_4k]}") |"
	echo
	echo "repository after the run: $(du -sh "$DIR/repo" | cut -f1); tgt backing file: $(du -sh "$DIR/tgt.img" | cut -f1)"
} | tee "$DIR/result.md"
