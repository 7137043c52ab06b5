#!/bin/bash
# An initiator attaches: SendTargets discovery, INQUIRY with VPD pages, capacity,
# several sessions at once, and a login to an unknown target is refused while the
# daemon keeps serving the others.
source "$(dirname "$0")/lib.sh"
R=$T/repo
"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create demo --size 8G -r "$R" >/dev/null
"$CAIRN" volume create small --size 100M --chunk-size 1M -r "$R" >/dev/null
start_daemon "$R" "$T/state"

log "discovery"
out=$(iscsi-ls -s "iscsi://127.0.0.1:$PORT/")
echo "$out"
echo "$out" | qgrep "Target:$IQN:demo Portal:127.0.0.1:$PORT" || fail "demo not in SendTargets"
echo "$out" | qgrep "Target:$IQN:small" || fail "small not in SendTargets"
echo "$out" | qgrep "Lun:0 .*Type:DIRECT_ACCESS" || fail "LUN 0 not a disk"

log "inquiry and VPD"
iscsi-inq "$(url demo)" | tee "$T/inq" | qgrep "Vendor:CAIRN" || fail "standard INQUIRY lacks vendor CAIRN"
for page in 0 128 131 176 177 178; do
	iscsi-inq -e 1 -c $page "$(url demo)" >"$T/vpd.$page" || fail "VPD page $page failed"
done
id=$("$CAIRN" volume list -r "$R" --json | python3 -c 'import json,sys; print([v["id"] for v in json.load(sys.stdin) if v["name"]=="demo"][0])')
qgrep -i "Unit Serial Number:\[$id\]" "$T/vpd.128" || fail "unit serial number is not the volume id ($id)"

log "capacity"
iscsi-readcapacity16 "$(url demo)" | tee "$T/cap" | qgrep "LOGICAL BLOCK LENGTH IN BYTES:512" || fail "block size not 512"
qgrep "RETURNED LOGICAL BLOCK ADDRESS:16777215" "$T/cap" || fail "8 GiB volume capacity wrong"
iscsi-readcapacity16 "$(url small)" | qgrep "RETURNED LOGICAL BLOCK ADDRESS:204799" || fail "100 MiB capacity wrong"

log "several sessions at once"
pids=()
for i in 1 2 3 4; do
	qemu-io -f raw -c "write -P 0x1$i $((i * 1048576)) 1M" -c "read -P 0x1$i $((i * 1048576)) 1M" "$(url demo)" >"$T/qio.$i" 2>&1 &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent session failed: $(cat "$T"/qio.*)"; done
grep -l "Pattern verification failed" "$T"/qio.* && fail "concurrent session read back wrong data"

log "unknown target is refused, others keep working"
if iscsi-inq "iscsi://127.0.0.1:$PORT/$IQN:nosuch/0" >"$T/nosuch" 2>&1; then fail "login to an unknown target succeeded"; fi
cat "$T/nosuch"
iscsi-inq "$(url small)" >/dev/null || fail "daemon stopped serving after a refused login"
stop_daemon
