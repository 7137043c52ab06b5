#!/bin/bash
# History through the real daemon and a real initiator (libiscsi): a random sequence of
# writes (sizes 512 B-128 KiB, overlapping, unaligned to chunks, UNMAP and WRITE SAME
# mixed in) while a snapshot is taken live; then the exported image at every tenth
# seq, at a dozen wall-clock times and at the snapshot equals the oracle's; snapshots
# and clones stay intact while their source is written and after it is deleted;
# restore, then undo of the restore, returns the newer state; bad points fail clearly.
source "$(dirname "$0")/lib.sh"
R=$T/repo
S=$T/state
BLOCKS=32768 # 16 MiB
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create h --size 16M --chunk-size 64K -r "$R" >/dev/null
start_daemon "$R" "$S"
B=$("$CAIRN" cdp list h --json -r "$R" | jget 'd["next_seq"]')

log "random writes with UNMAP / WRITE SAME while a snapshot is taken"
O=$T/o1
"$ORACLE" write "$(url h)" --oracle "$O" --seed 7 --start 0 --blocks $BLOCKS --count 500 --mix >"$T/o1.log" 2>&1 &
opid=$!
for _ in $(seq 1 300); do
	a=$(grep -c '^A' "$O" 2>/dev/null || true)
	[ "${a:-0}" -ge 100 ] && break
	sleep 0.05
done
acked_before=$(grep -c '^[AF]' "$O" || true)
t0=$(date +%s%N)
"$CAIRN" snapshot create h --name s1 -r "$R"
t1=$(date +%s%N)
wait $opid || fail "oracle writer failed: $(cat "$T/o1.log")"
echo "snapshot create took $(( (t1 - t0) / 1000000 )) ms (CLI process included)"
S1=$("$CAIRN" snapshot list h --json -r "$R" | jget '[s["seq"] for s in d if s["name"]=="s1"][0]')
E=$("$CAIRN" cdp list h --json -r "$R" | jget 'd["next_seq"]')
[ "$S1" -lt "$E" ] || fail "the snapshot was not taken while the initiator wrote"
[ $(( S1 - B )) -ge "$acked_before" ] || fail "snapshot at seq $S1 misses writes acknowledged before it ($acked_before records from $B)"
echo "history: seq $B..$E, snapshot s1 at seq $S1 ($acked_before records acknowledged before it)"

log "the image at every tenth seq equals the oracle"
n=0
for ((q = B; q <= E; q += 10)); do
	"$CAIRN" export "h@seq:$q" "$T/p.img" -r "$R" >/dev/null
	"$ORACLE" check-image "$T/p.img" --oracle "$O" --seq-base "$B" --seq "$q" >/dev/null ||
		fail "image at seq:$q differs from the oracle"
	n=$((n + 1))
done
echo "  $n points checked"

log "the image at a dozen wall-clock times equals the oracle"
"$ORACLE" pick-times --oracle "$O" --count 12 >"$T/times"
[ "$(wc -l <"$T/times")" -ge 12 ] || fail "not enough distinct times in the oracle log"
while read -r when k; do
	"$CAIRN" export "h@$when" "$T/p.img" -r "$R" >/dev/null
	"$ORACLE" check-image "$T/p.img" --oracle "$O" --writes "$k" >/dev/null ||
		fail "image at $when (after $k writes) differs from the oracle"
done <"$T/times"

log "snapshot and clone hold exactly the snapshot's writes"
"$CAIRN" export h@s1 "$T/s1.img" -r "$R" >/dev/null
"$ORACLE" check-image "$T/s1.img" --oracle "$O" --seq-base "$B" --seq "$S1" || fail "snapshot s1 differs"
"$CAIRN" volume clone h@s1 c1 -r "$R"
iscsi-inq "$(url c1)" >/dev/null || fail "the clone is not exported at once"
"$CAIRN" export c1 "$T/c1.img" -r "$R" >/dev/null
cmp -s "$T/s1.img" "$T/c1.img" || fail "clone c1 differs from snapshot s1"
"$CAIRN" export h "$T/before.img" -r "$R" >/dev/null

log "source written: snapshot and clone stay intact; clone is writable"
"$ORACLE" write "$(url h)" --oracle "$T/o2" --seed 8 --start 0 --blocks $BLOCKS --count 150 --mix >/dev/null
"$ORACLE" write "$(url c1)" --oracle "$T/o3" --seed 9 --start 0 --blocks $BLOCKS --count 50 >/dev/null
"$CAIRN" export h@s1 "$T/s1b.img" -r "$R" >/dev/null
cmp -s "$T/s1.img" "$T/s1b.img" || fail "snapshot s1 changed when its source was written"
"$CAIRN" export h "$T/newer.img" -r "$R" >/dev/null
cmp -s "$T/newer.img" "$T/before.img" && fail "the source did not change"

log "restore, then undo the restore"
out=$("$CAIRN" restore h h@s1 -r "$R")
echo "$out"
undo=$(echo "$out" | sed -n 's/.*undo with: cairn restore h //p')
[ -n "$undo" ] || fail "restore printed no undo point"
"$CAIRN" export h "$T/r.img" -r "$R" >/dev/null
cmp -s "$T/r.img" "$T/s1.img" || fail "restored volume differs from s1"
qemu-img compare -q -f raw "$T/s1.img" "$(url h)" || fail "an initiator does not read the restored data"
"$CAIRN" restore h "$undo" -r "$R" >/dev/null
"$CAIRN" export h "$T/u.img" -r "$R" >/dev/null
cmp -s "$T/u.img" "$T/newer.img" || fail "undo of the restore did not return the newer state"

log "marks"
"$CAIRN" cdp mark h "after undo" -r "$R"
"$CAIRN" cdp list h --json -r "$R" | jget '[m["label"] for m in d["marks"]]' | qgrep "after undo" || fail "mark not listed"

log "bad input fails clearly and changes nothing"
expect_fail "past the last write" "$CAIRN" export "h@seq:99999999" "$T/x.img" -r "$R"
expect_fail "no snapshot named 'nope'" "$CAIRN" export h@nope "$T/x.img" -r "$R"
expect_fail "in the future" "$CAIRN" export h@2099-01-01T00:00:00Z "$T/x.img" -r "$R"
expect_fail "older than the retained history" "$CAIRN" export h@2001-01-01T00:00:00Z "$T/x.img" -r "$R"
expect_fail "is invalid" "$CAIRN" export "h@seq:x" "$T/x.img" -r "$R"
expect_fail "already has a snapshot named 's1'" "$CAIRN" snapshot create h --name s1 -r "$R"
expect_fail "snapshot name" "$CAIRN" snapshot create h --name "bad/name" -r "$R"
expect_fail "another volume" "$CAIRN" restore h c1@seq:1 -r "$R"
expect_fail "being served" "$CAIRN" import h "$T/s1.img" -r "$R"
expect_fail "no volume named 'zz'" "$CAIRN" snapshot list zz -r "$R"
expect_fail "cannot write the image" "$CAIRN" export h "$T/no/such/dir/x.img" -r "$R"
[ ! -e "$T/x.img" ] || fail "a failed export left a file behind"
"$CAIRN" export h "$T/u2.img" -r "$R" >/dev/null
cmp -s "$T/u2.img" "$T/newer.img" || fail "failed commands changed the volume"

log "snapshot delete; source deleted: the clone stays intact"
"$CAIRN" snapshot delete h s1 -r "$R"
expect_fail "no snapshot named 's1'" "$CAIRN" snapshot delete h s1 -r "$R"
"$CAIRN" export c1 "$T/c1a.img" -r "$R" >/dev/null
"$CAIRN" volume delete h -r "$R" >/dev/null
"$CAIRN" export c1 "$T/c1b.img" -r "$R" >/dev/null
cmp -s "$T/c1a.img" "$T/c1b.img" || fail "the clone changed when its source was deleted"
stop_daemon

log "without a daemon: the same history from the repository and the state dir"
"$CAIRN" export c1 "$T/c1c.img" -r "$R" --state-dir "$S" >/dev/null
cmp -s "$T/c1a.img" "$T/c1c.img" || fail "clone read without the daemon differs"
"$CAIRN" import c1 "$T/s1.img" -r "$R" --state-dir "$S" >/dev/null
"$CAIRN" export c1 "$T/c1d.img" -r "$R" --state-dir "$S" >/dev/null
cmp -s "$T/c1d.img" "$T/s1.img" || fail "import then export does not round-trip"
head -c 20M /dev/zero >"$T/big.img"
expect_fail "larger than volume" "$CAIRN" import c1 "$T/big.img" -r "$R" --state-dir "$S"
echo "history test passed"
