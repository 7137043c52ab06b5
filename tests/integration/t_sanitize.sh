#!/bin/bash
# t_sanitize.sh - SANITIZE leaves nothing of the LU's earlier data anywhere: not on the
# LUN, not in its CDP history, not in the repository, not in the state directory.
#
# In a plain local repository (so the packs hold data as LZ4 literals a grep can find),
# volume a gets data with a unique marker M1 written through iSCSI, CDP points (a mark,
# several writes, a snapshot taken before M1 was written) and, after a clean restart,
# journal segments stored in the repository; volume b holds a chunk-aligned copy of the
# part of a that carries marker M2 (deduplicated: the same chunks). The test first proves
# that M1 is found in the repository and the state directory. Then (real libiscsi
# sessions, tests/tools/iscsi_sanitize):
#   - CRYPTO ERASE is refused (INVALID FIELD IN CDB);
#   - SANITIZE OVERWRITE with pattern 0xA5 (IMMED): TEST UNIT READY answers SANITIZE IN
#     PROGRESS until it ends, then a reads 0xA5 everywhere, `cdp list` shows no history
#     before the sanitize, an export of an earlier seq fails with a clear error, M1 is
#     found nowhere under the repository or the state directory, b still reads intact
#     and M2 is still in the repository's packs, the snapshot still reads as it was, and
#     `cairn check --read-data` passes;
#   - BLOCK ERASE of a after new data (marker M4): zeros, M4 gone, old points gone;
#   - kill -9 of the daemon in the middle of a SANITIZE OVERWRITE of a 512 MiB volume
#     holding marker M5: after the restart the LUN answers SANITIZE IN PROGRESS, the
#     sanitize resumes (from its recorded position, or its purge) and completes: the
#     volume reads the pattern, M5 is gone, check passes.
source "$(dirname "$0")/lib.sh"
SAN=$BUILD/tests/tools/iscsi_sanitize
[ -x "$SAN" ] || fail "missing $SAN (build the test tools)"
R=$T/repo
ST=$T/state
M1=CAIRN-SANITIZE-M1-$RANDOM$RANDOM-gone
M2=CAIRN-SANITIZE-M2-$RANDOM$RANDOM-shared
M4=CAIRN-SANITIZE-M4-$RANDOM$RANDOM-gone
M5=CAIRN-SANITIZE-M5-$RANDOM$RANDOM-gone

"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create -r "$R" a --size 8M >/dev/null
"$CAIRN" volume create -r "$R" b --size 8M >/dev/null
"$CAIRN" volume create -r "$R" big --size 512M >/dev/null

# mkdata FILE SIZE_MIB MARKER FROM_MIB TO_MIB: random data, MARKER in every 4 KiB block
# of [FROM, TO) MiB (each at its own offset inside the block)
mkdata() {
	python3 - "$@" <<'EOF'
import os, sys
path, size, marker, lo, hi = sys.argv[1], int(sys.argv[2]) << 20, sys.argv[3].encode(), int(sys.argv[4]) << 20, int(sys.argv[5]) << 20
b = bytearray(os.urandom(size))
for off in range(lo, hi, 4096):
    p = off + (off // 4096 * 37) % 3000
    b[p:p + len(marker)] = marker
open(path, 'wb').write(b)
EOF
}
# pattern FILE SIZE_MIB BYTE
pattern() { python3 -c "import sys; open(sys.argv[1],'wb').write(bytes([int(sys.argv[3])]) * (int(sys.argv[2]) << 20))" "$@"; }
# found MARKER DIR...: the files holding MARKER (none: empty output)
found() { local m=$1; shift; grep -rl --binary-files=text -F -- "$m" "$@" 2>/dev/null || true; }
cdp_json() { "$CAIRN" cdp list -r "$R" "$1" --json; }
jfield() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }
san() { "$SAN" "$(url "$1")" "${@:2}"; }
# wait_done VOL: SANITIZE IN PROGRESS until it ends; then the LUN must be ready
wait_done() {
	local out
	out=$(san "$1" wait 300) || fail "sanitize of $1 did not end: $out"
	out=$(san "$1" tur)
	[ "$out" = ready ] || fail "$1 is not ready after its sanitize: $out"
}

mkdata "$T/a0.img" 8 none-here 0 0
mkdata "$T/a.img" 8 "$M1" 4 8
python3 - "$T/a.img" "$M2" "$T/b.img" <<'EOF'
import sys
a = bytearray(open(sys.argv[1], 'rb').read())
m = sys.argv[2].encode()
for off in range(0, 4 << 20, 4096):   # M2 in the first half of a, which b copies
    p = off + 1000
    a[p:p + len(m)] = m
open(sys.argv[1], 'wb').write(a)
open(sys.argv[3], 'wb').write(bytes(a[:4 << 20]) + bytes(4 << 20))
EOF
pattern "$T/a5.img" 8 165
pattern "$T/zero.img" 8 0

start_daemon "$R" "$ST"
log "history of a: old data, a snapshot of it, then data with M1, a mark, more writes"
qemu-img convert -n -f raw -O raw "$T/a0.img" "$(url a)"
"$CAIRN" snapshot create -r "$R" a --name keep >/dev/null
qemu-img convert -n -f raw -O raw "$T/a.img" "$(url a)"
"$CAIRN" cdp mark -r "$R" a with-m1 >/dev/null
early=$(cdp_json a | jfield "['last_seq']")
qemu-io -f raw -c "write -P 0x33 0 64k" "$(url a)" >/dev/null
qemu-io -f raw -c "write -P 0x34 1M 64k" "$(url a)" >/dev/null
python3 - "$T/a.img" <<'EOF'
import sys
a = bytearray(open(sys.argv[1], 'rb').read())
a[0:65536] = b'\x33' * 65536
a[1 << 20:(1 << 20) + 65536] = b'\x34' * 65536
open(sys.argv[1], 'wb').write(a)
EOF
qemu-img convert -n -f raw -O raw "$T/b.img" "$(url b)"
qemu-img compare -q -f raw -F raw "$T/a.img" "$(url a)" || fail "a does not read what was written"
"$CAIRN" export -r "$R" "a@seq:$early" "$T/early.img" >/dev/null || fail "export of a@seq:$early failed before the sanitize"
[ -n "$(found "$M1" "$T/early.img")" ] || fail "the point seq:$early does not hold M1"

log "clean restart: the journal goes to the repository too"
stop_daemon
# the stored segments are thin (M1's chunks named by id, the chunks in the packs): the
# point read from the repository alone, through an empty state directory, holds M1
"$CAIRN" export -r "$R" --state-dir "$T/fresh-state" "a@seq:$early" "$T/early2.img" >/dev/null ||
	fail "export of a@seq:$early from the repository alone failed before the sanitize"
[ -n "$(found "$M1" "$T/early2.img")" ] || fail "M1 is not in the stored journal before the sanitize"
rm -rf "$T/fresh-state" "$T/early2.img"
start_daemon "$R" "$ST"
[ "$(cdp_json a | jfield "['repo_segments']")" -ge 1 ] || fail "no journal segment of a is stored in the repository"
[ -n "$(found "$M1" "$R/packs")" ] || fail "M1 is not in the packs before the sanitize (the check would prove nothing)"
[ -n "$(found "$M1" "$ST")" ] || fail "M1 is not in the state directory before the sanitize"
[ -n "$(found "$M2" "$R/packs")" ] || fail "M2 is not in the packs"
old_last=$(cdp_json a | jfield "['last_seq']")

log "CRYPTO ERASE is refused: keys are the repository's, shared by every volume"
out=$(san a crypto-erase)
[ "$out" = "sanitize CHECK CONDITION ILLEGAL_REQUEST 0x2400" ] || fail "crypto erase: $out"

log "SANITIZE OVERWRITE 0xA5 (IMMED)"
out=$(san a overwrite 165 immed)
[ "$out" = "sanitize GOOD" ] || fail "overwrite: $out"
wait_done a
qgrep "LUN a: SANITIZE done" "$T/serve.log" || fail "the daemon did not log the end of the sanitize"
qemu-img compare -q -f raw -F raw "$T/a5.img" "$(url a)" || fail "a does not read the pattern 0xA5"
j=$(cdp_json a)
echo "$j" | jfield "['first_seq'], d['records'], d['repo_segments'], len(d['marks']), len(d['points'])"
[ "$(echo "$j" | jfield "['first_seq']")" -gt "$old_last" ] || fail "cdp list shows history from before the sanitize: $j"
[ "$(echo "$j" | jfield "['repo_segments']")" = 0 ] || fail "journal segments from before the sanitize are still stored: $j"
[ "$(echo "$j" | jfield "['marks'].__len__()")" = 0 ] || fail "the mark from before the sanitize is still listed: $j"
"$CAIRN" cdp list -r "$R" a
expect_fail "older than the retained history" "$CAIRN" export -r "$R" "a@seq:$early" "$T/x.img"
expect_fail "older than the retained history" "$CAIRN" export -r "$R" "a@seq:$old_last" "$T/x.img"
f=$(found "$M1" "$R" "$ST")
[ -z "$f" ] || fail "M1 is still found after the sanitize in: $f"
qemu-img compare -q -f raw -F raw "$T/b.img" "$(url b)" || fail "b (sharing chunks with a) changed"
[ -n "$(found "$M2" "$R/packs")" ] || fail "the chunks b shares with a's old data were deleted"
"$CAIRN" export -r "$R" a@keep "$T/keep.img" >/dev/null || fail "the snapshot keep cannot be exported"
cmp -s "$T/a0.img" "$T/keep.img" || fail "the snapshot keep changed"
"$CAIRN" check -r "$R" --read-data >/dev/null || fail "check --read-data fails after the sanitize"

log "BLOCK ERASE after new data with M4"
mkdata "$T/a4.img" 8 "$M4" 0 8
qemu-img convert -n -f raw -O raw "$T/a4.img" "$(url a)"
mid=$(cdp_json a | jfield "['last_seq']")
stop_daemon
start_daemon "$R" "$ST"
[ -n "$(found "$M4" "$R/packs")" ] || fail "M4 is not in the packs before the block erase"
out=$(san a block-erase)
[ "$out" = "sanitize GOOD" ] || fail "block erase: $out"
out=$(san a tur)
[ "$out" = ready ] || fail "a is not ready after its (waited) block erase: $out"
qemu-img compare -q -f raw -F raw "$T/zero.img" "$(url a)" || fail "a does not read zeros after the block erase"
expect_fail "older than the retained history" "$CAIRN" export -r "$R" "a@seq:$mid" "$T/x.img"
f=$(found "$M4" "$R" "$ST")
[ -z "$f" ] || fail "M4 is still found after the block erase in: $f"
qemu-img compare -q -f raw -F raw "$T/b.img" "$(url b)" || fail "b changed"

log "kill -9 during a SANITIZE OVERWRITE of 512 MiB, then restart: it completes"
mkdata "$T/m5.img" 8 "$M5" 0 8
qemu-img convert -n -f raw -O raw "$T/m5.img" "$(url big)"
sleep 1
out=$(san big overwrite 90 immed)
[ "$out" = "sanitize GOOD" ] || fail "overwrite of big: $out"
killed=
for _ in $(seq 1 600); do
	out=$(san big tur)
	case $out in
	sanitizing*) p=${out#sanitizing }; if [ "$p" -ge 40 ]; then kill9_daemon; killed=$p; break; fi ;;
	*) fail "the sanitize of big ended before the test could kill the daemon: $out" ;;
	esac
	sleep 0.1
done
[ -n "$killed" ] || fail "the sanitize of big never got to 40 %"
echo "  killed the daemon at $killed %"
start_daemon "$R" "$ST"
out=$(san big tur)
case $out in sanitizing*) echo "  after the restart: $out" ;; *) fail "big is not in SANITIZE IN PROGRESS after the restart: $out" ;; esac
qgrep "LUN big: resuming the SANITIZE OVERWRITE" "$T/serve.log" || fail "the daemon did not log the resume"
grep "resuming the SANITIZE" "$T/serve.log"
wait_done big
pattern "$T/p5a.img" 512 90
qemu-img compare -q -f raw -F raw "$T/p5a.img" "$(url big)" || fail "big does not read the pattern after the resumed sanitize"
rm -f "$T/p5a.img"
f=$(found "$M5" "$R" "$ST")
[ -z "$f" ] || fail "M5 is still found after the resumed sanitize in: $f"
qemu-img compare -q -f raw -F raw "$T/b.img" "$(url b)" || fail "b changed"
stop_daemon
f=$(found "$M1" "$R" "$ST"; found "$M4" "$R" "$ST"; found "$M5" "$R" "$ST")
[ -z "$f" ] || fail "a marker came back after the stop: $f"
"$CAIRN" check -r "$R" --read-data >/dev/null || fail "check --read-data fails at the end"
log "ok"
