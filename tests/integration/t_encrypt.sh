#!/bin/bash
# Encrypted repository: a real ext4 image holding a marker string goes in through
# iSCSI; afterwards no file of the repository contains the marker or the volume name.
# Wrong or missing passwords fail at once with a clear message and change nothing;
# key add/list/remove/passwd; two passwords both open the repository.
source "$(dirname "$0")/lib.sh"
R=$T/repo
MARK="cairn-marker-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
VOL=zebravolume
printf 'correct horse battery staple\n' >"$T/pw1"
printf 'second password\n' >"$T/pw2"
printf 'wrong password\n' >"$T/bad"
head -c 32 /dev/urandom >"$T/raw.key"

log "build an ext4 image with the marker in a file"
mkdir -p "$T/src/dir"
for i in $(seq 1 200); do echo "$MARK line $i"; done >"$T/src/dir/marker.txt"
cp -a /usr/include/linux "$T/src/" 2>/dev/null || true
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 -d "$T/src" "$T/fs.img" 96M >/dev/null
qgrep "$MARK" "$T/fs.img" || fail "the marker is not in the image itself"

log "init --encrypt, volume, serve (password from CAIRN_PASSWORD_FILE)"
export CAIRN_PASSWORD_FILE=$T/pw1
"$CAIRN" init -r "$R" --encrypt | qgrep "encrypted repository" || fail "init --encrypt"
qgrep '"encryption":"aes-256-gcm"' "$R/config" || fail "config does not say encrypted"
"$CAIRN" volume create "$VOL" --size 128M -r "$R" >/dev/null
start_daemon "$R" "$T/state"
qemu-img convert -n -f raw -O raw "$T/fs.img" "$(url $VOL)"
qemu-img compare -f raw -F raw "$T/fs.img" "$(url $VOL)" || fail "image differs after writing"
stop_daemon

log "no file of the repository holds the marker or the volume name"
n=$(find "$R" -type f | wc -l)
[ "$n" -gt 3 ] || fail "repository has only $n files"
if grep -rlaF "$MARK" "$R"; then fail "marker found in the repository"; fi
if grep -rlaF "$VOL" "$R"; then fail "volume name found in the repository"; fi
if grep -rlaF "marker.txt" "$R"; then fail "file name found in the repository"; fi
echo "  ok: $n files, none holds the marker, the file name or the volume name"

log "wrong or missing password: clear error, nothing changed"
before=$(find "$R" -type f -printf '%p %s %T@\n' | sort | md5sum)
expect_fail "wrong password for repository .*nothing was changed" "$CAIRN" volume list -r "$R" --password-file "$T/bad"
expect_fail "wrong password" "$CAIRN" serve -r "$R" --password-file "$T/bad" --listen 127.0.0.1:0 --state-dir "$T/state"
expect_fail "wrong password" "$CAIRN" key add -r "$R" --password-file "$T/bad" --new-password-file "$T/pw2"
expect_fail "is encrypted: give its password" env -u CAIRN_PASSWORD_FILE "$CAIRN" volume list -r "$R"
expect_fail "cannot read password or key file" "$CAIRN" volume list -r "$R" --password-file "$T/nonexistent"
expect_fail "wrong password" "$CAIRN" volume list -r "$R" --key-file "$T/raw.key"
after=$(find "$R" -type f -printf '%p %s %T@\n' | sort | md5sum)
[ "$before" = "$after" ] || fail "a failed open changed the repository"

log "key add / list / two passwords / key file"
"$CAIRN" key add -r "$R" --new-password-file "$T/pw2" | qgrep "added key" || fail "key add"
"$CAIRN" key add -r "$R" --new-key-file "$T/raw.key" >/dev/null || fail "key add --new-key-file"
"$CAIRN" key list -r "$R" --json >"$T/keys.json"
[ "$(grep -c '"id"' "$T/keys.json")" -eq 3 ] || { cat "$T/keys.json"; fail "key list shows not 3 keys"; }
qgrep '"scrypt_n": 32768' "$T/keys.json" || fail "scrypt parameters not listed"
"$CAIRN" volume list -r "$R" --password-file "$T/pw2" | qgrep "$VOL" || fail "second password does not open it"
"$CAIRN" volume list -r "$R" --password-file "$T/pw1" | qgrep "$VOL" || fail "first password no longer opens it"
"$CAIRN" volume list -r "$R" --key-file "$T/raw.key" | qgrep "$VOL" || fail "key file does not open it"

log "key passwd replaces the current password; remove; never the last key"
printf 'third password\n' >"$T/pw3"
"$CAIRN" key passwd -r "$R" --password-file "$T/pw1" --new-password-file "$T/pw3" >/dev/null || fail "key passwd"
expect_fail "wrong password" "$CAIRN" volume list -r "$R" --password-file "$T/pw1"
"$CAIRN" volume list -r "$R" --password-file "$T/pw3" | qgrep "$VOL" || fail "new password does not open it"
export CAIRN_PASSWORD_FILE=$T/pw3
rawid=$("$CAIRN" key list -r "$R" --key-file "$T/raw.key" --json | python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["current"]][0])')
"$CAIRN" key remove "$rawid" -r "$R" | qgrep "removed key" || fail "key remove"
expect_fail "wrong password" "$CAIRN" volume list -r "$R" --key-file "$T/raw.key"
expect_fail "no key 0123" "$CAIRN" key remove 0123456789abcdef0123456789abcdef -r "$R"
pw2id=$("$CAIRN" key list -r "$R" --password-file "$T/pw2" --json | python3 -c 'import json,sys; print([k["id"] for k in json.load(sys.stdin) if k["current"]][0])')
"$CAIRN" key remove "$pw2id" -r "$R" >/dev/null || fail "remove the second key"
last=$("$CAIRN" key list -r "$R" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
expect_fail "is the last one" "$CAIRN" key remove "$last" -r "$R"
expect_fail "is not encrypted" bash -c "'$CAIRN' init -r '$T/plain' >/dev/null && '$CAIRN' key list -r '$T/plain'"

log "the data reads back through a restarted daemon (password via --password-file)"
start_daemon "$R" "$T/state" --password-file "$T/pw3"
qemu-img convert -f raw -O raw "$(url $VOL)" "$T/back.img"
truncate -s 96M "$T/back.img"
cmp "$T/fs.img" "$T/back.img" || fail "read-back differs"
qgrep "$MARK" "$T/back.img" || fail "marker not in the read-back image"
stop_daemon
