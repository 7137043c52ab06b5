#!/bin/bash
# Durability: kill -9 of `cairn serve` at random moments while two initiators write
# (libiscsi, with FUA and SYNCHRONIZE CACHE mixed in), and torn journal tails made by
# the test. After each restart every acknowledged write is present (kill -9 keeps the
# page cache), and after a torn tail every flushed one is; each earlier round's data
# still verifies. Retained points in time still match the oracle after each restart:
# the snapshot taken while the round's writers ran (exactly the first K writes of each,
# K between those acknowledged before it and those issued when it returned; with one
# writer, exactly the writes below its seq), a seq: point (one writer) or a time point
# (two writers). Rounds: CAIRN_CRASH_ROUNDS (default 6; CAIRN_LONG=1 makes it 40).
source "$(dirname "$0")/lib.sh"
R=$T/repo
ROUNDS=${CAIRN_CRASH_ROUNDS:-$([ -n "${CAIRN_LONG:-}" ] && echo 40 || echo 6)}
REGION=32768 # blocks (16 MiB) per writer per round
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create crash --size $(( (ROUNDS + 1) * 2 * REGION * 512 )) --chunk-size 64K -r "$R" >/dev/null
oracles=()
RANDOM=4242

for round in $(seq 1 "$ROUNDS"); do
	start_daemon "$R" "$T/state"
	B=$("$CAIRN" cdp list crash --json -r "$R" | jget 'd["next_seq"]')
	tear=$(( round % 2 == 0 ))
	nwriters=$([ $tear = 1 ] && echo 1 || echo 2)
	pids=()
	for w in $(seq 1 $nwriters); do
		o=$T/oracle.$round.$w
		start=$(( (round * 2 + w - 1) * REGION ))
		"$ORACLE" write "$(url crash)" --oracle "$o" --seed $((round * 10 + w)) \
			--start $start --blocks $REGION --count 100000 --mix >"$o.log" 2>&1 &
		pids+=($!)
	done
	sleep "0.$(( 3 + RANDOM % 7 ))"
	# a snapshot while they write: it holds the first K writes of each writer, K at least
	# those acknowledged before it started, at most those issued when it returned
	k1s=()
	for w in $(seq 1 $nwriters); do k1s+=("$(grep -c '^A' "$T/oracle.$round.$w" || true)"); done
	"$CAIRN" snapshot create crash --name "r$round" -r "$R" >/dev/null || fail "round $round: snapshot failed"
	for w in $(seq 1 $nwriters); do
		echo "${k1s[$((w - 1))]} $(grep -c '^I' "$T/oracle.$round.$w" || true)" >"$T/snap.$round.$w"
	done
	sleep "$(( RANDOM % 2 )).$(( RANDOM % 10 ))"
	kill9_daemon
	for p in "${pids[@]}"; do
		rc=0; wait "$p" || rc=$?
		[ $rc = 3 ] || [ $rc = 0 ] || fail "oracle writer failed with $rc: $(cat "$T"/oracle.$round.*.log)"
	done
	mode=--strict
	if [ $tear = 1 ]; then
		mode=
		seg=$(ls "$T"/state/*/journal/*.log 2>/dev/null | sort | tail -1)
		[ -n "$seg" ] || fail "no journal segment found under $T/state"
		o=$T/oracle.$round.1
		# The journal's newest record is the newest acknowledged write or the one in
		# flight (which may not have reached it). Cut only into records that are not
		# durable, and never more than the smaller of them: never past a durable one.
		# (writes acknowledged before the snapshot are durable too: it synced them)
		safe=$(python3 - "$o" "$(awk '{print $1}' "$T/snap.$round.1")" <<'PY'
import sys
snap_durable = int(sys.argv[2])
w, acked, flushed_upto = {}, set(), -1
for line in open(sys.argv[1]):
    f = line.split()
    # a write's record holds its data (n sectors); an UNMAP or WRITE SAME record (kind
    # != 0) holds little or none: only a cut shorter than a record header (48 bytes)
    # surely stays inside it
    if f[0] == "I": w[int(f[1])] = (int(f[3]) * 512 if f[6] == "0" else 48, f[4] == "1")
    elif f[0] == "A": acked.add(int(f[1]))
    elif f[0] == "F": flushed_upto = int(f[1])
if not acked:
    print(0); sys.exit()
last = max(acked)
durable = lambda i: w[i][1] or i <= flushed_upto or i < snap_durable
inflight = [i for i in w if i not in acked and i > last]
cands = [last] + inflight
print(0 if durable(last) else min(w[i][0] for i in cands))
PY
)
		if [ "$safe" -gt 0 ]; then
			cut=$(( 1 + RANDOM % safe ))
			size=$(stat -c %s "$seg")
			[ $cut -lt "$size" ] || cut=$(( size / 2 ))
			truncate -s $(( size - cut )) "$seg"
			echo "round $round: tore $cut bytes off $(basename "$seg")"
		else
			head -c $(( 1 + RANDOM % 3000 )) /dev/urandom >>"$seg"
			echo "round $round: appended garbage to $(basename "$seg")"
		fi
	fi
	oracles+=("$T/oracle.$round.1")
	[ $nwriters = 2 ] && oracles+=("$T/oracle.$round.2")
	start_daemon "$R" "$T/state"
	for o in "$T"/oracle.$round.*[0-9]; do
		"$ORACLE" verify "$(url crash)" --oracle "$o" $mode || fail "round $round: $o does not verify ($mode)"
	done
	for o in "${oracles[@]}"; do
		case $o in "$T"/oracle.$round.*) continue ;; esac
		"$ORACLE" verify "$(url crash)" --oracle "$o" >/dev/null || fail "round $round: older $o no longer verifies"
	done
	echo "round $round: $(grep -c '^A' "$T"/oracle.$round.1) + acknowledged writes verified"
	# retained points in time of this round
	pt0=$(date +%s%N)
	S=$("$CAIRN" snapshot list crash --json -r "$R" | jget "[s['seq'] for s in d if s['name']=='r$round'][0]")
	"$CAIRN" export "crash@r$round" - -r "$R" >"$T/p.img" || fail "round $round: snapshot r$round does not open"
	for w in $(seq 1 $nwriters); do
		read -r k1 k2 <"$T/snap.$round.$w"
		"$ORACLE" check-image "$T/p.img" --oracle "$T/oracle.$round.$w" --writes-range "$k1" "$k2" >/dev/null ||
			fail "round $round: snapshot r$round is not the first $k1..$k2 writes of writer $w"
	done
	if [ $nwriters = 1 ]; then
		"$ORACLE" check-image "$T/p.img" --oracle "$T/oracle.$round.1" --seq-base "$B" --seq "$S" >/dev/null ||
			fail "round $round: snapshot r$round (seq $S) differs from the oracle"
		# a seq: point before a durable write (one the tear cannot have cut)
		q=$(python3 - "$T/oracle.$round.1" "$(awk '{print $1}' "$T/snap.$round.1")" "$RANDOM" <<'PY'
import sys
w, rank, r, flushed = {}, {}, 0, -1
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "I": w[int(f[1])] = f[4] == "1"
    elif f[0] == "A": rank[int(f[1])] = r; r += 1
    elif f[0] == "F": flushed = int(f[1]); r += 1
snap = int(sys.argv[2])
ok = [i for i in rank if w[i] or i <= flushed or i < snap]
print(rank[ok[int(sys.argv[3]) % len(ok)]] if ok else -1)
PY
)
		if [ "$q" -ge 0 ]; then
			"$CAIRN" export "crash@seq:$((B + q))" - -r "$R" >"$T/p.img" || fail "round $round: seq:$((B + q)) does not open"
			"$ORACLE" check-image "$T/p.img" --oracle "$T/oracle.$round.1" --seq-base "$B" --seq "$((B + q))" >/dev/null ||
				fail "round $round: point seq:$((B + q)) differs from the oracle"
		fi
		what="snapshot r$round and seq:$((B + q))"
	else
		read -r when k < <("$ORACLE" pick-times --oracle "$T/oracle.$round.1" --count 1)
		"$CAIRN" export "crash@$when" - -r "$R" >"$T/p.img" || fail "round $round: point $when does not open"
		"$ORACLE" check-image "$T/p.img" --oracle "$T/oracle.$round.1" --writes "$k" >/dev/null ||
			fail "round $round: point $when (after $k writes) differs from the oracle"
		what="snapshot r$round and $when"
	fi
	echo "round $round: $what match the oracle ($(( ($(date +%s%N) - pt0) / 1000000 )) ms)"
	stop_daemon
done
echo "$ROUNDS crash rounds passed"
