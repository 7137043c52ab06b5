#!/bin/bash
# The history view on S3 (the pinned s3rver on loopback), plain and encrypted, and on a
# local encrypted repository: the same flow for each. The mount opens while `cairn serve`
# serves an empty volume; an ext4 image is then written through iSCSI and snapshotted,
# and the daemon stops (its final checkpoint is in packs the mount never listed). Under
# the mount, the snapshot's disk.img and current/disk.img loop-mount read-only with the
# original tree (the mount reloaded its index); an encrypted repository without its
# password is refused with a clear error.
source "$(dirname "$0")/lib.sh"
command -v node >/dev/null || skip "node is not installed (s3rver needs it)"
NEW=$(cached_image hdr 96M /usr/include/linux /usr/include/asm-generic)
SIZE=$(stat -c %s "$NEW")
M=$T/mnt.view
mkdir -p "$M"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_SHARED_CREDENTIALS_FILE=$T/no-credentials
printf 'a fuse password\n' >"$T/pw"

"$ROOT/tests/s3/start-s3rver.sh" "$T/s3data" >"$T/s3.port" 2>"$T/s3.log" &
S3PID=$!
s3_cleanup() {
	local rc=$?
	[ -n "${MPID:-}" ] && kill "$MPID" 2>/dev/null || true
	umount -l "$M" 2>/dev/null || true # a mount whose process died is stale: mountpoint -q misses it
	kill "$S3PID" 2>/dev/null || true
	wait "$S3PID" 2>/dev/null || true
	set +e # under set -e the failing status below would end the trap before cleanup
	(exit $rc)
	cleanup
}
trap s3_cleanup EXIT
for _ in $(seq 600); do [ -s "$T/s3.port" ] && break; sleep 0.1; done
S3PORT=$(head -1 "$T/s3.port")
[ -n "$S3PORT" ] || { cat "$T/s3.log"; fail "s3rver did not start"; }
export CAIRN_S3_ENDPOINT=http://127.0.0.1:$S3PORT

mount_view() { # REPO STATE
	"$CAIRN" mount -r "$1" --state-dir "$2" "$M" >"$T/mount.log" 2>&1 &
	MPID=$!
	for _ in $(seq 100); do mountpoint -q "$M" && return 0; sleep 0.1; done
	cat "$T/mount.log"; fail "cairn mount did not mount"
}

# flow NAME REPO [init args...]
flow() {
	local name=$1 repo=$2; shift 2
	local state=$T/state-$name
	log "[$name] init $*, an empty volume served, the mount opened"
	"$CAIRN" init -r "$repo" "$@" >/dev/null || fail "[$name] init"
	"$CAIRN" volume create disk --size 128M -r "$repo" >/dev/null || fail "[$name] volume create"
	start_daemon "$repo" "$state"
	mount_view "$repo" "$state"
	[ "$(ls "$M")" = disk ] || fail "[$name] volumes: $(ls "$M")"

	log "[$name] an ext4 image written through iSCSI, snapshotted; the daemon stops"
	qemu-img convert -n -f raw -O raw "$NEW" "$(url disk)"
	"$CAIRN" snapshot create disk --name snap -r "$repo" >/dev/null || fail "[$name] snapshot create"
	stop_daemon

	log "[$name] the snapshot and current/ read back through the mount"
	ls "$M/disk/snapshots" | qgrep -x snap || fail "[$name] snapshot not listed: $(ls "$M/disk/snapshots")"
	cmp -n "$SIZE" "$NEW" "$M/disk/snapshots/snap/disk.img" || fail "[$name] the snapshot's disk.img differs"
	same_tree "$M/disk/snapshots/snap/disk.img" "$(image_src hdr)/linux" "$(image_src hdr)/asm-generic"
	cmp -n "$SIZE" "$NEW" "$M/disk/current/disk.img" || fail "[$name] current/disk.img differs"
	same_tree "$M/disk/current/disk.img" "$(image_src hdr)/linux" "$(image_src hdr)/asm-generic"
	qgrep "new pack(s) added to the index" "$T/mount.log" || { cat "$T/mount.log"; fail "[$name] the mount did not reload its index"; }
	fusermount3 -u "$M"
	wait "$MPID" || fail "[$name] cairn mount exited non-zero"
	MPID=
	if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$T/mount.log"; then
		cat "$T/mount.log"; fail "[$name] sanitizer report in the mount's log"
	fi
}

flow s3-plain "s3://cairn-fuse/plain"
CAIRN_PASSWORD_FILE=$T/pw flow s3-encrypted "s3://cairn-fuse2/enc" --encrypt
CAIRN_PASSWORD_FILE=$T/pw flow local-encrypted "$T/local-enc" --encrypt

log "an encrypted repository is not mounted without its password"
expect_fail "is encrypted: give its password" env -u CAIRN_PASSWORD_FILE "$CAIRN" mount -r "$T/local-enc" "$M"
expect_fail "wrong password" "$CAIRN" mount -r "s3://cairn-fuse2/enc" --password-file "$T/s3.port" "$M"
mountpoint -q "$M" && fail "a refused mount left something mounted"
echo "FUSE view on S3 and encrypted repositories: checks passed"
