#!/bin/bash
# Dedup and compression, measured on a real 1 GiB filesystem image (/usr/share):
# the same image written into a second volume grows the chunk store (packs and index)
# by < 5% of one copy, and the chunk store holding it is no bigger than `lz4 -1` of the
# image. The CDP history kept in the repository (sealed journal segments, every write
# of the retention window, LZ4-compressed) is measured and printed apart: it holds
# writes, not blocks, so it does not dedup across volumes, and retention expires it.
source "$(dirname "$0")/lib.sh"
R=$T/repo
IMG=$(cached_image usr-share 1G /usr/share)
"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create one --size 1G -r "$R" >/dev/null
"$CAIRN" volume create two --size 1G -r "$R" >/dev/null
# store_bytes: bytes of packs and index segments; journal_bytes: of the stored journal
store_bytes() { { du -scb "$R/packs" "$R/index" 2>/dev/null || true; } | tail -1 | cut -f1; }
journal_bytes() { { du -sb "$R/meta/journal" 2>/dev/null || echo 0; } | cut -f1; }
base=$(store_bytes)

start_daemon "$R" "$T/state"
qemu-img convert -n -f raw -O raw "$IMG" "$(url one)"
stop_daemon
size1=$(( $(store_bytes) - base ))

start_daemon "$R" "$T/state"
qemu-img convert -n -f raw -O raw "$IMG" "$(url two)"
qemu-img compare -f raw -F raw "$IMG" "$(url two)" || fail "second copy differs"
stop_daemon
size2=$(( $(store_bytes) - base ))

lz4size=$(lz4 -1 -c "$IMG" | wc -c)
growth=$(( size2 - size1 ))
echo "image $(stat -c %s "$IMG") bytes; chunk store after one copy $size1, after two $size2 (growth $growth); lz4 -1: $lz4size; stored CDP journal $(journal_bytes) bytes"
python3 -c "import sys; g=$growth/$size1; print(f'second copy grew the repository by {g*100:.2f}%'); sys.exit(0 if g < 0.05 else 1)" \
	|| fail "dedup: a second copy grew the repository by 5% or more"
[ "$size1" -le "$lz4size" ] || fail "compression: repository ($size1) is bigger than lz4 -1 of the image ($lz4size)"
