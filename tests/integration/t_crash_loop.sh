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
		last=$(tail -1 "$o")
		if [[ $last =~ ^I\ ([0-9]+)\ ([0-9]+)\ ([0-9]+)\ ([01]) ]] || \
		   { [[ $last =~ ^A\ ([0-9]+) ]] && prev=$(grep "^I ${BASH_REMATCH[1]} " "$o") && [[ $prev =~ ^I\ ([0-9]+)\ ([0-9]+)\ ([0-9]+)\ 0 ]]; }; then
			# the newest record is not durable: cut into it (never past its start)
			n=${BASH_REMATCH[3]}
			cut=$(( 1 + RANDOM % (n * 512) ))
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
