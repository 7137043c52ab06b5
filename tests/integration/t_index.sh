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
source "$(dirname "$0")/lib.sh"
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

flow local "$T/repo"

if command -v node >/dev/null; then
	start_s3rver
	flow s3 "s3://index-bucket/repo"
else
	echo "node is not installed: the S3 round is skipped"
fi
echo "t_index passed"
