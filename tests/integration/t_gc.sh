#!/bin/bash
# cairn gc through the real daemon and real initiators, on a local repository and (when
# node is there) on S3 (the pinned s3rver):
#  - volumes written through iSCSI (qemu-img convert), a snapshot, a clone, a marked
#    time, data overwritten, a volume deleted; a dry run changes nothing, a gc with the
#    default grace period only condemns, one with --grace 0 frees the deleted volume's
#    bytes (asserted on the repository's bytes), and every volume, snapshot, clone and
#    point in time still equals what was written; `cairn check --read-data` passes;
#  - a pack upload cut short by a crash (an object truncated in the repository, no index
#    segment) is noted by check, condemned by a gc with the grace period and deleted by
#    one with --grace 0, and only then;
#  - the deleted volume's own objects (history checkpoints and snapshots, journal
#    segments kept in the repository, its blob of persistent reservations, old head
#    versions) are condemned, then gone after gc --grace 0 (its tombstone head stays);
#    `cairn stats` shows the stored and metadata bytes returned, and a clone of its
#    snapshot (its own root, sharing the snapshot's chunks) still equals the snapshot;
#  - gc in a loop while `cairn serve` is written: an oracle writer on one volume, and
#    content equal to a just-deleted volume's written to another while gc runs (folds
#    dedup against chunks gc found dead: the hard race); then everything is compared
#    with the oracle and the sources, after a restart too, and check passes.
#  - volume delete removes the volume's local state (<state>/<volume id>: journal,
#    fetched segments), through the daemon and without it; what a crash between the
#    tombstone and that removal leaves is removed at the next start (a log line), and
#    the state of a volume the repository does not know is left alone (a log line).
source "$(dirname "$0")/lib.sh"
export CAIRN_STATE_DIR=$T/state-default # commands' default state directory: not the user's
MB=$((1024 * 1024))
PR=$BUILD/tests/tools/iscsi_pr
[ -x "$PR" ] || fail "missing $PR (build the test tools)"
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
now3339() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }

for f in x1 x2 xb xb2 r1 r2 r3; do
	head -c $((16 * MB)) /dev/urandom >"$T/$f.img"
done

# pack_bytes REPO: bytes of the repository's pack and index objects (what gc manages;
# the journal segments the daemon also stores in the repository come and go with
# retention, not with gc)
pack_bytes() {
	local dir=$1
	[ "${1#s3://}" != "$1" ] && dir=$T/s3data
	find "$dir" -type f \( -path '*/packs/*' -o -path '*/index/*' \) -printf '%s\n' |
		awk '{ s += $1 } END { print s + 0 }'
}

# meta_objs REPO PREFIX: how many object files hold metadata keys under PREFIX
meta_objs() {
	local dir=$1
	[ "${1#s3://}" != "$1" ] && dir=$T/s3data
	find "$dir" -type f -path "*/meta/$2/*" | wc -l
}

# put_cut_pack REPO: store the first MiB of the largest pack under a fresh pack key, with
# no index segment (what an upload cut short by a crash leaves on a store that keeps
# partial objects); prints the key
put_cut_pack() {
	local repo=$1 id src key
	id=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	key=packs/${id:0:2}/$id
	if [ "${repo#s3://}" != "$repo" ]; then
		src=$(find "$T/s3data" -type f -path '*/packs/*' -size +1M | head -1)
		head -c $MB "$src" >"$T/cut"
		curl -sf -X PUT --data-binary @"$T/cut" "$CAIRN_S3_ENDPOINT/gc-bucket/repo/$key" ||
			fail "cannot store the cut pack in s3rver"
	else
		src=$(find "$repo/packs" -type f ! -name '.*' -size +1M | head -1)
		mkdir -p "$repo/packs/${id:0:2}"
		head -c $MB "$src" >"$repo/$key"
	fi
	echo "$key"
}

# has_key REPO KEY: the object exists
has_key() {
	if [ "${1#s3://}" != "$1" ]; then
		curl -sf -o /dev/null -I "$CAIRN_S3_ENDPOINT/gc-bucket/repo/$2"
	else
		[ -e "$1/$2" ]
	fi
}

flow() {
	local name=$1 repo=$2
	local state=$T/state-$name
	log "[$name] volumes written through iSCSI: snapshot, clone, a point in time, overwrite"
	"$CAIRN" init -r "$repo" >/dev/null
	for v in a b w o; do
		"$CAIRN" volume create $v --size 16M -r "$repo" >/dev/null
	done
	start_daemon "$repo" "$state"
	qemu-img convert -n -f raw -O raw "$T/x1.img" "$(url a)"
	"$CAIRN" snapshot create a --name s1 -r "$repo" >/dev/null
	sleep 0.05
	local t1; t1=$(now3339)
	sleep 0.05
	qemu-img convert -n -f raw -O raw "$T/x2.img" "$(url a)"
	"$CAIRN" volume clone a@s1 c1 -r "$repo" >/dev/null
	qemu-img convert -n -f raw -O raw "$T/xb.img" "$(url b)"
	"$CAIRN" snapshot create b --name sb -r "$repo" >/dev/null
	"$CAIRN" volume clone b@sb bc -r "$repo" >/dev/null
	# then b's own data (what deleting b frees: bc keeps xb's chunks)
	qemu-img convert -n -f raw -O raw "$T/xb2.img" "$(url b)"
	# a persistent reservation with APTPL: b gets a volume blob in the repository
	"$PR" "$(url b)" iqn.2026-01.test:gc-node 7 register 0xa11a 1 | qgrep "registered 0xa11a aptpl 1" ||
		fail "[$name] PERSISTENT RESERVE OUT with APTPL on b failed"
	local bid
	bid=$("$CAIRN" volume list --json -r "$repo" | jget '[v["id"] for v in d if v["name"]=="b"][0]')

	log "[$name] dry run: nothing changes"
	local b0 out
	out=$("$CAIRN" gc --dry-run --json -r "$repo")
	[ "$(echo "$out" | jget 'd["packs"]')" -gt 0 ] || fail "[$name] gc examined no pack: $out"
	[ "$(echo "$out" | jget 'd["dead_chunks"]')" -eq 0 ] || fail "[$name] dead chunks before anything was deleted: $out"

	log "[$name] an upload cut short by a crash: check notes it"
	local cut
	cut=$(put_cut_pack "$repo")
	"$CAIRN" check -r "$repo" --state-dir "$state" >"$T/check.out" || { cat "$T/check.out"; fail "[$name] check fails on an incomplete upload"; }
	qgrep "^note: $cut: incomplete upload" "$T/check.out" || { cat "$T/check.out"; fail "[$name] check does not note the incomplete upload"; }

	log "[$name] volume b deleted; gc with the default grace condemns and frees nothing"
	[ -d "$state/$bid/journal" ] || fail "[$name] b has no journal in $state/$bid"
	cp -a "$state/$bid" "$T/b-state"
	"$CAIRN" volume delete b -r "$repo" >/dev/null
	[ -e "$state/$bid" ] && fail "[$name] b's local state $state/$bid is still there after volume delete"
	# what a crash between the tombstone and the removal leaves (the next start removes it)
	mv "$T/b-state" "$state/$bid"
	# (closing b stored its journal in the repository: 32 MiB of writes, thin: the
	# chunks they wrote are named by id)
	"$CAIRN" stats --json -r "$repo" >"$T/stats0.json"
	local kind
	for kind in history journal volblob; do
		[ "$(meta_objs "$repo" "$kind/$bid")" -ge 1 ] || fail "[$name] b left no $kind object to collect"
	done
	out=$("$CAIRN" gc --json -r "$repo")
	echo "$out" | jget '"  condemned %d packs (%d bytes), deleted %d; %d objects of %d deleted volume(s) waiting" % (d["packs_condemned"], d["bytes_condemned"], d["packs_deleted"], d["meta_waiting"], d["dead_volumes"])'
	[ "$(echo "$out" | jget 'd["packs_condemned"]')" -ge 1 ] || fail "[$name] nothing condemned: $out"
	[ "$(echo "$out" | jget 'd["bytes_deleted"]')" -eq 0 ] || fail "[$name] deleted inside the grace period: $out"
	[ "$(echo "$out" | jget 'd["dead_bytes"]')" -ge $((12 * MB)) ] || fail "[$name] b's data not found dead: $out"
	[ "$(echo "$out" | jget '(d["incomplete_uploads"], d["incomplete_deleted"])')" = "(1, 0)" ] || fail "[$name] incomplete upload not found, or deleted inside the grace period: $out"
	[ "$(echo "$out" | jget '(d["dead_volumes"], d["meta_deleted"], d["meta_waiting"] >= 3)')" = "(1, 0, True)" ] || fail "[$name] b's objects not condemned, or deleted inside the grace period: $out"
	has_key "$repo" "$cut" || fail "[$name] the incomplete upload was deleted inside the grace period"
	for kind in history journal volblob; do
		[ "$(meta_objs "$repo" "$kind/$bid")" -ge 1 ] || fail "[$name] b's $kind objects deleted inside the grace period"
	done
	"$CAIRN" gc -r "$repo" | tee "$T/gc.out" | qgrep "condemned earlier still in their grace period" ||
		fail "[$name] a second gc does not report the packs waiting"
	qgrep "^incomplete .* 0 deleted" "$T/gc.out" || { cat "$T/gc.out"; fail "[$name] a second gc does not report the incomplete upload waiting"; }
	qgrep "^deleted vols  1: deleted 0 metadata objects .* in their grace period" "$T/gc.out" || { cat "$T/gc.out"; fail "[$name] a second gc does not report b's objects waiting"; }
	b0=$(pack_bytes "$repo") # after a gc: every pack the daemon had in flight is stored

	log "[$name] gc --grace 0 frees the deleted volume and the incomplete upload"
	"$CAIRN" gc --grace 0 -r "$repo" | tee "$T/gc.out"
	local b1; b1=$(pack_bytes "$repo")
	echo "  packs and index: $b0 -> $b1 bytes"
	[ $((b0 - b1)) -ge $((12 * MB)) ] || fail "[$name] gc freed $((b0 - b1)) bytes, expected >= 12 MiB"
	qgrep "^incomplete    1 pack uploads cut short by a crash; 1 deleted" "$T/gc.out" || fail "[$name] the incomplete upload is not reported deleted"
	has_key "$repo" "$cut" && fail "[$name] the incomplete upload is still there after gc --grace 0"
	for kind in history journal volblob; do
		[ "$(meta_objs "$repo" "$kind/$bid")" -eq 0 ] || fail "[$name] b's $kind objects are still there after gc --grace 0"
	done
	[ "$(meta_objs "$repo" "volumes/$bid")" -ge 1 ] || fail "[$name] b's tombstone head was deleted"
	"$CAIRN" stats --json -r "$repo" >"$T/stats1.json"
	python3 - "$T/stats0.json" "$T/stats1.json" <<'PY' || fail "[$name] stats does not show b's space returned"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
MB = 1 << 20
print("  stats: stored %d -> %d bytes, metadata %d -> %d bytes in %d -> %d objects" % (
      a["stored_bytes"], b["stored_bytes"], a["metadata_bytes"], b["metadata_bytes"],
      a["metadata_objects"], b["metadata_objects"]))
assert a["stored_bytes"] - b["stored_bytes"] >= 12 * MB, "stored bytes"
assert b["metadata_objects"] < a["metadata_objects"], "metadata objects"
# b's journal segments are thin (their whole chunks are chunk references, counted in
# the stored bytes above): only their skeletons and b's history objects are metadata
assert a["metadata_bytes"] > b["metadata_bytes"], "metadata bytes (b's history and journal)"
PY
	"$CAIRN" export bc "$T/e.img" -r "$repo" >/dev/null
	cmp -s "$T/e.img" "$T/xb.img" || fail "[$name] clone bc of the deleted b@sb differs after gc"

	log "[$name] everything left equals what was written"
	"$CAIRN" export a "$T/e.img" -r "$repo" >/dev/null
	cmp -s "$T/e.img" "$T/x2.img" || fail "[$name] volume a differs after gc"
	"$CAIRN" export a@s1 "$T/e.img" -r "$repo" >/dev/null
	cmp -s "$T/e.img" "$T/x1.img" || fail "[$name] snapshot a@s1 differs after gc"
	"$CAIRN" export "a@$t1" "$T/e.img" -r "$repo" >/dev/null
	cmp -s "$T/e.img" "$T/x1.img" || fail "[$name] point a@$t1 differs after gc"
	"$CAIRN" export c1 "$T/e.img" -r "$repo" >/dev/null
	cmp -s "$T/e.img" "$T/x1.img" || fail "[$name] clone c1 differs after gc"
	qemu-img compare -q -f raw -F raw "$T/x2.img" "$(url a)" || fail "[$name] a read through iSCSI differs"
	expect_fail "no volume named 'b'" "$CAIRN" export b "$T/e.img" -r "$repo"
	"$CAIRN" check --read-data -r "$repo" --state-dir "$state" | tail -1

	log "[$name] gc loops while the daemon is written"
	local O=$T/oracle-$name B
	B=$("$CAIRN" cdp list o --json -r "$repo" | jget 'd["next_seq"]')
	"$ORACLE" write "$(url o)" --oracle "$O" --seed 11 --start 0 --blocks 32768 --count 1500 --mix \
		>"$T/oracle-$name.log" 2>&1 &
	local opid=$! i gcs=0 snaps="" reused=0
	for i in 1 2 3; do
		"$CAIRN" volume create t$i --size 16M -r "$repo" >/dev/null
		qemu-img convert -n -f raw -O raw "$T/r$i.img" "$(url t$i)"
		"$CAIRN" volume delete t$i -r "$repo" >/dev/null
		# the same content into w while gc runs: w's folds dedup against t$i's chunks
		qemu-img convert -n -f raw -O raw "$T/r$i.img" "$(url w)" &
		local qpid=$!
		"$CAIRN" gc --grace 0 --json -r "$repo" >"$T/gc-loop.out" || fail "[$name] gc failed under load: $(cat "$T/gc-loop.out")"
		reused=$((reused + $(jget 'd["reused_chunks"]' <"$T/gc-loop.out")))
		gcs=$((gcs + 1))
		wait $qpid || fail "[$name] qemu-img convert into w failed"
		"$CAIRN" gc --grace 0 -r "$repo" >"$T/gc-loop.out" || fail "[$name] gc failed under load"
		gcs=$((gcs + 1))
		"$CAIRN" snapshot create o --name s$i -r "$repo" >/dev/null
		snaps="$snaps s$i"
		qemu-img compare -q -f raw -F raw "$T/r$i.img" "$(url w)" || fail "[$name] w differs from r$i after gc ran while it was written"
	done
	while kill -0 $opid 2>/dev/null; do
		"$CAIRN" gc --grace 0 -r "$repo" >"$T/gc-loop.out" || fail "[$name] gc failed under load"
		gcs=$((gcs + 1))
	done
	wait $opid || fail "[$name] oracle writer failed: $(tail -5 "$T/oracle-$name.log")"
	echo "  $gcs gc runs during the writes; $reused dead chunks reused by w's folds while gc ran (kept)"
	"$ORACLE" verify "$(url o)" --oracle "$O" --strict >/dev/null || fail "[$name] volume o differs from the oracle"
	"$CAIRN" export o "$T/e.img" -r "$repo" >/dev/null
	"$ORACLE" check-image "$T/e.img" --oracle "$O" --writes 1500 >/dev/null || fail "[$name] export of o differs from the oracle"
	for s in $snaps; do
		local seq
		seq=$("$CAIRN" snapshot list o --json -r "$repo" | jget "[x['seq'] for x in d if x['name']=='$s'][0]")
		"$CAIRN" export "o@$s" "$T/e.img" -r "$repo" >/dev/null
		"$ORACLE" check-image "$T/e.img" --oracle "$O" --seq-base "$B" --seq "$seq" >/dev/null ||
			fail "[$name] snapshot o@$s differs from the oracle"
	done

	log "[$name] restart: everything still equals; check --read-data passes"
	stop_daemon
	local stray=0123456789abcdef0123456789abcdef
	mkdir -p "$state/$stray/journal"
	start_daemon "$repo" "$state"
	qgrep "removed $state/$bid, the local state of a deleted volume" "$T/serve.log" ||
		fail "[$name] the start did not say it removed b's local state"
	[ -e "$state/$bid" ] && fail "[$name] b's local state left by a crash is still there after a start"
	qgrep "$state/$stray: the local state of a volume this repository does not know" "$T/serve.log" ||
		fail "[$name] the start did not name the unknown volume state"
	[ -d "$state/$stray/journal" ] || fail "[$name] the start removed an unknown volume's state"
	rm -rf "${state:?}/$stray"
	qemu-img compare -q -f raw -F raw "$T/r3.img" "$(url w)" || fail "[$name] w differs after restart"
	qemu-img compare -q -f raw -F raw "$T/x2.img" "$(url a)" || fail "[$name] a differs after restart"
	"$ORACLE" verify "$(url o)" --oracle "$O" --strict >/dev/null || fail "[$name] o differs after restart"
	"$CAIRN" export a@s1 "$T/e.img" -r "$repo" >/dev/null
	cmp -s "$T/e.img" "$T/x1.img" || fail "[$name] snapshot a@s1 differs after restart"
	stop_daemon
	"$CAIRN" gc --grace 0 -r "$repo" --state-dir "$state" >/dev/null || fail "[$name] gc without a daemon"
	"$CAIRN" check --read-data -r "$repo" --state-dir "$state" >"$T/check.out" || { cat "$T/check.out"; fail "[$name] check after gc"; }
	tail -1 "$T/check.out"
	"$CAIRN" export c1 "$T/e.img" -r "$repo" >/dev/null
	cmp -s "$T/e.img" "$T/x1.img" || fail "[$name] clone c1 differs at the end"
	local b2; b2=$(pack_bytes "$repo")
	echo "  packs and index at the end: $b2 bytes"

	log "[$name] volume delete without the daemon removes the volume's local state"
	local did
	"$CAIRN" volume create d --size 16M -r "$repo" >/dev/null
	"$CAIRN" import d "$T/r1.img" --state-dir "$state" -r "$repo" >/dev/null
	did=$("$CAIRN" volume list --json -r "$repo" | jget '[v["id"] for v in d if v["name"]=="d"][0]')
	[ -d "$state/$did/journal" ] || fail "[$name] d has no journal in $state/$did"
	"$CAIRN" volume delete d --state-dir "$state" -r "$repo" >/dev/null
	[ -e "$state/$did" ] && fail "[$name] d's local state $state/$did is still there after volume delete"
	"$CAIRN" export c1 "$T/e.img" -r "$repo" >/dev/null
	cmp -s "$T/e.img" "$T/x1.img" || fail "[$name] clone c1 differs after d was deleted"
}

log "bad input"
"$CAIRN" init -r "$T/bad" >/dev/null
expect_fail "grace period 'soon' is invalid" "$CAIRN" gc --grace soon -r "$T/bad"
expect_fail "repack threshold '150' is invalid" "$CAIRN" gc --repack-threshold 150 -r "$T/bad"

flow local "$T/repo"

if command -v node >/dev/null; then
	start_s3rver
	flow s3 "s3://gc-bucket/repo"
else
	echo "node is not installed: the S3 round is skipped"
fi
echo "t_gc passed"
