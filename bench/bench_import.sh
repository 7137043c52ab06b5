#!/bin/bash
# bench/bench_import.sh - cairn as a backup target against restic and borg, on the same
# machine, with the same data, in one run; prints ratios.
#
# Data: the 1 GiB ext4 image of bench/run.sh (mkfs.ext4 -d /usr/share: real files), then a
# second version of it with 32 scattered 1 MiB regions rewritten (a disk a day later).
#   first ingest    wall time of importing the image into an empty repository (MB/s)
#   second ingest   the changed image, as a new version (cairn: a second volume, which
#                   dedups against the first; restic: a second snapshot; borg: a second
#                   archive)
#   repository      bytes on disk after the first ingest, and added by the second
#   peak RSS        of the ingesting process (GNU time)
# cairn's volumes are set to `--retain 0` (no per-write CDP history: a backup target keeps
# versions, here the two volumes; BENCH_CDP=1 keeps the default 24 h window, whose sealed
# journal segments are stored in the repository too and roughly double it meanwhile).
# Every tool encrypts (cairn --encrypt, restic always, borg repokey) and compresses
# (cairn LZ4/LZ4HC, restic auto (zstd), borg lz4); a plain cairn repository is measured
# too. The input image sits in the page cache for every tool (read once before), and
# `sync` runs after each ingest, inside the timed span, so each tool's durability is
# counted. BENCH_ROUNDS (3) rounds, alternating the tools; medians are reported.
#
# Usage: make build && bash bench/bench_import.sh   (installs restic and borgbackup with
# apt-get when missing and run as root).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CAIRN=${CAIRN_BIN:-$ROOT/build/cairn}
DIR=${BENCH_DIR:-/tmp/cairn-bench-import}
ROUNDS=${BENCH_ROUNDS:-3}
[ -x "$CAIRN" ] || { echo "bench_import: $CAIRN missing; run make build" >&2; exit 1; }
need=()
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "bench_import: missing ${need[*]} (apt-get install ${need[*]})" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
rm -rf "$DIR"; mkdir -p "$DIR"
export CAIRN_RUN_DIR=$DIR/run CAIRN_STATE_DIR=$DIR/state

IMG=$ROOT/tests/out/cache/usr-share.img
if [ ! -f "$IMG" ]; then
	mkdir -p "$(dirname "$IMG")" "$DIR/src"
	cp -a /usr/share "$DIR/src/"
	mkfs.ext4 -q -F -N 100000 -E lazy_itable_init=0,lazy_journal_init=0 -d "$DIR/src" "$IMG.tmp" 1G >/dev/null
	mv "$IMG.tmp" "$IMG"; rm -rf "$DIR/src"
fi
SIZE=$(stat -c %s "$IMG")
# The second version: 32 regions of 1 MiB rewritten at fixed pseudo-random places.
IMG2=$DIR/v2.img
cp "$IMG" "$IMG2"
for i in $(seq 0 31); do
	off=$(( (i * 2654435761) % (SIZE / 1048576 - 1) ))
	head -c 1M /dev/urandom | dd of="$IMG2" bs=1M seek=$off conv=notrunc status=none
done
cat "$IMG" "$IMG2" >/dev/null
printf 'bench password\n' >"$DIR/pw"
export RESTIC_PASSWORD_FILE=$DIR/pw BORG_PASSPHRASE="bench password" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR=$DIR/borg-home RESTIC_CACHE_DIR=$DIR/restic-cache

du_b() { du -sb "$1" | cut -f1; }
# timed OUTFILE cmd...: run cmd + sync, append "seconds peak_rss_kib" to OUTFILE
timed() {
	local out=$1; shift
	local t0 t1
	t0=$(date +%s.%N)
	/usr/bin/time -f %M -o "$DIR/rss" "$@" >"$DIR/cmd.log" 2>&1 || { cat "$DIR/cmd.log"; exit 1; }
	sync
	t1=$(date +%s.%N)
	echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}') $(tail -1 "$DIR/rss")" >>"$out"
}

# one TOOL ROUND: both ingests into a fresh repository of TOOL; records times and sizes
one() {
	local tool=$1 r=$2 repo=$DIR/repo-$1
	rm -rf "$repo" "$DIR/state" "$BORG_BASE_DIR" "$RESTIC_CACHE_DIR"
	case $tool in
	cairn|cairn-plain)
		local enc=()
		[ "$tool" = cairn ] && enc=(--encrypt --password-file "$DIR/pw")
		"$CAIRN" init -r "$repo" "${enc[@]}" >/dev/null
		"$CAIRN" volume create v1 --size "$SIZE" -r "$repo" "${enc[@]:1}" >/dev/null
		"$CAIRN" volume create v2 --size "$SIZE" -r "$repo" "${enc[@]:1}" >/dev/null
		if [ -z "${BENCH_CDP:-}" ]; then # a backup target keeps versions, not every write
			"$CAIRN" volume set v1 --retain 0 -r "$repo" "${enc[@]:1}" >/dev/null
			"$CAIRN" volume set v2 --retain 0 -r "$repo" "${enc[@]:1}" >/dev/null
		fi
		timed "$DIR/$tool.first" "$CAIRN" import v1 "$IMG" -r "$repo" "${enc[@]:1}"
		echo "$(du_b "$repo")" >>"$DIR/$tool.size1"
		timed "$DIR/$tool.second" "$CAIRN" import v2 "$IMG2" -r "$repo" "${enc[@]:1}"
		;;
	restic)
		restic init -q -r "$repo" >/dev/null
		timed "$DIR/$tool.first" restic backup -q -r "$repo" --stdin --stdin-filename disk.img <"$IMG"
		echo "$(du_b "$repo")" >>"$DIR/$tool.size1"
		timed "$DIR/$tool.second" restic backup -q -r "$repo" --stdin --stdin-filename disk.img <"$IMG2"
		;;
	borg)
		borg init -e repokey "$repo" >/dev/null 2>&1
		timed "$DIR/$tool.first" borg create --compression lz4 "$repo::v1" - <"$IMG"
		echo "$(du_b "$repo")" >>"$DIR/$tool.size1"
		timed "$DIR/$tool.second" borg create --compression lz4 "$repo::v2" - <"$IMG2"
		;;
	esac
	echo "$(du_b "$repo")" >>"$DIR/$tool.size2"
	rm -rf "$repo"
}

TOOLS="cairn cairn-plain restic borg"
for r in $(seq 1 "$ROUNDS"); do
	for t in $TOOLS; do one "$t" "$r"; done
done

# median COLUMN FILE
median() { awk -v c="$1" '{print $c}' "$2" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mb() { awk -v s="$SIZE" -v t="$1" 'BEGIN {printf "%.1f", s / 1048576 / t}'; }
printf '\nimage %s MiB; %s rounds, medians (per-round figures in %s)\n\n' "$((SIZE / 1048576))" "$ROUNDS" "$DIR"
printf '| tool | first ingest MB/s | second ingest MB/s | repo after first MiB | added by second MiB | peak RSS MiB |\n|---|---|---|---|---|---|\n'
declare -A F S R1 R2 RSS
for t in $TOOLS; do
	F[$t]=$(mb "$(median 1 "$DIR/$t.first")")
	S[$t]=$(mb "$(median 1 "$DIR/$t.second")")
	R1[$t]=$(median 1 "$DIR/$t.size1")
	R2[$t]=$(( $(median 1 "$DIR/$t.size2") - R1[$t] ))
	RSS[$t]=$(( $(cat "$DIR/$t.first" "$DIR/$t.second" | awk '{print $2}' | sort -n | tail -1) / 1024 ))
	printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "${F[$t]}" "${S[$t]}" \
		"$((R1[$t] / 1048576))" "$((R2[$t] / 1048576))" "${RSS[$t]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
for peer in restic borg; do
	printf 'cairn (encrypted) / %s: first ingest %sx, second ingest %sx, repository size %sx (lower is better)\n' \
		"$peer" "$(ratio "${F[cairn]}" "${F[$peer]}")" "$(ratio "${S[cairn]}" "${S[$peer]}")" \
		"$(ratio "${R1[cairn]}" "${R1[$peer]}")"
done
