#!/bin/bash
# A real ext4 image (mkfs.ext4 -d of /usr/include and /usr/share/doc) goes in through
# iSCSI with qemu-img, comes back byte for byte, loop-mounts with the same tree, and
# survives a clean restart and a kill -9 right after the initiator's final flush.
source "$(dirname "$0")/lib.sh"
R=$T/repo
IMG=$(cached_image usr-doc 512M /usr/include /usr/share/doc)
"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create disk --size 1G -r "$R" >/dev/null
"$CAIRN" volume create disk2 --size 1G --chunk-size 16K -r "$R" >/dev/null
start_daemon "$R" "$T/state"

log "write the image with qemu-img convert"
qemu-img convert -p -n -f raw -O raw "$IMG" "$(url disk)"
qemu-img compare -f raw -F raw "$IMG" "$(url disk)" || fail "image differs right after writing"

log "read it back and loop-mount it"
qemu-img convert -f raw -O raw "$(url disk)" "$T/back.img"
truncate -s 512M "$T/back.img"
cmp "$IMG" "$T/back.img" || fail "read-back differs"
same_tree "$T/back.img" "$(image_src usr-doc)/include" "$(image_src usr-doc)/doc"

log "clean restart"
stop_daemon
start_daemon "$R" "$T/state"
qemu-img compare -f raw -F raw "$IMG" "$(url disk)" || fail "image differs after a clean restart"

log "kill -9 right after the write of a second volume"
qemu-img convert -n -f raw -O raw "$IMG" "$(url disk2)"
kill9_daemon
start_daemon "$R" "$T/state"
qemu-img compare -f raw -F raw "$IMG" "$(url disk2)" || fail "disk2 differs after kill -9"
qemu-img compare -f raw -F raw "$IMG" "$(url disk)" || fail "disk differs after kill -9"
stop_daemon
