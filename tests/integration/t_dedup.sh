#!/bin/bash
# Dedup and compression, measured on a real 1 GiB filesystem image (/usr/share):
# the same image written into a second volume grows the repository by < 5% of one copy,
# and the repository holding it is no bigger than `lz4 -1` of the image.
source "$(dirname "$0")/lib.sh"
R=$T/repo
IMG=$(cached_image usr-share 1G /usr/share)
"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create one --size 1G -r "$R" >/dev/null
"$CAIRN" volume create two --size 1G -r "$R" >/dev/null
base=$(du -sb "$R" | cut -f1)

start_daemon "$R" "$T/state"
qemu-img convert -n -f raw -O raw "$IMG" "$(url one)"
stop_daemon
size1=$(( $(du -sb "$R" | cut -f1) - base ))

start_daemon "$R" "$T/state"
qemu-img convert -n -f raw -O raw "$IMG" "$(url two)"
qemu-img compare -f raw -F raw "$IMG" "$(url two)" || fail "second copy differs"
stop_daemon
size2=$(( $(du -sb "$R" | cut -f1) - base ))

lz4size=$(lz4 -1 -c "$IMG" | wc -c)
growth=$(( size2 - size1 ))
echo "image $(stat -c %s "$IMG") bytes; repository after one copy $size1, after two $size2 (growth $growth); lz4 -1: $lz4size"
python3 -c "import sys; g=$growth/$size1; print(f'second copy grew the repository by {g*100:.2f}%'); sys.exit(0 if g < 0.05 else 1)" \
	|| fail "dedup: a second copy grew the repository by 5% or more"
[ "$size1" -le "$lz4size" ] || fail "compression: repository ($size1) is bigger than lz4 -1 of the image ($lz4size)"
