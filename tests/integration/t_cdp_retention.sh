#!/bin/bash
# CDP retention and the journal kept in the repository, through the real daemon and a
# real initiator (libiscsi), in an encrypted repository. Windows of seconds stand for
# hours and days (`volume set --retain 2s --hourly 14s/2s --daily 24s/6s`): past the
# window the journal is dropped (locally and in the repository) and the history keeps
# one exact point per 2 s for 14 s and one per 6 s for 24 s; every kept point and a
# snapshot still equal the oracle. A copy of the repository with a fresh state
# directory opens every seq and time point of a volume with the default 24 h window.
source "$(dirname "$0")/lib.sh"
R=$T/repo
S=$T/state
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
echo "retention-test-password" >"$T/pw"
export CAIRN_PASSWORD_FILE=$T/pw
"$CAIRN" init --encrypt -r "$R" >/dev/null
"$CAIRN" volume create r --size 16M -r "$R" >/dev/null
"$CAIRN" volume create k --size 16M -r "$R" >/dev/null

log "retention is set per volume, stored, and shown"
"$CAIRN" volume set r --retain 2s --hourly 14s/2s --daily 24s/6s -r "$R"
[ "$("$CAIRN" volume list --json -r "$R" | jget '[v["retention"]["retain_s"] for v in d if v["name"]=="r"][0]')" = 2 ] ||
	fail "volume list does not show r's window"
[ "$("$CAIRN" volume list --json -r "$R" | jget '[v["retention"]["daily"] for v in d if v["name"]=="k"][0]')" = 30d ] ||
	fail "k does not have the default 30 d daily tier"
expect_fail "duration 'x' of --retain is invalid" "$CAIRN" volume set r --retain x -r "$R"
expect_fail "duration '1h/0' of --hourly is invalid" "$CAIRN" volume set r --hourly 1h/0 -r "$R"
expect_fail "no volume named 'zz'" "$CAIRN" volume set zz --retain 1h -r "$R"

start_daemon "$R" "$S"
"$CAIRN" volume set k --retain 48h -r "$R" | qgrep "every write for 2d" || fail "volume set through the daemon"
B=$("$CAIRN" cdp list r --json -r "$R" | jget 'd["next_seq"]')
BK=$("$CAIRN" cdp list k --json -r "$R" | jget 'd["next_seq"]')

log "paced writes for about 10 s, a snapshot on the way; writes with UNMAP / WRITE SAME on k"
"$ORACLE" write "$(url r)" --oracle "$T/or" --seed 3 --start 0 --blocks 32768 --count 200 --pace-ms 40 >"$T/or.log" 2>&1 &
opid=$!
"$ORACLE" write "$(url k)" --oracle "$T/ok" --seed 4 --start 0 --blocks 32768 --count 200 --mix >"$T/ok.log" 2>&1 ||
	fail "writer of k failed: $(cat "$T/ok.log")"
sleep 1
"$CAIRN" snapshot create r --name early -r "$R" >/dev/null
sleep 3
stored=$("$CAIRN" cdp list r --json -r "$R" | jget 'd["repo_segments"]')
[ "$stored" -ge 1 ] || fail "no sealed journal segment of r reached the repository while it was written"
wait $opid || fail "writer of r failed: $(cat "$T/or.log")"
t_end=$(date +%s)
SNAP=$("$CAIRN" snapshot list r --json -r "$R" | jget '[s["seq"] for s in d if s["name"]=="early"][0]')

# check_points MIN: every automatic point listed equals the oracle (points thinned while
# the check runs, as they age into the next tier, are skipped); at least MIN listed
check_points() {
	local n=0 q all
	all=$("$CAIRN" cdp list r --json -r "$R" | jget '" ".join(str(p["seq"]) for p in d["points"])')
	[ "$(echo $all | wc -w)" -ge "$1" ] || fail "only points '$all' listed, want $1 or more"
	for q in $all; do
		if ! "$CAIRN" export "r@seq:$q" "$T/p.img" -r "$R" >/dev/null 2>"$T/p.err"; then
			# thinned meanwhile (it aged into the next tier): then it is no longer listed
			"$CAIRN" cdp list r --json -r "$R" | jget '" ".join(str(p["seq"]) for p in d["points"])' |
				qgrep -w "$q" && fail "listed point seq:$q does not open: $(cat "$T/p.err")"
			continue
		fi
		"$ORACLE" check-image "$T/p.img" --oracle "$T/or" --seq-base "$B" --seq "$q" >/dev/null ||
			fail "point seq:$q differs from the oracle"
		n=$((n + 1))
	done
	echo "$n"
}

log "past the 2 s window: the journal is dropped, points stay exact"
# Retention runs in the checkpoint thread (a pass every 2 s at most) and drops the
# journal below the newest checkpoint older than the window: wait until the last
# checkpoint after the writes has aged out (all records dropped), not a fixed time.
for _ in $(seq 60); do
	[ "$("$CAIRN" cdp list r --json -r "$R" | jget 'd["last_seq"]')" = None ] && break
	sleep 0.5
done
"$CAIRN" cdp list r -r "$R"
"$CAIRN" cdp list r --json -r "$R" >"$T/cdp1.json"
first=$(jget 'd["first_seq"]' <"$T/cdp1.json")
[ "$first" -gt $((B + 100)) ] || fail "records older than the window were kept (first seq $first, writes from $B)"
rfirst=$(jget 'd["repo_first_seq"]' <"$T/cdp1.json")
[ "$rfirst" = None ] || [ "$rfirst" -gt $((B + 100)) ] || fail "the repository kept segments older than the window: first $rfirst"
t_first=$(awk '$1 == "I" { print int($6 / 1000000000); exit }' "$T/or")
expect_fail "older than the retained history" "$CAIRN" export "r@$(date -u -d @$((t_first + 1)) +%Y-%m-%dT%H:%M:%SZ)" "$T/x.img" -r "$R"
python3 - "$T/cdp1.json" <<'PY' || fail "points do not follow the hourly tier"
import json, sys, datetime
d = json.load(open(sys.argv[1]))
ts = [datetime.datetime.fromisoformat(p["time"].replace("Z", "+00:00")).timestamp() for p in d["points"]]
print("  points at", " ".join("%.1f" % (t % 100) for t in ts))
gaps = [b - a for a, b in zip(ts, ts[1:])]
assert len(ts) >= 3, "fewer than 3 points for 10 s of writes at one per 2 s"
assert len(ts) == len({int(t // 2) for t in ts}), "two points in one hourly period"
PY
n=$(check_points 2)
[ "$n" -ge 2 ] || fail "only $n automatic points could be checked"
echo "  $n points past the window match the oracle"
"$CAIRN" export r@early "$T/early.img" -r "$R" >/dev/null
"$ORACLE" check-image "$T/early.img" --oracle "$T/or" --seq-base "$B" --seq "$SNAP" >/dev/null ||
	fail "snapshot early (taken inside the old window) differs from the oracle"

log "later: thinned to one per 6 s past 14 s, nothing past 24 s"
while [ $(( $(date +%s) - t_end )) -lt 16 ]; do sleep 1; done
"$CAIRN" cdp list r --json -r "$R" >"$T/cdp2.json"
python3 - "$T/cdp2.json" <<'PY' || fail "points do not follow the hourly/daily tiers"
import json, sys, datetime, time
d = json.load(open(sys.argv[1]))
now = time.time()
def ts(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
ages = [(now - ts(p["time"]), ts(p["time"])) for p in d["points"]]
print("  point ages:", " ".join("%.1f" % a for a, _ in ages))
assert all(a < 24 + 2 for a, _ in ages), "a point older than the daily window"
old = [t for a, t in ages if a > 14 + 2]
assert len(old) == len({int(t // 6) for t in old}), "two points in one daily period"
mid = [t for a, t in ages if a < 14 - 1]
assert len(mid) == len({int(t // 2) for t in mid}), "two points in one hourly period"
PY
n=$(check_points 1)
[ "$n" -ge 1 ] || fail "no point left to check"
echo "  $n points match the oracle"
"$CAIRN" export r@early "$T/early2.img" -r "$R" >/dev/null
cmp -s "$T/early.img" "$T/early2.img" || fail "snapshot early changed"
stop_daemon

log "a copy of the repository and a fresh state directory keep k's history"
cp -a "$R" "$T/copy"
F=$T/fresh
EK=$("$CAIRN" cdp list k --json -r "$T/copy" --state-dir "$F" | jget 'd["next_seq"]')
[ "$("$CAIRN" cdp list k --json -r "$T/copy" --state-dir "$F" | jget 'd["repo_segments"]')" -ge 1 ] ||
	fail "no journal segment of k is stored in the repository"
n=0
for ((q = BK; q <= EK; q += 15)); do
	"$CAIRN" export "k@seq:$q" "$T/k.img" -r "$T/copy" --state-dir "$F" >/dev/null ||
		fail "k@seq:$q does not open from the copy"
	"$ORACLE" check-image "$T/k.img" --oracle "$T/ok" --seq-base "$BK" --seq "$q" >/dev/null ||
		fail "k@seq:$q from the copy differs from the oracle"
	n=$((n + 1))
done
"$ORACLE" pick-times --oracle "$T/ok" --count 4 >"$T/times"
while read -r when kk; do
	"$CAIRN" export "k@$when" "$T/k.img" -r "$T/copy" --state-dir "$F" >/dev/null
	"$ORACLE" check-image "$T/k.img" --oracle "$T/ok" --writes "$kk" >/dev/null ||
		fail "k@$when from the copy differs from the oracle"
done <"$T/times"
echo "  $n seq points and 4 time points of k match the oracle, read from the repository copy"
ls "$F"/*/jcache/*.log >/dev/null 2>&1 || fail "no segment was fetched into the fresh state directory"
[ ! -e "$F"/*/journal ] || true
grep -rqa "CJRD" "$T/copy/meta/journal" && fail "journal segments are stored in the clear in an encrypted repository"
echo "retention test passed"
