#!/bin/bash
# EXTENDED COPY (VAAI clone) through a real initiator (tests/tools/iscsi_xcopy, libiscsi)
# on volumes holding a real ext4 image written with qemu-img: a 256 MiB chunk-aligned
# copy inside one LUN and a 64 MiB copy to a second LUN (another volume) share chunks by
# reference: the destination reads back equal to the source, while the repository's
# stored bytes and the volumes' journals grow by (almost) nothing (a copy that moved
# the data would journal 320 MiB); unaligned and misaligned copies come back equal too.
# Points before and after the copies stay exact (also once the source is overwritten,
# after a kill -9, and after gc); a copy flushed just before a kill -9 of the daemon is
# there after the restart; cairn check passes.
source "$(dirname "$0")/lib.sh"
R=$T/repo
S=$T/state
XC=$BUILD/tests/tools/iscsi_xcopy
MiB=1048576
B=2048 # blocks per MiB
IMG=$(cached_image usr-doc 512M /usr/include /usr/share/doc)
jget() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
A() { echo "iscsi://127.0.0.1:$PORT/$IQN:xc/0"; }
stored() { "$CAIRN" stats --json -r "$R" | jget 'd["stored_bytes"]'; }
jbytes() { du -sb "$S/$1/journal" | cut -f1; }
mark() { "$CAIRN" cdp mark a "$1" -r "$R" | sed -n 's/^marked a at seq \([0-9]*\):.*/\1/p'; }

"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create a --size 1G -r "$R" >/dev/null
"$CAIRN" volume create b --size 512M -r "$R" >/dev/null
IDA=$("$CAIRN" volume list --json -r "$R" | jget '[v["id"] for v in d if v["name"]=="a"][0]')
IDB=$("$CAIRN" volume list --json -r "$R" | jget '[v["id"] for v in d if v["name"]=="b"][0]')
CF=$T/cairn.conf
"$CAIRN" target add --config "$CF" $IQN:xc >/dev/null
"$CAIRN" lun add --config "$CF" $IQN:xc 0 a >/dev/null
"$CAIRN" lun add --config "$CF" $IQN:xc 1 b >/dev/null

log "a filesystem image at 0 of LUN 0 (volume a), an old destination at 512 MiB"
start_daemon "$R" "$S" --config "$CF"
qemu-img convert -n -f raw -O raw "$IMG" "$(A)"
qemu-io -f raw -c "write -P 0x5a 512M 8M" "$(A)" >/dev/null
S0=$(mark before-copy)
[ -n "$S0" ] || fail "no seq from cdp mark"
stop_daemon
st0=$(stored); ja0=$(jbytes "$IDA"); jb0=$(jbytes "$IDB")

log "aligned copies by reference: 256 MiB inside LUN 0, 64 MiB to LUN 1"
start_daemon "$R" "$S" --config "$CF"
"$XC" "$(A)" copy 0 $((512 * B)) $((256 * B)) --sync
"$XC" "$(A)" cmp 0 $((512 * B)) $((256 * B)) || fail "the 256 MiB copy differs from its source"
"$XC" "$(A)" copy $((16 * B)) 0 $((64 * B)) 1 --sync
"$XC" "$(A)" cmp $((16 * B)) 0 $((64 * B)) 1 || fail "the copy to LUN 1 differs from its source"
S1=$(mark after-copy)
stop_daemon
st1=$(stored); ja1=$(jbytes "$IDA"); jb1=$(jbytes "$IDB")
echo "stored bytes $st0 -> $st1 (+$((st1 - st0))); journal of a $ja0 -> $ja1 (+$((ja1 - ja0))), of b $jb0 -> $jb1 (+$((jb1 - jb0))) for 320 MiB copied"
[ $((st1 - st0)) -lt $((2 * MiB)) ] || fail "the aligned copies stored $((st1 - st0)) bytes: data was moved"
[ $((ja1 - ja0)) -lt $((2 * MiB)) ] || fail "the 256 MiB copy journaled $((ja1 - ja0)) bytes: data was moved"
[ $((jb1 - jb0)) -lt $((1 * MiB)) ] || fail "the copy to LUN 1 journaled $((jb1 - jb0)) bytes: data was moved"

log "unaligned copies: congruent head and tail, misaligned, overlapping"
start_daemon "$R" "$S" --config "$CF"
"$XC" "$(A)" copy $((64 * B + 7)) $((800 * B + 7)) 20000
"$XC" "$(A)" cmp $((64 * B + 7)) $((800 * B + 7)) 20000 || fail "the congruent unaligned copy differs"
"$XC" "$(A)" copy $((300 * B + 1)) $((850 * B + 3)) 5001
"$XC" "$(A)" cmp $((300 * B + 1)) $((850 * B + 3)) 5001 || fail "the misaligned copy differs"
# overlapping, in one segment (segments run one after the other): up by 1 MiB + 1 block
# (misaligned), then down by 1 MiB (chunks shared); each compared with a copy made first
"$XC" "$(A)" copy $((96 * B)) $((900 * B)) 24000
"$XC" "$(A)" copy $((96 * B)) $((97 * B + 1)) 24000
"$XC" "$(A)" cmp $((900 * B)) $((97 * B + 1)) 24000 || fail "the overlapping copy upwards differs"
"$XC" "$(A)" copy $((130 * B)) $((930 * B)) 30000
"$XC" "$(A)" copy $((130 * B)) $((129 * B)) 30000
"$XC" "$(A)" cmp $((930 * B)) $((129 * B)) 30000 || fail "the overlapping copy downwards differs"

log "the source is overwritten; a flushed copy survives kill -9"
qemu-io -f raw -c "write -P 0x77 0 8M" "$(A)" >/dev/null
"$XC" "$(A)" copy $((160 * B)) $((960 * B)) $((32 * B)) --sync
kill9_daemon
start_daemon "$R" "$S" --config "$CF"
"$XC" "$(A)" cmp $((160 * B)) $((960 * B)) $((32 * B)) || fail "the copy flushed before kill -9 is not there"
stop_daemon

log "gc and check"
"$CAIRN" gc --grace 0 -r "$R" --state-dir "$S" >/dev/null
"$CAIRN" check -r "$R" || fail "cairn check after the copies"

log "points before and after the copies, and now"
"$CAIRN" export "a@seq:$S0" "$T/p0.img" -r "$R" --state-dir "$S" >/dev/null
"$CAIRN" export "a@seq:$S1" "$T/p1.img" -r "$R" --state-dir "$S" >/dev/null
"$CAIRN" export a "$T/now.img" -r "$R" --state-dir "$S" >/dev/null
python3 -c "import sys; sys.stdout.buffer.write(b'\x5a' * (8 << 20))" >"$T/p5a"
cmp -n $((512 * MiB)) "$IMG" "$T/p0.img" || fail "the point before the copy lost the image"
cmp -i 0:$((512 * MiB)) -n $((8 * MiB)) "$T/p5a" "$T/p0.img" || fail "the point before the copy shows the new destination"
cmp -i 0:$((512 * MiB)) -n $((256 * MiB)) "$IMG" "$T/p1.img" || fail "the point after the copy lacks it"
cmp -i 0:$((512 * MiB)) -n $((256 * MiB)) "$IMG" "$T/now.img" || fail "the copy changed with its overwritten source"
cmp -i $((160 * MiB)):$((960 * MiB)) -n $((32 * MiB)) "$IMG" "$T/now.img" || fail "the copy made before kill -9 differs from its source"
"$CAIRN" export b "$T/b.img" -r "$R" --state-dir "$S" >/dev/null
cmp -i $((16 * MiB)):0 -n $((64 * MiB)) "$IMG" "$T/b.img" || fail "the copy in volume b differs"
echo "ok: points seq:$S0 and seq:$S1 exact"
