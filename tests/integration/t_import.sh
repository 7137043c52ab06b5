#!/bin/bash
# t_import.sh - `cairn import` through the real binary, in an encrypted repository: whole
# chunks are stored by parallel workers and committed to the volume as COPY records once
# the store is flushed (volumes/volume_ingest.c), the short tail through the write path.
#   - a real ext4 image over a volume that held other data (some of it unfolded in the
#     journal after a kill -9 of the daemon) round-trips, the rest of the volume reads zero
#   - the history keeps the state before the import: export of that point, restore to it
#     and back
#   - a second import of the same image dedups; a tail shorter than a chunk; stdin
#   - a stream larger than the volume is refused and rolled back
#   - kill -9 of an import: the volume is the new image up to a committed segment (256 MiB)
#     and the old data after it, never a mix inside a segment; gc and check --read-data
#     pass afterwards
source "$(dirname "$0")/lib.sh"
R=$T/repo S=$T/state
IMG=$(cached_image usr-doc 512M /usr/include /usr/share/doc)
OLD=$(cached_image hdr 96M /usr/include/linux /usr/include/asm-generic)
printf 'import test password\n' >"$T/pw"
export CAIRN_PASSWORD_FILE=$T/pw
"$CAIRN" init -r "$R" --encrypt >/dev/null
"$CAIRN" volume create v --size 1G -r "$R" >/dev/null
"$CAIRN" volume create w --size 600M -r "$R" >/dev/null
"$CAIRN" volume create small --size 16M -r "$R" >/dev/null
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
last_seq() { "$CAIRN" cdp list "$1" -r "$R" --state-dir "$S" --json | jget 'd["last_seq"]'; }
# expect_image VOL@POINT FILE: the export's first |FILE| bytes are FILE, the rest zeros
expect_image() {
	"$CAIRN" export "$1" "$T/exp.img" -r "$R" --state-dir "$S" >/dev/null || fail "export $1"
	local n; n=$(stat -c %s "$2")
	cmp -s -n "$n" "$T/exp.img" "$2" || fail "$1: the first $n bytes differ from $2"
	python3 - "$T/exp.img" "$n" <<'PY' || fail "$1: not zero after the image"
import sys
f = open(sys.argv[1], 'rb'); f.seek(int(sys.argv[2]))
while True:
    b = f.read(1 << 20)
    if not b: break
    if b.count(0) != len(b): sys.exit(1)
PY
	rm -f "$T/exp.img"
}

log "old data through iSCSI, the daemon killed with writes unfolded"
start_daemon "$R" "$S"
qemu-img convert -n -f raw -O raw "$OLD" "$(url v)" || fail "qemu-img write"
qemu-io -f raw -c "write -P 0x5a 700M 3M" "$(url v)" >/dev/null || fail "qemu-io write"
kill9_daemon
head -c 700M /dev/zero >"$T/old.img"
dd if="$OLD" of="$T/old.img" conv=notrunc status=none
python3 -c "import sys; open(sys.argv[1],'ab').write(b'\x5a' * (3 << 20))" "$T/old.img"
expect_image v "$T/old.img"
before=$(last_seq v)

log "import a real ext4 image over it"
"$CAIRN" import v "$IMG" -r "$R" --state-dir "$S" >"$T/imp.out" || fail "import"
cat "$T/imp.out"
qgrep "imported .* (536870912 bytes" "$T/imp.out" || fail "import did not report its size"
expect_image v "$IMG"
"$CAIRN" export v "$T/exp2.img" -r "$R" --state-dir "$S" >/dev/null
same_tree "$T/exp2.img" "$(image_src usr-doc)/include" "$(image_src usr-doc)/doc"
rm -f "$T/exp2.img"
jsz=$(du -sk "$S" | cut -f1)
[ "$jsz" -lt 65536 ] || fail "the import left $jsz KiB in the state dir: its data went through the journal"

log "the state before the import is a point in the history"
expect_image "v@seq:$((before + 1))" "$T/old.img"
"$CAIRN" restore v "v@seq:$((before + 1))" -r "$R" --state-dir "$S" >/dev/null || fail "restore"
expect_image v "$T/old.img"
after_restore=$(last_seq v)
"$CAIRN" restore v "v@seq:$after_restore" -r "$R" --state-dir "$S" >/dev/null || fail "undo restore"
expect_image v "$IMG"

log "a second import of the same image dedups; a short tail; stdin"
size1=$(du -sb "$R" | cut -f1)
"$CAIRN" import w "$IMG" -r "$R" --state-dir "$S" >/dev/null || fail "import w"
size2=$(du -sb "$R" | cut -f1)
python3 -c "import sys; g=($size2-$size1)/$size1; print(f'second import grew the repository by {g*100:.2f}%'); sys.exit(0 if g < 0.02 else 1)" ||
	fail "the second import of the same image did not dedup"
expect_image w "$IMG"
head -c $(( (5 << 20) + 4608 )) "$IMG" >"$T/tail.img"
"$CAIRN" import small "$T/tail.img" -r "$R" --state-dir "$S" >/dev/null || fail "import tail"
expect_image small "$T/tail.img"
head -c $(( 9 << 20 )) "$OLD" | "$CAIRN" import small - -r "$R" --state-dir "$S" >/dev/null || fail "import stdin"
head -c $(( 9 << 20 )) "$OLD" >"$T/nine.img"
expect_image small "$T/nine.img"

log "a stream larger than the volume is refused and rolled back"
expect_fail "larger than|16M" sh -c "head -c 20M '$IMG' | '$CAIRN' import small - -r '$R' --state-dir '$S'"
expect_image small "$T/nine.img"

log "kill -9 during an import: whole committed segments, old data after them"
python3 - "$T/new.img" <<'PY'
import random, sys
random.seed(7)
with open(sys.argv[1], 'wb') as f:
    for i in range(512):
        f.write(random.randbytes(1 << 20))
PY
"$CAIRN" export v "$T/cur.img" -r "$R" --state-dir "$S" >/dev/null
volid=$("$CAIRN" volume list -r "$R" --json | jget '[x["id"] for x in d if x["name"]=="v"][0]')
jdir=$S/$volid
j0=$(du -sb "$jdir" | cut -f1)
"$CAIRN" import v "$T/new.img" -r "$R" --state-dir "$S" >/dev/null 2>"$T/crash.err" &
ipid=$!
# The first commit appends about 128 KiB of COPY records (4096 chunk ids): kill then.
for _ in $(seq 600); do
	[ $(( $(du -sb "$jdir" | cut -f1) - j0 )) -gt 100000 ] && break
	kill -0 $ipid 2>/dev/null || break
	sleep 0.05
done
kill -9 $ipid 2>/dev/null || true
wait $ipid 2>/dev/null || true
"$CAIRN" export v "$T/crashed.img" -r "$R" --state-dir "$S" >/dev/null || fail "export after the crash"
python3 - "$T/crashed.img" "$T/new.img" "$T/cur.img" <<'PY' || fail "the volume after the crash is not new data up to a segment boundary and old data after"
import sys
got, new, old = (open(p, 'rb') for p in sys.argv[1:4])
seg = 256 << 20
k = None
for s in range(0, (1 << 30) // seg):
    g = got.read(seg)
    n = new.read(seg) if s < 2 else None
    o = old.read(seg)
    if n is not None and g == n and k is None:
        continue
    if k is None:
        k = s
    if g != o:
        print(f"segment {s}: neither the new nor the old data"); sys.exit(1)
print(f"after the kill: {k if k is not None else 2} of 2 segments imported")
PY
"$CAIRN" gc -r "$R" --state-dir "$S" --grace 0 >/dev/null || fail "gc after the crash"
"$CAIRN" check --read-data -r "$R" --state-dir "$S" >"$T/check.out" 2>&1 || { cat "$T/check.out"; fail "check after the crash"; }
"$CAIRN" import v "$T/new.img" -r "$R" --state-dir "$S" >/dev/null || fail "import after the crash"
expect_image v "$T/new.img"
echo "import test passed"
