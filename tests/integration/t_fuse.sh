#!/bin/bash
# The history view (cairn mount): a real ext4 image and a GPT-partitioned disk go in
# through iSCSI, the disk is snapshotted and then overwritten; under the FUSE mount the
# snapshot's disk.img, the same point under at/<time> and seq/<N>, and current/part1.img
# of the GPT disk loop-mount read-only with the original trees, while current/ shows the
# overwrite; writes get EROFS; a damaged chunk is EIO for its range, not wrong data;
# SIGTERM and fusermount3 -u unmount cleanly; a stale mount point gets a clear error.
# A mount beside a serving daemon sees what the daemon stores after the mount opened (a
# new snapshot whose data is in packs written later: the index is refreshed on a miss),
# and a volume with 300 snapshots mounts and lists every one (metadata read on demand).
# (t_fuse_s3.sh: the same on encrypted and S3 repositories.)
source "$(dirname "$0")/lib.sh"
R=$T/repo
IMG=$(cached_image usr-doc 512M /usr/include /usr/share/doc)

log "a GPT disk with one ext4 partition at 1 MiB"
mkdir -p "$T/gsrc" && cp -a /usr/include/linux "$T/gsrc/"
truncate -s 300M "$T/gpt.img"
printf 'label: gpt\n,250M\n' | sfdisk -q "$T/gpt.img"
mkfs.ext4 -q -F -E offset=1048576 -d "$T/gsrc" "$T/gpt.img" 250M >/dev/null

"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create disk --size 512M -r "$R" >/dev/null
"$CAIRN" volume create gpt --size 300M -r "$R" >/dev/null
start_daemon "$R" "$T/state"
qemu-img convert -n -f raw -O raw "$IMG" "$(url disk)"
qemu-img convert -n -f raw -O raw "$T/gpt.img" "$(url gpt)"
"$CAIRN" snapshot create disk --name base -r "$R" >/dev/null
qemu-io -f raw -c "write -P 0x77 0 1M" "$(url disk)" >/dev/null   # the superblock is gone
"$CAIRN" cdp mark disk overwritten -r "$R" >/dev/null
stop_daemon                          # folds and checkpoints: "current" is complete

M=$T/mnt.view
mkdir -p "$M"
fuse_cleanup() {
	local rc=$?
	[ -n "${MPID:-}" ] && kill "$MPID" 2>/dev/null || true
	umount -l "$M" 2>/dev/null || true # a mount whose process died is stale: mountpoint -q misses it
	set +e # under set -e the failing status below would end the trap before cleanup
	(exit $rc)
	cleanup
}
trap fuse_cleanup EXIT
mount_view() {
	[ -f "$T/mount.log" ] && cat "$T/mount.log" >>"$T/mounts.log"
	"$CAIRN" mount -r "$R" --state-dir "$T/state" "$M" >"$T/mount.log" 2>&1 &
	MPID=$!
	for _ in $(seq 100); do mountpoint -q "$M" && return 0; sleep 0.1; done
	cat "$T/mount.log"; fail "cairn mount did not mount"
}
mount_view

log "layout"
[ "$(ls "$M")" = "$(printf 'disk\ngpt')" ] || fail "volumes not listed: $(ls "$M")"
[ "$(ls "$M/disk")" = "$(printf 'at\ncurrent\nseq\nsnapshots')" ] || fail "volume dir: $(ls "$M/disk")"
[ "$(ls "$M/disk/current")" = "$(printf 'disk.img\ninfo.json')" ] || fail "plain disk: $(ls "$M/disk/current")"
[ "$(ls "$M/gpt/current")" = "$(printf 'disk.img\ninfo.json\npart1.img')" ] || fail "GPT disk: $(ls "$M/gpt/current")"
[ "$(stat -c %s "$M/disk/current/disk.img")" = $((512 << 20)) ] || fail "disk.img size"
[ "$(stat -c %s "$M/gpt/current/part1.img")" = $((250 << 20)) ] || fail "part1.img size"
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['volume']=='gpt' and j['size']==300<<20 and j['partitions']==1, j" \
	"$M/gpt/current/info.json" || fail "info.json"

log "current shows the overwrite; the snapshot, at/ and seq/ show the image"
[ "$(head -c 1M "$M/disk/current/disk.img" | tr -d '\167' | wc -c)" = 0 ] || fail "current/ lacks the overwrite"
[ "$(ls "$M/disk/snapshots")" = base ] || fail "snapshots/: $(ls "$M/disk/snapshots")"
cmp "$IMG" "$M/disk/snapshots/base/disk.img" || fail "the snapshot's disk.img differs from the image written"
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['seq'] > 0 and 'snapshot base' in j['source'], j" \
	"$M/disk/snapshots/base/info.json" || fail "snapshot info.json"
snapseq=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seq'])" "$M/disk/snapshots/base/info.json")
ls "$M/disk/seq" | qgrep -x "$snapseq" || fail "seq/ does not list the snapshot's seq $snapseq: $(ls "$M/disk/seq")"
[ "$(ls "$M/disk/at" | wc -l)" = 2 ] || fail "at/ should list the snapshot and the mark: $(ls "$M/disk/at")"
snaptime=$(ls "$M/disk/at" | sort | head -1)
cmp "$IMG" "$M/disk/seq/$snapseq/disk.img" || fail "seq/$snapseq/disk.img differs"
cmp "$IMG" "$M/disk/at/$snaptime/disk.img" || fail "at/$snaptime/disk.img differs"
[ "$(stat -c %Y "$M/disk/snapshots/base/disk.img")" = "$(date -d "$snaptime" +%s)" ] || fail "file time is not the point's time"
same_tree "$M/disk/snapshots/base/disk.img" "$(image_src usr-doc)/include" "$(image_src usr-doc)/doc"
same_tree "$M/disk/at/$snaptime/disk.img" "$(image_src usr-doc)/include" "$(image_src usr-doc)/doc"
same_tree "$M/gpt/current/part1.img" "$T/gsrc/linux"
[ ! -e "$M/disk/seq/999999999" ] || fail "a seq past the end exists"
[ ! -e "$M/disk/at/2001-01-01T00:00:00Z" ] || fail "a time before the history exists"

log "read-only"
if echo x 2>/dev/null >>"$M/disk/current/disk.img"; then fail "a write to disk.img succeeded"; fi
err=$( (echo x >>"$M/disk/current/disk.img") 2>&1 || true)
echo "$err" | qgrep "Read-only file system" || fail "write did not get EROFS: $err"
[ ! -e "$M/nosuch" ] || fail "a missing volume exists"
[ ! -e "$M/disk/seq/abc" ] || fail "seq/abc exists"

log "fusermount3 -u unmounts, and the process exits 0"
fusermount3 -u "$M"
wait "$MPID" || fail "cairn mount exited non-zero after fusermount3 -u"
mountpoint -q "$M" && fail "still mounted"

log "SIGTERM unmounts cleanly"
mount_view
kill -TERM "$MPID"
rc=0; wait "$MPID" || rc=$?
mountpoint -q "$M" && fail "still mounted after SIGTERM"
[ $rc = 0 ] || fail "cairn mount exited $rc on SIGTERM"

log "a second mount on a live one is refused; a stale mount point gets a clear error"
mount_view
expect_fail "already a FUSE mount point" "$CAIRN" mount -r "$R" "$M"
kill -9 "$MPID"; wait "$MPID" 2>/dev/null || true
expect_fail "stale FUSE mount .*fusermount3 -u" "$CAIRN" mount -r "$R" "$M"
fusermount3 -u "$M" 2>/dev/null || umount -l "$M"
expect_fail "not an existing directory" "$CAIRN" mount -r "$R" "$T/nodir"

log "mounted beside a serving daemon: a snapshot of data stored after the mount opened reads right"
NEW=$(cached_image hdr 96M /usr/include/linux /usr/include/asm-generic)
start_daemon "$R" "$T/state"
mount_view
touch "$T/mounted"
qemu-img convert -n -f raw -O raw "$NEW" "$(url disk)"
# the daemon folds the writes into new packs and records a history checkpoint, which the
# snapshot's plan then starts from: its chunks are in packs the mount's index lacks
for _ in $(seq 600); do
	[ -n "$(find "$R/meta/history" -name 'ckpt.*' -newer "$T/mounted" -print -quit)" ] && break
	sleep 0.1
done
[ -n "$(find "$R/meta/history" -name 'ckpt.*' -newer "$T/mounted" -print -quit)" ] || fail "the daemon recorded no checkpoint of the new writes"
"$CAIRN" snapshot create disk --name after -r "$R" >/dev/null
ls "$M/disk/snapshots" | qgrep -x after || fail "the new snapshot is not listed: $(ls "$M/disk/snapshots")"
cmp -n "$(stat -c %s "$NEW")" "$NEW" "$M/disk/snapshots/after/disk.img" || fail "the new snapshot differs from the image written"
same_tree "$M/disk/snapshots/after/disk.img" "$(image_src hdr)/linux" "$(image_src hdr)/asm-generic"
qgrep "new pack(s) added to the index" "$T/mount.log" || { cat "$T/mount.log"; fail "the mount did not reload the index"; }
cmp "$IMG" "$M/disk/snapshots/base/disk.img" || fail "the old snapshot changed"

log "300 snapshots: the mount lists and opens every one"
seq 300 | xargs -P 4 -I{} "$CAIRN" snapshot create gpt --name s{} -r "$R" >/dev/null
fusermount3 -u "$M"
wait "$MPID" || fail "cairn mount exited non-zero"
mount_view
[ "$(ls "$M/gpt/snapshots" | wc -l)" = 300 ] || fail "snapshots/ lists $(ls "$M/gpt/snapshots" | wc -l) of 300"
[ "$(ls "$M/gpt/snapshots" | sort)" = "$(seq 300 | sed 's/^/s/' | sort)" ] || fail "snapshot names differ"
[ "$(ls "$M/gpt/at" | wc -l)" = 300 ] || fail "at/ lists $(ls "$M/gpt/at" | wc -l) of 300"
for n in 1 150 300; do
	[ "$(ls "$M/gpt/snapshots/s$n")" = "$(printf 'disk.img\ninfo.json\npart1.img')" ] || fail "snapshot s$n: $(ls "$M/gpt/snapshots/s$n")"
done
same_tree "$M/gpt/snapshots/s300/part1.img" "$T/gsrc/linux"
stop_daemon
fusermount3 -u "$M"
wait "$MPID" || fail "cairn mount exited non-zero"

log "a damaged chunk reads as EIO, never as wrong data"
# One byte flipped every 16 KiB of every pack: every stored chunk of 16 KiB or more is
# damaged, so the reads below meet damage whichever packs hold the current images (one
# flip in the middle of the largest pack could land in a chunk only an old state holds).
find "$R/packs" -type f | python3 -c '
import os, sys
for p in sys.stdin.read().split():
    n = os.path.getsize(p)
    with open(p, "r+b") as f:
        for off in range(8192, n, 16384):
            f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x5a]))
'

mount_view
rc=0; cat "$M/disk/current/disk.img" "$M/gpt/current/disk.img" >/dev/null 2>"$T/eio.err" || rc=$?
cat "$T/eio.err"
[ $rc != 0 ] && qgrep "Input/output error" "$T/eio.err" || fail "damaged data did not give EIO"
qgrep "read of .* failed" "$T/mount.log" || fail "the damaged range was not logged"
fusermount3 -u "$M"
wait "$MPID" || true
cat "$T/mount.log" >>"$T/mounts.log"
if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$T/mounts.log"; then
	grep -A30 "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$T/mounts.log" | head -60
	fail "sanitizer report in a mount's log"
fi
echo "FUSE view checks passed"
