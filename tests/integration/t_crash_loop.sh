#!/bin/bash
# Durability: kill -9 of `cairn serve` at random moments while two initiators write
# (libiscsi, with FUA and SYNCHRONIZE CACHE mixed in), and torn journal tails made by
# the test. After each restart every acknowledged write is present (kill -9 keeps the
# page cache), and after a torn tail every flushed one is; each earlier round's data
# still verifies. Rounds: CAIRN_CRASH_ROUNDS (default 6; CAIRN_LONG=1 makes it 40).
source "$(dirname "$0")/lib.sh"
R=$T/repo
ROUNDS=${CAIRN_CRASH_ROUNDS:-$([ -n "${CAIRN_LONG:-}" ] && echo 40 || echo 6)}
REGION=65536 # blocks (32 MiB) per writer per round
"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create crash --size $(( (ROUNDS + 1) * 2 * REGION * 512 )) --chunk-size 64K -r "$R" >/dev/null
oracles=()
RANDOM=4242

for round in $(seq 1 "$ROUNDS"); do
	start_daemon "$R" "$T/state"
	tear=$(( round % 2 == 0 ))
	nwriters=$([ $tear = 1 ] && echo 1 || echo 2)
	pids=()
	for w in $(seq 1 $nwriters); do
		o=$T/oracle.$round.$w
		start=$(( (round * 2 + w - 1) * REGION ))
		"$ORACLE" write "$(url crash)" --oracle "$o" --seed $((round * 10 + w)) \
			--start $start --blocks $REGION --count 100000 >"$o.log" 2>&1 &
		pids+=($!)
	done
	sleep "$(( 1 + RANDOM % 3 )).$(( RANDOM % 10 ))"
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
		safe=$(python3 - "$o" <<'PY'
import sys
w, acked, flushed_upto = {}, set(), -1
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "I": w[int(f[1])] = (int(f[3]), f[4] == "1")
    elif f[0] == "A": acked.add(int(f[1]))
    elif f[0] == "F": flushed_upto = int(f[1])
if not acked:
    print(0); sys.exit()
last = max(acked)
durable = lambda i: w[i][1] or i <= flushed_upto
inflight = [i for i in w if i not in acked and i > last]
cands = [last] + inflight
print(0 if durable(last) else min(w[i][0] for i in cands) * 512)
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
	stop_daemon
done
echo "$ROUNDS crash rounds passed"
