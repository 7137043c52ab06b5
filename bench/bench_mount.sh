#!/bin/bash
# bench/bench_mount.sh - the FUSE history view against its peers, in one run, on the same
# machine and the same data: a sequential read of one 1 GiB ext4 image (mkfs.ext4 -d from
# /usr/share, the image of bench/run.sh) through `cairn mount` (snapshots/<name>/disk.img),
# `restic mount` (snapshots/latest/...) and `borg mount` (the archive's file), each from
# its own encrypted repository (restic always encrypts; borg repokey with lz4; cairn
# --encrypt), plus cairn on a plain repository. Prints MB/s and cairn/peer ratios.
#
# Every read starts cold: a fresh mount process (no cache of the tool's own) and the
# kernel's page cache dropped (echo 3 > /proc/sys/vm/drop_caches) just before it; the
# reader is `dd bs=1M` to /dev/null. Each figure is the median of BENCH_ROUNDS (3)
# rounds, the tools alternating within a round. Afterwards every mount's file is compared
# with the image once (cmp), so a fast wrong answer cannot pass.
#
# Second figure: mount, then list, a repository holding BENCH_SNAPSHOTS (300) snapshots of
# a small volume (cairn snapshot create / restic backup / borg create of a small file),
# timed from starting the mount command to the listing showing all of them.
#
# Usage (root, for drop_caches and to install peers): bash bench/bench_mount.sh
#   CAIRN_BUILD  build directory holding cairn (default build/; use a release build)
#   BENCH_DIR    scratch directory (default /tmp/cairn-bench-mount)
# restic and borgbackup are Debian packages: installed here with apt-get when missing
# (only as root), never by the test suite.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${CAIRN_BUILD:-$ROOT/build}
CAIRN=$BUILD/cairn
DIR=${BENCH_DIR:-/tmp/cairn-bench-mount}
ROUNDS=${BENCH_ROUNDS:-3}
NSNAP=${BENCH_SNAPSHOTS:-300}
[ -x "$CAIRN" ] || { echo "no cairn binary at $CAIRN (set CAIRN_BUILD)" >&2; exit 1; }

if ! command -v restic >/dev/null || ! command -v borg >/dev/null; then
	[ "$(id -u)" = 0 ] || { echo "restic and borgbackup are needed: apt-get install restic borgbackup" >&2; exit 1; }
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic borgbackup >/dev/null
fi

for m in "$DIR"/mnt-*; do [ -d "$m" ] && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }; done
rm -rf "$DIR"; mkdir -p "$DIR"
export CAIRN_RUN_DIR=$DIR/run
printf 'bench password\n' >"$DIR/pw"
export RESTIC_PASSWORD_FILE=$DIR/pw BORG_PASSPHRASE="bench password"
export BORG_BASE_DIR=$DIR/borg-home RESTIC_CACHE_DIR=$DIR/restic-cache
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
MPID= MNT=
cleanup() {
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
	for m in "$DIR"/mnt-*; do [ -d "$m" ] && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }; done
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
IMGDIR=$(dirname "$IMG")
now() { date +%s.%N; }

drop_caches() {
	sync
	if ! echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
		[ -z "${WARNED:-}" ] && echo "warning: cannot drop the page cache (not root?): reads after the first may be warm" >&2
		WARNED=1
	fi
}

# ---- repositories ----
echo "ingesting the image into each repository..." >&2
cairn_repo() { # NAME [init args]
	local r=$DIR/cairn-$1; shift
	CAIRN_STATE_DIR=$DIR/state-${r##*/} "$CAIRN" init -r "$r" "$@" >/dev/null
	CAIRN_STATE_DIR=$DIR/state-${r##*/} "$CAIRN" volume create img --size "$SIZE" -r "$r" >/dev/null
	CAIRN_STATE_DIR=$DIR/state-${r##*/} "$CAIRN" import img "$IMG" -r "$r" >/dev/null
	CAIRN_STATE_DIR=$DIR/state-${r##*/} "$CAIRN" snapshot create img --name bench -r "$r" >/dev/null
}
cairn_repo plain
CAIRN_PASSWORD_FILE=$DIR/pw cairn_repo enc --encrypt
restic init -q -r "$DIR/restic" >/dev/null
(cd "$IMGDIR" && restic backup -q -r "$DIR/restic" "$(basename "$IMG")" >/dev/null)
borg init -e repokey "$DIR/borg" >/dev/null 2>&1
(cd "$IMGDIR" && borg create --compression lz4 "$DIR/borg::bench" "$(basename "$IMG")")

# ---- mounts: each starts one in the background; sets MPID, MNT and F (the file) ----
wait_for() { # FILE
	for _ in $(seq 1200); do [ -e "$1" ] && return 0; sleep 0.05; done
	echo "the mount did not show $1" >&2; exit 1
}
mount_cairn() { # plain|enc
	MNT=$DIR/mnt-cairn-$1
	mkdir -p "$MNT"
	if [ "$1" = enc ]; then
		CAIRN_PASSWORD_FILE=$DIR/pw "$CAIRN" mount -r "$DIR/cairn-enc" --state-dir "$DIR/state-cairn-enc" "$MNT" >>"$DIR/mount-cairn.log" 2>&1 &
	else
		"$CAIRN" mount -r "$DIR/cairn-plain" --state-dir "$DIR/state-cairn-plain" "$MNT" >>"$DIR/mount-cairn.log" 2>&1 &
	fi
	MPID=$!
	F=$MNT/img/snapshots/bench/disk.img
	wait_for "$F"
}
mount_restic() {
	MNT=$DIR/mnt-restic
	mkdir -p "$MNT"
	restic mount -q -r "$DIR/restic" "$MNT" >>"$DIR/mount-restic.log" 2>&1 &
	MPID=$!
	F=$MNT/snapshots/latest/$(basename "$IMG")
	wait_for "$F"
}
mount_borg() {
	MNT=$DIR/mnt-borg
	mkdir -p "$MNT"
	borg mount -f "$DIR/borg::bench" "$MNT" >>"$DIR/mount-borg.log" 2>&1 &
	MPID=$!
	F=$MNT/$(basename "$IMG")
	wait_for "$F"
}
umount_it() {
	fusermount3 -u "$MNT" 2>/dev/null || fusermount -u "$MNT" 2>/dev/null || umount -l "$MNT"
	wait "$MPID" 2>/dev/null || true
	MPID=
}
mount_tool() { "mount_${1%%:*}" "${1#*:}"; } # cairn:enc, cairn:plain, restic:x, borg:x

read_one() { # TOOL: a cold sequential read; sets MBS
	local t0 t1
	mount_tool "$1"
	drop_caches
	t0=$(now)
	dd if="$F" of=/dev/null bs=1M status=none
	t1=$(now)
	umount_it
	MBS=$(python3 -c "print(f'{$SIZE / ($t1 - $t0) / 1e6:.1f}')")
}
tools=(cairn:enc cairn:plain restic:x borg:x)
declare -A RES
for round in $(seq "$ROUNDS"); do
	for t in "${tools[@]}"; do
		read_one "$t"
		RES[$t]="${RES[$t]:-} $MBS"
	done
	echo "round $round:$(for t in "${tools[@]}"; do printf ' %s %s' "${t%:x}" "${RES[$t]##* }"; done)" >&2
done

echo "checking that every mount returns the image..." >&2
for t in "${tools[@]}"; do
	mount_tool "$t"
	cmp "$IMG" "$F" || { echo "${t%:x}: the mounted file differs from the image" >&2; exit 1; }
	umount_it
done

# ---- many snapshots: mount and list ----
echo "making $NSNAP snapshots in each repository..." >&2
SMALL=$DIR/small.img
head -c 4M /dev/urandom >"$SMALL"
export CAIRN_PASSWORD_FILE=$DIR/pw
CAIRN_STATE_DIR=$DIR/state-many "$CAIRN" init -r "$DIR/cairn-many" --encrypt >/dev/null
CAIRN_STATE_DIR=$DIR/state-many "$CAIRN" volume create small --size 4M -r "$DIR/cairn-many" >/dev/null
restic init -q -r "$DIR/restic-many" >/dev/null
borg init -e repokey "$DIR/borg-many" >/dev/null 2>&1
for i in $(seq "$NSNAP"); do
	printf '%08d' "$i" | dd of="$SMALL" conv=notrunc status=none
	CAIRN_STATE_DIR=$DIR/state-many "$CAIRN" import small "$SMALL" -r "$DIR/cairn-many" >/dev/null
	CAIRN_STATE_DIR=$DIR/state-many "$CAIRN" snapshot create small --name "s$i" -r "$DIR/cairn-many" >/dev/null
	restic backup -q -r "$DIR/restic-many" "$SMALL" >/dev/null
	borg create "$DIR/borg-many::s$i" "$SMALL" 2>/dev/null
done
list_time() { # TOOL: seconds from starting the mount to a listing of every snapshot
	local m=$DIR/mnt-many t0 t1 n=0
	mkdir -p "$m"
	drop_caches
	t0=$(now)
	case $1 in
	cairn) "$CAIRN" mount -r "$DIR/cairn-many" --state-dir "$DIR/state-many" "$m" >>"$DIR/mount-cairn.log" 2>&1 & ;;
	restic) restic mount -q -r "$DIR/restic-many" "$m" >>"$DIR/mount-restic.log" 2>&1 & ;;
	borg) borg mount -f "$DIR/borg-many" "$m" >>"$DIR/mount-borg.log" 2>&1 & ;;
	esac
	MPID=$! MNT=$m
	for _ in $(seq 6000); do
		case $1 in
		cairn) n=$( (ls "$m/small/snapshots" 2>/dev/null || true) | wc -l) ;;
		restic) n=$( (ls "$m/snapshots" 2>/dev/null || true) | grep -vc latest || true) ;;
		borg) n=$( (ls "$m" 2>/dev/null || true) | wc -l) ;;
		esac
		[ "$n" -ge "$NSNAP" ] && break
		sleep 0.01
	done
	t1=$(now)
	[ "$n" -ge "$NSNAP" ] || { echo "$1 listed $n of $NSNAP snapshots" >&2; exit 1; }
	umount_it
	SECS=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
}
declare -A LS
for t in cairn restic borg; do list_time "$t"; LS[$t]=$SECS; done

median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
declare -A RESRAW
for t in "${tools[@]}"; do RESRAW[$t]=${RES[$t]# }; RES[$t]=$(median ${RES[$t]}); done
best=$(python3 -c "print(max(${RES[restic:x]}, ${RES[borg:x]}))")
lbest=$(python3 -c "print(min(${LS[restic]}, ${LS[borg]}))")
{
	echo "cairn mount vs $(restic version | cut -d' ' -f1-2) mount and $(borg --version) mount, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, image $((SIZE >> 20)) MiB, median of $ROUNDS cold reads"
	echo
	echo "| figure | unit | restic | borg | cairn (encrypted) | cairn (plain) | cairn enc / faster peer |"
	echo "|---|---|---|---|---|---|---|"
	echo "| sequential read of the image (dd bs=1M, cold) | MB/s | ${RES[restic:x]} | ${RES[borg:x]} | ${RES[cairn:enc]} | ${RES[cairn:plain]} | **$(ratio "${RES[cairn:enc]}" "$best")** |"
	echo "| mount + list $NSNAP snapshots (encrypted) | s | ${LS[restic]} | ${LS[borg]} | ${LS[cairn]} | | **$(ratio "$lbest" "${LS[cairn]}")** (peer time / cairn time) |"
	echo
	echo "per-round MB/s: $(for t in "${tools[@]}"; do printf '%s [%s] ' "${t%:x}" "${RESRAW[$t]}"; done)"
	echo "repositories: cairn enc $(du -sh "$DIR/cairn-enc" | cut -f1) (packs $(du -sh "$DIR/cairn-enc/packs" | cut -f1); the rest is the retained CDP journal), cairn plain $(du -sh "$DIR/cairn-plain" | cut -f1), restic $(du -sh "$DIR/restic" | cut -f1), borg $(du -sh "$DIR/borg" | cut -f1)"
} | tee "$DIR/result.md"
