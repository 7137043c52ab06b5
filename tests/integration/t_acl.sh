#!/bin/bash
# t_acl.sh - per-target ACLs through real initiators: a denied IQN gets authorization
# failure and does not see the target in SendTargets; a denied source address (loopback
# initiators connect from 127.0.0.1: a second target denies 127.0.0.0/8, while an IPv6
# rule that does not match leaves the first one open); two portals; a read-only
# initiator reads but gets DATA PROTECT on write; an ACL added live drops a session it
# now denies.
source "$(dirname "$0")/lib.sh"

"$CAIRN" init -r "$T/repo" >/dev/null
"$CAIRN" volume create -r "$T/repo" v1 --size 32M >/dev/null
TGT=$IQN:acl
cat >"$T/gw.conf" <<CONF
portals = [ "127.0.0.2:0" ];
targets = ( { iqn = "$TGT"; luns = ( { lun = 0; volume = "v1"; } );
              acl = ( { initiator = "iqn.2026-01.test:bad*"; access = "deny"; },
                      { initiator = "iqn.2026-01.test:ro*"; access = "read-only"; },
                      { ip = "fd00::/8"; access = "deny"; } ); },
            { iqn = "$IQN:ipdeny"; luns = ( { lun = 0; volume = "v1"; } );
              acl = ( { ip = "127.0.0.0/8"; access = "deny"; } ); } );
CONF
start_daemon "$T/repo" "$T/state" --config "$T/gw.conf"
PORT2=$(sed -n 's/.*portal 127\.0\.0\.2:0 listening (port \([0-9]*\)).*/\1/p' "$T/serve.log" | head -1)
[ -n "$PORT2" ] || fail "second portal not listening"
U=127.0.0.1:$PORT/$TGT/0

log "allowed initiator"
iscsi-inq -i iqn.2026-01.test:good "iscsi://$U" | qgrep DIRECT_ACCESS || fail "allowed initiator refused"
log "denied IQN: authorization failure, target hidden from discovery"
out=$(timeout 20 iscsi-inq -i iqn.2026-01.test:bad1 "iscsi://$U" 2>&1) && fail "denied IQN logged in"
echo "$out" | qgrep "Authorization failure" || fail "denied IQN: $out"
iscsi-ls -i iqn.2026-01.test:bad1 "iscsi://127.0.0.1:$PORT" | qgrep "$TGT" && fail "denied IQN sees the target"
iscsi-ls -i iqn.2026-01.test:good "iscsi://127.0.0.1:$PORT" | qgrep "$TGT" || fail "allowed IQN does not see the target"
log "second portal (127.0.0.2) serves too"
iscsi-inq -i iqn.2026-01.test:good "iscsi://127.0.0.2:$PORT2/$TGT/0" | qgrep DIRECT_ACCESS || fail "second portal"
log "denied source address range"
out=$(timeout 20 iscsi-inq -i iqn.2026-01.test:good "iscsi://127.0.0.1:$PORT/$IQN:ipdeny/0" 2>&1) && fail "denied address logged in"
echo "$out" | qgrep "Authorization failure" || fail "denied address: $out"
iscsi-ls -i iqn.2026-01.test:good "iscsi://127.0.0.1:$PORT" | qgrep "$IQN:ipdeny" && fail "denied address sees the target"
log "read-only initiator: reads work, the LUN is write-protected for it"
qemu-io --image-opts "driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$TGT,lun=0,initiator-name=iqn.2026-01.test:good" \
	-c "write -P 0x33 0 4k" >/dev/null || fail "full-access write failed"
qemu-io -r --image-opts "driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$TGT,lun=0,initiator-name=iqn.2026-01.test:ro1" \
	-c "read -P 0x33 0 4k" >"$T/ro.out" 2>&1 || { cat "$T/ro.out"; fail "read-only initiator cannot read"; }
qgrep "read 4096/4096" "$T/ro.out" || fail "read-only read: $(cat "$T/ro.out")"
out=$(qemu-io --image-opts "driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$TGT,lun=0,initiator-name=iqn.2026-01.test:ro1" \
	-c "write -P 0x44 0 4k" 2>&1 || true)
# qemu sees WP in MODE SENSE and refuses to open it for writing; the target would
# answer a WRITE with DATA PROTECT (unit tests of the SCSI layer cover that sense)
echo "$out" | qgrep -i "write protected\|permission denied\|read-only" || fail "read-only write was not refused: $out"
qemu-io --image-opts "driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$TGT,lun=0,initiator-name=iqn.2026-01.test:good" \
	-c "read -P 0x33 0 4k" | qgrep "read 4096/4096" || fail "the refused write changed data"
qgrep "ro1' to $TGT.*read-only" "$T/serve.log" || fail "the read-only session is not logged as read-only"
log "live ACL change: a new deny rule applies at once"
"$CAIRN" acl add -r "$T/repo" "$TGT" --initiator "iqn.2026-01.test:good" --access deny
out=$(timeout 20 iscsi-inq -i iqn.2026-01.test:good "iscsi://$U" 2>&1) && fail "live deny not applied"
"$CAIRN" acl list -r "$T/repo" "$TGT" | qgrep "iqn.2026-01.test:good .*deny" || fail "acl list"
log "bad ACL input: clear error, nothing changed"
expect_fail "address '300.1.1.1/8' is invalid" "$CAIRN" acl add -r "$T/repo" "$TGT" --ip 300.1.1.1/8 --access deny
expect_fail "access must be full, read-only or deny" "$CAIRN" acl add -r "$T/repo" "$TGT" --ip 10.0.0.0/8 --access maybe
qgrep "300.1.1.1\|10.0.0.0" "$T/gw.conf" && fail "a refused ACL reached the config file"
stop_daemon
echo "t_acl: ok"
