#!/bin/bash
# The index table kept in the daemon's state directory, through the real binary, on a
# local repository and (when node is there) on S3 (the pinned s3rver):
#  - volumes written through iSCSI (qemu-img convert); after a restart the daemon reads
#    no index segment (its log says how many packs came from the kept table and how
#    many were read) and serves the same data;
#  - gc without the daemon (its own index, not kept) deletes and repacks packs; the
#    next start finds those packs gone (their slots dead), reads only the new packs,
#    and every volume and snapshot still equals what was written; new writes after it
#    are kept too; `cairn check --read-data` passes;
#  - a damaged manifest: the daemon says so, rebuilds from the segments, same data.
# Commands without a daemon (their debug line "index: K packs from the kept index
# table, R read" counts what they read), two "machines" A and B being two state
# directories ($CAIRN_STATE_DIR) on one repository:
#  - a writable command (import, gc) keeps the table in A's state directory, read-only
#    ones (stats, volume list, export, check) read it: no pack read;
#  - packs B stored: A's next open reads exactly those, the data is B's; packs B's gc
#    deleted and repacked: A finds them gone and reads only the new ones; a copy of the
#    repository (same id, same state directory) changed by a gc: A opening the original
#    finds the copy's packs gone and reads the original's again; every volume equals
#    what was written and `cairn check --read-data` passes each time;
#  - --state-dir D is the table of `cairn serve --state-dir D`: a daemon started after
#    a command reads no segment, and a command after the daemon (and beside it, only
#    reading) neither.
source "$(dirname "$0")/lib.sh"
export CAIRN_STATE_DIR=$T/state-default # commands' default state directory: not the user's
MB=$((1024 * 1024))
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

for f in x1 x2 xb x3; do
	head -c $((16 * MB)) /dev/urandom >"$T/$f.img"
done

# index_line: the daemon's last "index: K packs from the kept index table, R read" line
index_line() { grep "repo: index: .* packs from the kept index table" "$T/serve.log" | tail -1; }
kept() { index_line | sed -n 's/.*index: \([0-9]*\) packs from the kept.*/\1/p'; }
read_n() { index_line | sed -n 's/.*table, \([0-9]*\) read from.*/\1/p'; }

flow() {
	local name=$1 repo=$2
	local state=$T/state-$name
	log "[$name] volumes written through iSCSI; a snapshot; an overwrite"
	"$CAIRN" init -r "$repo" >/dev/null
	for v in a b c; do
		"$CAIRN" volume create $v --size 16M -r "$repo" >/dev/null
	done
	start_daemon "$repo" "$state"
	[ "$(kept)" = 0 ] || fail "[$name] a fresh state directory had a kept table: $(index_line)"
	qemu-img convert -n -f raw -O raw "$T/x1.img" "$(url a)"
	"$CAIRN" snapshot create a --name s1 -r "$repo" >/dev/null
	qemu-img convert -n -f raw -O raw "$T/x2.img" "$(url a)"
	qemu-img convert -n -f raw -O raw "$T/xb.img" "$(url b)"
	stop_daemon
	[ -s "$state/index/manifest" ] || fail "[$name] no index manifest in $state/index after a clean stop"

	log "[$name] restart: the kept table, no segment read"
	start_daemon "$repo" "$state"
	echo "  $(index_line)"
	[ "$(kept)" -gt 0 ] && [ "$(read_n)" = 0 ] || fail "[$name] the restart did not use the kept table: $(index_line)"
	qemu-img compare -q -f raw -F raw "$T/x2.img" "$(url a)" || fail "[$name] a differs after the restart"
	qemu-img compare -q -f raw -F raw "$T/xb.img" "$(url b)" || fail "[$name] b differs after the restart"
	stop_daemon

	log "[$name] gc without the daemon deletes and repacks packs"
	"$CAIRN" volume delete b -r "$repo" >/dev/null
	"$CAIRN" snapshot delete a s1 -r "$repo" >/dev/null
	"$CAIRN" snapshot create a --name s2 -r "$repo" >/dev/null
	"$CAIRN" gc --grace 0 --repack-threshold 95 --json -r "$repo" >"$T/gc.json"
	jget '"  gc: %d packs deleted, %d repacked into %d, %d chunks moved" % (d["packs_deleted"], d["packs_repacked"], d["packs_written"], d["chunks_moved"])' <"$T/gc.json"
	[ "$(jget 'd["packs_deleted"]' <"$T/gc.json")" -ge 1 ] || fail "[$name] gc deleted no pack: $(cat "$T/gc.json")"

	log "[$name] restart: gone packs are dead, new ones read; the data is intact"
	start_daemon "$repo" "$state"
	echo "  $(index_line)"
	grep "packs gone since the index table was kept" "$T/serve.log" | sed 's/^/  /'
	qgrep "packs gone since the index table was kept" "$T/serve.log" ||
		fail "[$name] the restart after gc found no pack gone"
	[ "$(kept)" -gt 0 ] || fail "[$name] the kept table was not used after gc: $(index_line)"
	[ "$(read_n)" = "$(jget 'd["packs_written"]' <"$T/gc.json")" ] ||
		fail "[$name] read $(read_n) packs, gc wrote $(jget 'd["packs_written"]' <"$T/gc.json")"
	qemu-img compare -q -f raw -F raw "$T/x2.img" "$(url a)" || fail "[$name] a differs after gc and restart"
	"$CAIRN" export a@s2 "$T/e.img" -r "$repo" >/dev/null
	cmp -s "$T/e.img" "$T/x2.img" || fail "[$name] snapshot a@s2 differs after gc and restart"
	expect_fail "no volume named 'b'" "$CAIRN" export b "$T/e.img" -r "$repo"
	log "[$name] new writes (the deleted volume's content again, and new data) are kept"
	qemu-img convert -n -f raw -O raw "$T/xb.img" "$(url c)"
	qemu-img convert -n -f raw -O raw "$T/x3.img" "$(url a)"
	stop_daemon
	start_daemon "$repo" "$state"
	echo "  $(index_line)"
	[ "$(read_n)" = 0 ] || fail "[$name] the restart read packs again: $(index_line)"
	qemu-img compare -q -f raw -F raw "$T/xb.img" "$(url c)" || fail "[$name] c differs"
	qemu-img compare -q -f raw -F raw "$T/x3.img" "$(url a)" || fail "[$name] a differs"
	stop_daemon
	"$CAIRN" check --read-data -r "$repo" >"$T/check.out" || { cat "$T/check.out"; fail "[$name] check"; }
	tail -1 "$T/check.out"

	log "[$name] a damaged manifest: the daemon rebuilds from the segments"
	printf 'X' | dd of="$state/index/manifest" bs=1 seek=100 conv=notrunc status=none
	start_daemon "$repo" "$state"
	qgrep "index table kept in .* is unsound (the manifest is damaged)" "$T/serve.log" ||
		fail "[$name] no log line about the damaged manifest"
	echo "  $(index_line)"
	[ "$(kept)" = 0 ] && [ "$(read_n)" -gt 0 ] || fail "[$name] not rebuilt: $(index_line)"
	qemu-img compare -q -f raw -F raw "$T/xb.img" "$(url c)" || fail "[$name] c differs after the rebuild"
	qemu-img compare -q -f raw -F raw "$T/x3.img" "$(url a)" || fail "[$name] a differs after the rebuild"
	stop_daemon
	start_daemon "$repo" "$state"
	[ "$(read_n)" = 0 ] || fail "[$name] the rebuilt table was not kept: $(index_line)"
	stop_daemon
}

# ix NAME STATE cmd...: run a cairn command with $CAIRN_STATE_DIR=STATE and debug logs
# (stderr in $T/NAME.err, stdout in $T/NAME.out); ix_kept/ix_read NAME: the figures of
# its "index:" line
ix() {
	local n=$1 st=$2; shift 2
	CAIRN_STATE_DIR=$st CAIRN_LOG=debug "$@" >"$T/$n.out" 2>"$T/$n.err" ||
		{ grep -v " debug " "$T/$n.err" | tail -20; fail "$n: $* failed"; }
}
ix_line() { grep "repo: index: .* packs from the kept index table" "$T/$1.err" | tail -1; }
ix_kept() { ix_line "$1" | sed -n 's/.*index: \([0-9]*\) packs from the kept.*/\1/p'; }
ix_read() { ix_line "$1" | sed -n 's/.*table, \([0-9]*\) read from.*/\1/p'; }
# ix_expect NAME KEPT READ: the figures of NAME's index line ("+": > 0, "*": any)
ix_want() { case $2 in '*') true ;; +) [ "$1" -gt 0 ] ;; *) [ "$1" = "$2" ] ;; esac; }
ix_expect() {
	local k r; k=$(ix_kept "$1"); r=$(ix_read "$1")
	echo "  $1: $k packs from the kept table, $r read"
	[ -n "$k" ] && [ -n "$r" ] || fail "$1: no index line in $T/$1.err"
	ix_want "$k" "$2" || fail "$1: $k packs from the kept table, expected $2"
	ix_want "$r" "$3" || fail "$1: $r packs read, expected $3"
}
# same VOLUME[@SNAP] IMAGE STATE REPO [NAME]: export through STATE equals IMAGE
same() {
	ix "${5:-exp}" "$3" "$CAIRN" export "$1" "$T/e.img" -r "$4"
	cmp -s "$T/e.img" "$2" || fail "$1 differs from $2 (state $3, repository $4)"
}

cli_flow() {
	local name=$1 repo=$2
	local A=$T/cli-$name-A B=$T/cli-$name-B D=$T/cli-$name-D rid
	log "[$name cli] a writable command keeps the table in the state directory; read-only ones read it"
	"$CAIRN" init -r "$repo" >/dev/null
	ix vc-p "$A" "$CAIRN" volume create p --size 16M -r "$repo"
	ix vc-q "$A" "$CAIRN" volume create q --size 16M -r "$repo"
	ix imp-p "$A" "$CAIRN" import p "$T/x1.img" -r "$repo"
	ix_expect imp-p '*' 0
	ix imp-q "$A" "$CAIRN" import q "$T/xb.img" -r "$repo"
	ix_expect imp-q + 0
	rid=$(find "$A" -mindepth 3 -maxdepth 3 -path '*/index/manifest' -size +0 | head -1)
	[ -n "$rid" ] || fail "[$name cli] no index manifest under $A/<repository id>/index"
	rid=$(basename "$(dirname "$(dirname "$rid")")")
	ix stats-a "$A" "$CAIRN" stats --json -r "$repo"
	ix_expect stats-a + 0
	ix list-a "$A" "$CAIRN" volume list -r "$repo"
	ix_expect list-a + 0
	ix stats-n "$T/cli-$name-none" "$CAIRN" stats --json -r "$repo" # no table there: all read
	ix_expect stats-n 0 +
	[ -e "$T/cli-$name-none" ] && fail "[$name cli] a read-only command created its state directory"
	same p "$T/x1.img" "$A" "$repo"
	ix_expect exp + 0

	log "[$name cli] packs stored by another machine (B) are read by A, and only they"
	ix imp-b "$B" "$CAIRN" import p "$T/x2.img" -r "$repo"
	ix_expect imp-b 0 +
	ix stats-a2 "$A" "$CAIRN" stats --json -r "$repo"
	ix_expect stats-a2 + +
	same p "$T/x2.img" "$A" "$repo"
	ix gcdry-a "$A" "$CAIRN" gc --dry-run -r "$repo" # writable: the table takes B's packs
	ix_expect gcdry-a + +
	ix stats-a3 "$A" "$CAIRN" stats --json -r "$repo"
	ix_expect stats-a3 + 0

	log "[$name cli] B deletes a volume and its gc deletes and repacks packs: A finds them gone"
	ix del-q "$B" "$CAIRN" volume delete q -r "$repo"
	ix gc-b "$B" "$CAIRN" gc --grace 0 --repack-threshold 95 --json -r "$repo"
	jget '"  gc on B: %d packs deleted, %d repacked into %d" % (d["packs_deleted"], d["packs_repacked"], d["packs_written"])' <"$T/gc-b.out"
	[ "$(jget 'd["packs_deleted"]' <"$T/gc-b.out")" -ge 1 ] || fail "[$name cli] B's gc deleted no pack"
	ix stats-a4 "$A" "$CAIRN" stats --json -r "$repo"
	qgrep "packs gone since the index table was kept" "$T/stats-a4.err" ||
		fail "[$name cli] A did not find B's deleted packs gone"
	ix_expect stats-a4 + "$(jget 'd["packs_written"]' <"$T/gc-b.out")"
	same p "$T/x2.img" "$A" "$repo"
	ix check-a "$A" "$CAIRN" check --read-data -r "$repo"
	tail -1 "$T/check-a.out"

	if [ "$name" = local ]; then
		# a copy taken with A's state directory, changed there (its own journals), then
		# its table put in A's place: A's table now describes the copy, whose id is the
		# original's
		log "[$name cli] a copy of the repository (same id) changed, then the original opened"
		local C=$T/cli-$name-C
		cp -a "$repo" "$T/repo-copy"
		cp -a "$A" "$C"
		ix vc-r "$C" "$CAIRN" volume create r --size 16M -r "$T/repo-copy"
		ix imp-c "$C" "$CAIRN" import r "$T/x3.img" -r "$T/repo-copy"
		ix_expect imp-c + 0
		ix del-p "$C" "$CAIRN" volume delete p -r "$T/repo-copy"
		ix gc-c "$C" "$CAIRN" gc --grace 0 --repack-threshold 95 --json -r "$T/repo-copy"
		[ "$(jget 'd["packs_deleted"]' <"$T/gc-c.out")" -ge 1 ] || fail "[$name cli] the copy's gc deleted no pack"
		rm -rf "${A:?}/$rid/index"
		cp -a "$C/$rid/index" "$A/$rid/index"
		ix stats-o "$A" "$CAIRN" stats --json -r "$repo"
		qgrep "packs gone since the index table was kept" "$T/stats-o.err" ||
			fail "[$name cli] the original's open did not find the copy's packs gone"
		ix_expect stats-o "*" + # its stored packs are the copy's: gone here
		same p "$T/x2.img" "$A" "$repo"
		ix check-o "$A" "$CAIRN" check --read-data -r "$repo"
		tail -1 "$T/check-o.out"
		ix gcdry-o "$A" "$CAIRN" gc --dry-run --json -r "$repo"
		[ "$(jget 'd["dead_chunks"]' <"$T/gcdry-o.out")" -eq 0 ] || fail "[$name cli] the original has dead chunks: the copy's table leaked into it"
		same r "$T/x3.img" "$C" "$T/repo-copy"
		rm -rf "$T/repo-copy" "$C"
	fi

	log "[$name cli] --state-dir D: the table of 'cairn serve --state-dir D'"
	ix gc-d "$A" "$CAIRN" gc --dry-run --state-dir "$D" -r "$repo"
	ix_expect gc-d 0 +
	[ -s "$D/index/manifest" ] || fail "[$name cli] no manifest in $D/index"
	start_daemon "$repo" "$D"
	echo "  $(index_line)"
	[ "$(kept)" -gt 0 ] && [ "$(read_n)" = 0 ] || fail "[$name cli] the daemon did not use the command's table: $(index_line)"
	qemu-img convert -n -f raw -O raw "$T/x3.img" "$(url p)"
	ix check-d "$A" "$CAIRN" check --state-dir "$D" -r "$repo" # beside the daemon: reads
	ix_expect check-d + '*'
	stop_daemon
	ix exp-d "$A" "$CAIRN" export p "$T/e.img" --state-dir "$D" -r "$repo"
	ix_expect exp-d + 0
	cmp -s "$T/e.img" "$T/x3.img" || fail "[$name cli] p differs after the daemon wrote it"
}

flow local "$T/repo"
cli_flow local "$T/repo-cli"

if command -v node >/dev/null; then
	start_s3rver
	flow s3 "s3://index-bucket/repo"
	cli_flow s3 "s3://index-cli/repo"
else
	echo "node is not installed: the S3 round is skipped"
fi
echo "t_index passed"
