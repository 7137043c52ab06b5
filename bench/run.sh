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
# Every figure is measured BENCH_ROUNDS times (3) per system, the systems taking turns,
# and the median of each is reported: one run on a shared 2-core machine swings by 2x.
# Usage: make bench   (or bash bench/run.sh after make build). BENCH_SECONDS (10) sets
# the iscsi-perf run time; BENCH_DIR (/tmp/cairn-bench) the scratch directory.
#
# Every system runs in the same rounds, one after the other, so that their figures share
# the machine's state: tgt; cairn as configured by default (CDP on: the journal kept
# as history); with BENCH_CDP_OFF=1 (the default) also cairn with CDP off (a volume with
# --retain 0: the journal dropped once folded, as before retention existed); with
# BENCH_BASE_BIN=PATH also another cairn binary (e.g. an older commit's build) with its
# defaults. Ratios are each system's median over tgt's. BENCH_FIGURES (all four: "seq_write
# seq_read rand_read write_4k") picks figures; without seq_write every LUN is first filled
# with the image, untimed, so that the others read and overwrite real data.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CAIRN=${CAIRN_BIN:-$ROOT/build/cairn}
DIR=${BENCH_DIR:-/tmp/cairn-bench}
SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
TGT_PORT=3261 CAIRN_PORT=3262 TGT_CTL=77
CPIDS=()
rm -rf "$DIR"; mkdir -p "$DIR"
export CAIRN_RUN_DIR=$DIR/run

cleanup() {
	for p in "${CPIDS[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
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

# cairn: local repository, journal and folding on, LZ4 and dedup on.
# start_cairn NAME BIN PORT [--retain W]: a repository, a volume and a daemon of its own
start_cairn() {
	local name=$1 bin=$2 port=$3 d=$DIR/$1
	shift 3
	mkdir -p "$d"
	"$bin" init -r "$d/repo" >/dev/null
	"$bin" volume create bench --size "$SIZE" -r "$d/repo" >/dev/null
	[ $# = 0 ] || "$bin" volume set bench "$@" -r "$d/repo" >/dev/null
	CAIRN_RUN_DIR=$d/run "$bin" serve -r "$d/repo" --listen 127.0.0.1:"$port" \
		--state-dir "$d/state" >"$d/cairn.log" 2>&1 &
	CPIDS+=($!)
	for _ in $(seq 100); do grep -q "cairn: serving" "$d/cairn.log" && break; sleep 0.1; done
	grep -q "cairn: serving" "$d/cairn.log" || { cat "$d/cairn.log"; exit 1; }
	SYS+=("$name")
	URL[$name]=iscsi://127.0.0.1:$port/iqn.2026-11.org.cairn:bench/0
}
declare -A URL
SYS=(tgt)
URL[tgt]=$TGT_URL
start_cairn cairn "$CAIRN" $CAIRN_PORT
[ "${BENCH_CDP_OFF:-1}" = 0 ] || start_cairn cairn-cdp-off "$CAIRN" $((CAIRN_PORT + 1)) --retain 0
[ -z "${BENCH_BASE_BIN:-}" ] || start_cairn base "$BENCH_BASE_BIN" $((CAIRN_PORT + 2))

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

FIGS=${BENCH_FIGURES:-seq_write seq_read rand_read write_4k}
case " $FIGS " in
*" seq_write "*) ;;
*) for sys in "${SYS[@]}"; do seq_write "${URL[$sys]}" >/dev/null; done ;;
esac
declare -A R
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
for fig in $FIGS; do
	declare -A V=()
	for _ in $(seq "$ROUNDS"); do
		for sys in "${SYS[@]}"; do V[$sys]+=" $($fig "${URL[$sys]}")"; done
	done
	line="$fig:"
	for sys in "${SYS[@]}"; do
		line+=" $sys${V[$sys]} |"
		# shellcheck disable=SC2086 # the rounds, one word each
		R[$sys.$fig]=$(median ${V[$sys]})
	done
	echo "${line% |}" >&2
done
qemu-img compare -f raw -F raw "$IMG" "$TGT_URL" >/dev/null 2>&1 || true

ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
row() { # row LABEL UNIT FIG: a table row, if FIG was measured
	local r="| $1 | $2 |" sys
	[ -n "${R[tgt.$3]:-}" ] || return 0
	for sys in "${SYS[@]}"; do r+=" ${R[$sys.$3]} |"; done
	for sys in "${SYS[@]:1}"; do r+=" $(ratio "${R[$sys.$3]}" "${R[tgt.$3]}") |"; done
	echo "$r"
}
{
	echo "cairn vs tgt $(tgtd -V 2>/dev/null | head -1 | tr -d '\n'), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, image $((SIZE >> 20)) MiB, median of $ROUNDS rounds"
	echo
	h="| figure | unit |" sep="|---|---|"
	for sys in "${SYS[@]}"; do h+=" $sys |"; sep+="---|"; done
	for sys in "${SYS[@]:1}"; do h+=" $sys/tgt |"; sep+="---|"; done
	echo "$h"; echo "$sep"
	row "sequential write (qemu-img convert in)" MB/s seq_write
	row "sequential read (qemu-img convert out)" MB/s seq_read
	row "4 KiB random read, QD32 (iscsi-perf -r)" IOPS rand_read
	row "4 KiB write, QD32 (qemu-img bench -w)" IOPS write_4k
	echo
	echo -n "repositories after the run:"
	for sys in "${SYS[@]:1}"; do echo -n " $sys $(du -sh "$DIR/$sys/repo" | cut -f1);"; done
	echo " tgt backing file: $(du -sh "$DIR/tgt.img" | cut -f1)"
} | tee "$DIR/result.md"
