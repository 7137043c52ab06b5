#!/bin/bash
# t_chap.sh - CHAP through real libiscsi initiators: right secret, wrong secret (clean
# authentication failure, daemon keeps serving), no credentials, mutual CHAP right and
# wrong, discovery CHAP, header digests with CHAP; secrets never in the log; a short
# secret in the config is refused with a clear message.
source "$(dirname "$0")/lib.sh"

"$CAIRN" init -r "$T/repo" >/dev/null
"$CAIRN" volume create -r "$T/repo" v1 --size 32M >/dev/null
TGT=$IQN:secure
cat >"$T/gw.conf" <<CONF
accounts = ( { user = "alice"; secret = "alice-secret-1"; groups = [ "ops" ]; },
             { user = "bob"; secret = "bob-secret-123"; } );
discovery = { chap = [ "bob" ]; };
targets = ( { iqn = "$TGT"; luns = ( { lun = 0; volume = "v1"; } ); chap = [ "@ops" ];
              mutual = { user = "gw"; secret = "target-secret-9"; }; } );
CONF
start_daemon "$T/repo" "$T/state" --config "$T/gw.conf"
U=127.0.0.1:$PORT/$TGT/0

log "right secret (MD5, libiscsi's algorithm)"
iscsi-inq "iscsi://alice%alice-secret-1@$U" | qgrep DIRECT_ACCESS || fail "login with the right secret failed"
log "wrong secret: authentication failure, not a hang"
out=$(timeout 20 iscsi-inq "iscsi://alice%alice-secret-2@$U" 2>&1) && fail "wrong secret logged in"
echo "$out" | qgrep "Authentication failure" || fail "wrong secret: unexpected answer: $out"
log "unknown user and no credentials"
out=$(timeout 20 iscsi-inq "iscsi://bob%bob-secret-123@$U" 2>&1) && fail "bob is not allowed on $TGT"
echo "$out" | qgrep "Authentication failure" || fail "bob: $out"
out=$(timeout 20 iscsi-inq "iscsi://$U" 2>&1) && fail "login without CHAP succeeded"
echo "$out" | qgrep "Authentication failure" || fail "no credentials: $out"
log "the daemon still serves"
iscsi-inq "iscsi://alice%alice-secret-1@$U" | qgrep DIRECT_ACCESS || fail "daemon stopped serving"
log "mutual CHAP: right and wrong target secret (URL arguments and environment)"
iscsi-inq "iscsi://alice%alice-secret-1@$U?target_user=gw&target_password=target-secret-9" | qgrep DIRECT_ACCESS \
	|| fail "mutual CHAP failed"
LIBISCSI_CHAP_TARGET_USERNAME=gw LIBISCSI_CHAP_TARGET_PASSWORD=target-secret-9 \
	iscsi-inq "iscsi://alice%alice-secret-1@$U" | qgrep DIRECT_ACCESS || fail "mutual CHAP (env) failed"
out=$(timeout 20 iscsi-inq "iscsi://alice%alice-secret-1@$U?target_user=gw&target_password=not-the-secret" 2>&1) \
	&& fail "the initiator accepted a target that does not know the mutual secret"
echo "$out" | qgrep -i "CHAP_R\|auth" || fail "mutual wrong: $out"
log "CHAP with header and data digests"
iscsi-inq "iscsi://alice%alice-secret-1@$U?header_digest=crc32c" | qgrep DIRECT_ACCESS || fail "CHAP + header digest"
qemu-io --image-opts "driver=iscsi,transport=tcp,portal=127.0.0.1:$PORT,target=$TGT,lun=0,user=alice,password=alice-secret-1,header-digest=crc32c" \
	-c "write -P 0x5a 0 64k" -c "read -P 0x5a 0 64k" >"$T/qio.out" 2>&1 || { cat "$T/qio.out"; fail "qemu-io with CHAP"; }
log "discovery CHAP"
iscsi-ls "iscsi://bob%bob-secret-123@127.0.0.1:$PORT" | qgrep "$TGT" || fail "discovery with CHAP"
out=$(timeout 20 iscsi-ls "iscsi://127.0.0.1:$PORT" 2>&1) && echo "$out" | qgrep "$TGT" && fail "discovery without CHAP listed targets"
out=$(timeout 20 iscsi-ls "iscsi://bob%bob-secret-999@127.0.0.1:$PORT" 2>&1) && echo "$out" | qgrep "$TGT" && fail "discovery with a wrong secret listed targets"
log "sessions are listed with the CHAP user"
iscsi-inq "iscsi://alice%alice-secret-1@$U" >/dev/null
stop_daemon
for s in alice-secret-1 alice-secret-2 bob-secret-123 target-secret-9 not-the-secret; do
	qgrep -- "$s" "$T/serve.log" && fail "secret $s appears in the daemon log"
done

log "a secret shorter than 12 characters is refused at start"
sed -i 's/alice-secret-1/short/' "$T/gw.conf"
expect_fail "gw.conf:1: account 'alice'.*5 characters; use 12 to 255" \
	"$CAIRN" serve -r "$T/repo" --listen 127.0.0.1:0 --state-dir "$T/state" --config "$T/gw.conf"
echo "t_chap: ok"
