#!/bin/bash
# t_crypto_erase.sh - SANITIZE CRYPTO ERASE of a volume with a key of its own.
#
# In an encrypted local repository: volume sec (--own-key) and volume pub (the
# repository's keys) both get an ext4 image holding a marker file through iSCSI; sec gets
# a snapshot and later writes. Then (real libiscsi sessions, tests/tools/iscsi_sanitize):
#   - --own-key in a plain repository fails with a clear message; volume list --json
#     shows which volume has its own key;
#   - CRYPTO ERASE of pub is refused (ILLEGAL REQUEST, INVALID FIELD IN CDB), and so is
#     one of sec while a clone shares its key (the daemon logs why);
#   - a cairn mount holding sec's snapshot image open before the erase cannot read the
#     erased data after it (EIO on data it had not read; it logs the destroyed key);
#   - CRYPTO ERASE of sec: the LUN reads zeros, its old key object is gone (a tombstone
#     stays) and a new key generation is in use, the snapshot is deleted (logged),
#     `export sec@<snapshot>` and `export sec@seq:N` fail with clear messages, the
#     erased chunks are unreadable (check counts them, not as damage) and check
#     --read-data passes, pub reads intact, new writes to sec work and survive a
#     restart; a gc then reclaims the erased chunks;
#   - libiscsi's SCSI.Sanitize.CryptoErase* tests pass against an own-key volume (run,
#     not skipped) and skip on pub (REPORT SUPPORTED OPERATION CODES leaves 03h out);
#   - kill -9 during a CRYPTO ERASE (an encrypted S3 repository behind the fault proxy,
#     which stalls the history objects the erase rewrites), restart: the LUN answers
#     SANITIZE IN PROGRESS, the erase resumes and completes, check passes.
#   - deleting an own-key volume (data imported) destroys its key at once, unless a clone
#     shares it (the clone keeps reading); deleting the last one destroys it; check
#     counts the chunks apart, gc and check pass.
source "$(dirname "$0")/lib.sh"
SAN=$BUILD/tests/tools/iscsi_sanitize
[ -x "$SAN" ] || fail "missing $SAN (build the test tools)"
R=$T/repo
ST=$T/state
M=CAIRN-CERASE-$RANDOM$RANDOM-marker
printf 'crypto erase password\n' >"$T/pw"
export CAIRN_PASSWORD_FILE=$T/pw

san() { "$SAN" "$(url "$1")" "${@:2}"; }
vjson() { "$CAIRN" volume list -r "$1" --json; }
# vfield REPO VOLUME FIELD
vfield() { vjson "$1" | python3 -c "import json,sys; print([v for v in json.load(sys.stdin) if v['name']==sys.argv[1]][0].get(sys.argv[2], ''))" "$2" "$3"; }
cdp_last() { "$CAIRN" cdp list -r "$R" "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['last_seq'])"; }
zeros() { python3 -c "import sys; open(sys.argv[1],'wb').truncate(int(sys.argv[2]) << 20)" "$@"; }

log "--own-key needs an encrypted repository"
"$CAIRN" init -r "$T/plain" >/dev/null
expect_fail "needs an encrypted repository" env -u CAIRN_PASSWORD_FILE "$CAIRN" volume create -r "$T/plain" x --size 8M --own-key
"$CAIRN" volume create --help | qgrep "never dedup" || fail "volume create --help does not tell that own-key chunks never dedup"

"$CAIRN" init -r "$R" --encrypt >/dev/null
"$CAIRN" volume create -r "$R" sec --size 32M --own-key | qgrep "key of its own" || fail "create sec"
"$CAIRN" volume create -r "$R" pub --size 32M >/dev/null
"$CAIRN" volume list -r "$R"
[ "$(vfield "$R" sec own_key)" = True ] || fail "volume list --json does not show sec's own key: $(vjson "$R")"
[ "$(vfield "$R" pub own_key)" = False ] || fail "pub shows an own key"
[ "$(vfield "$R" sec key_generation)" = 1 ] || fail "sec's key generation is not 1"
key1=$(vfield "$R" sec key)
[ -f "$R/meta/vkeys/$key1" ] || fail "the key object meta/vkeys/$key1 of sec is missing"

log "an ext4 image with a marker file into both volumes"
mkdir -p "$T/src/dir"
for i in $(seq 1 200); do echo "$M line $i" >>"$T/src/dir/marker.txt"; done
head -c 3M /dev/urandom >"$T/src/dir/random.bin"
mkfs.ext4 -q -F -d "$T/src" "$T/fs.img" 32M || fail "mkfs.ext4"
zeros "$T/zero.img" 32
start_daemon "$R" "$ST"
qemu-img convert -n -f raw -O raw "$T/fs.img" "$(url sec)"
qemu-img convert -n -f raw -O raw "$T/fs.img" "$(url pub)"
"$CAIRN" snapshot create -r "$R" sec --name before >/dev/null
early=$(cdp_last sec)
qemu-io -f raw -c "write -P 0x5c 16M 1M" "$(url sec)" >/dev/null
qemu-img compare -q -f raw -F raw "$T/fs.img" "$(url pub)" || fail "pub does not read what was written"
"$CAIRN" export -r "$R" sec@before "$T/before.img" >/dev/null || fail "export of the snapshot before the erase"
cmp -s "$T/fs.img" "$T/before.img" || fail "the snapshot does not hold the image"
rm -f "$T/before.img"
[ -z "$(grep -rl --binary-files=text -F -- "$M" "$R" 2>/dev/null)" ] || fail "the marker is in the encrypted repository in clear"

log "CRYPTO ERASE of pub (repository keys) is refused"
out=$(san pub crypto-erase)
[ "$out" = "sanitize CHECK CONDITION ILLEGAL_REQUEST 0x2400" ] || fail "crypto erase of pub: $out"

log "CRYPTO ERASE of sec is refused while a clone shares its key"
"$CAIRN" volume clone -r "$R" sec@before cl >/dev/null || fail "clone"
[ "$(vfield "$R" cl key)" = "$key1" ] || fail "the clone does not share sec's key"
out=$(san sec crypto-erase)
[ "$out" = "sanitize CHECK CONDITION ILLEGAL_REQUEST 0x2400" ] || fail "crypto erase with a clone: $out"
qgrep "CRYPTO ERASE refused: volume cl shares its key" "$T/serve.log" || fail "the refusal is not logged"
"$CAIRN" volume delete -r "$R" cl >/dev/null

log "a cairn mount (another process) holding sec's snapshot open, before the erase"
mkdir -p "$T/mnt"
"$CAIRN" mount -r "$R" --state-dir "$ST" "$T/mnt" >"$T/mount.log" 2>&1 &
MPID=$!
for _ in $(seq 100); do mountpoint -q "$T/mnt" && break; sleep 0.1; done
mountpoint -q "$T/mnt" || { cat "$T/mount.log"; fail "cairn mount did not mount"; }
# holder: reads the first MiB of the snapshot image (must equal the image), says so,
# waits for the erase, then reads MiBs it has not read (so none is in the kernel's
# cache) until one fails: it prints "EIO" or, if 15 s of reads all succeed, "readable"
python3 - "$T/mnt/sec/snapshots/before/disk.img" "$T/fs.img" "$T/held" "$T/erased" >"$T/holder.out" 2>&1 <<'PY' &
import os, sys, time, errno
img, ref, held, erased = sys.argv[1:5]
fd = os.open(img, os.O_RDONLY)
want = open(ref, 'rb').read(1 << 20)
ok = os.pread(fd, 1 << 20, 0) == want
open(held, 'w').write('ok' if ok else 'differs')
while not os.path.exists(erased):
    time.sleep(0.05)
end, off = time.time() + 15, 2 << 20
while time.time() < end and off < (32 << 20):
    try:
        os.pread(fd, 1 << 20, off)
    except OSError as e:
        print('EIO' if e.errno == errno.EIO else 'error %d' % e.errno)
        sys.exit(0)
    off += 1 << 20
    time.sleep(1)
print('readable')
PY
HPID=$!
for _ in $(seq 100); do [ -s "$T/held" ] && break; sleep 0.1; done
[ "$(cat "$T/held" 2>/dev/null)" = ok ] || { cat "$T/holder.out" "$T/mount.log"; fail "the mounted snapshot does not read the image"; }

log "CRYPTO ERASE of sec"
out=$(san sec crypto-erase)
[ "$out" = "sanitize GOOD" ] || fail "crypto erase of sec: $out"
touch "$T/erased"
wait "$HPID"
[ "$(cat "$T/holder.out")" = EIO ] || { cat "$T/holder.out" "$T/mount.log"; fail "the mount still reads sec's erased snapshot: $(cat "$T/holder.out")"; }
qgrep "volume key(s) destroyed" "$T/mount.log" || { cat "$T/mount.log"; fail "the mount did not log the destroyed key"; }
fusermount3 -u "$T/mnt"
wait "$MPID" || fail "cairn mount exited non-zero"
[ "$(san sec tur)" = ready ] || fail "sec is not ready after the crypto erase"
grep "CRYPTO ERASE" "$T/serve.log"
qemu-img compare -q -f raw -F raw "$T/zero.img" "$(url sec)" || fail "sec does not read zeros after the crypto erase"
[ ! -e "$R/meta/vkeys/$key1" ] || fail "the old key object is still there"
[ -f "$R/meta/vkeys/$key1.erased" ] || fail "no tombstone of the old key"
key2=$(vfield "$R" sec key)
[ -n "$key2" ] && [ "$key2" != "$key1" ] || fail "sec has no new key ($key2)"
[ "$(vfield "$R" sec key_generation)" = 2 ] || fail "sec's key generation is not 2"
qgrep "snapshot before deleted by the CRYPTO ERASE" "$T/serve.log" || fail "the snapshot's deletion is not logged"
expect_fail "has no snapshot named 'before'" "$CAIRN" export -r "$R" sec@before "$T/x.img"
expect_fail "older than the retained history" "$CAIRN" export -r "$R" "sec@seq:$early" "$T/x.img"
[ -z "$("$CAIRN" snapshot list -r "$R" sec --json | python3 -c 'import json,sys; print(json.load(sys.stdin) or "")')" ] || fail "sec still lists snapshots"
out=$("$CAIRN" check -r "$R" --read-data) || fail "check --read-data fails after the crypto erase: $out"
echo "$out"
echo "$out" | qgrep "under destroyed volume keys" || fail "check does not count the erased chunks"
qemu-img compare -q -f raw -F raw "$T/fs.img" "$(url pub)" || fail "pub changed"

log "new writes to sec work and survive a restart"
qemu-img convert -n -f raw -O raw "$T/fs.img" "$(url sec)"
qemu-img compare -q -f raw -F raw "$T/fs.img" "$(url sec)" || fail "sec does not read its new data"
stop_daemon
start_daemon "$R" "$ST"
qemu-img compare -q -f raw -F raw "$T/fs.img" "$(url sec)" || fail "sec lost its new data in a restart"
qemu-img compare -q -f raw -F raw "$T/fs.img" "$(url pub)" || fail "pub changed in a restart"

log "gc reclaims the erased chunks"
"$CAIRN" gc -r "$R" --grace 0 >/dev/null || fail "gc"
out=$("$CAIRN" check -r "$R" --read-data) || fail "check --read-data fails after gc: $out"
echo "$out" | qgrep "under destroyed volume keys" && fail "erased chunks are left after gc: $out"
qemu-img compare -q -f raw -F raw "$T/fs.img" "$(url sec)" || fail "sec changed in the gc"

log "libiscsi's SANITIZE CRYPTO ERASE tests"
"$CAIRN" volume create -r "$R" cu --size 8M --own-key >/dev/null
cu=$(iscsi-test-cu --dataloss --allow-sanitize --test=SCSI.Sanitize.CryptoErase \
	"$(url cu)" 2>&1) || { echo "$cu"; fail "iscsi-test-cu CryptoErase failed on an own-key volume"; }
echo "$cu" | grep -E "Test:|SKIPPED|FAILED|asserts|tests " || true
echo "$cu" | qgrep "SKIPPED" && { echo "$cu"; fail "a CryptoErase test was skipped on an own-key volume"; }
cr=$(iscsi-test-cu --dataloss --allow-sanitize --test=SCSI.Sanitize.CryptoEraseReserved \
	"$(url cu)" 2>&1) || { echo "$cr"; fail "iscsi-test-cu CryptoEraseReserved failed on an own-key volume"; }
echo "$cr" | grep -E "Test:|SKIPPED|FAILED" || true
echo "$cr" | qgrep "SKIPPED" && { echo "$cr"; fail "CryptoEraseReserved was skipped on an own-key volume"; }
pu=$(iscsi-test-cu --dataloss --allow-sanitize --test=SCSI.Sanitize.CryptoErase \
	"$(url pub)" 2>&1) || { echo "$pu"; fail "iscsi-test-cu CryptoErase failed on pub"; }
echo "$pu" | qgrep "SKIPPED.*not" || { echo "$pu"; fail "CryptoErase was not skipped on pub"; }
qemu-img compare -q -f raw -F raw "$T/fs.img" "$(url pub)" || fail "pub changed"
stop_daemon
"$CAIRN" check -r "$R" --read-data >/dev/null || fail "check --read-data fails"

log "deleting an own-key volume destroys its key, unless a clone shares it"
"$CAIRN" volume create -r "$R" del1 --size 8M --own-key >/dev/null
kd=$(vfield "$R" del1 key)
head -c 8M "$T/fs.img" >"$T/del.img"
"$CAIRN" import del1 "$T/del.img" -r "$R" --state-dir "$ST" >/dev/null || fail "import into del1"
"$CAIRN" snapshot create del1 --name s -r "$R" --state-dir "$ST" >/dev/null || fail "snapshot del1"
"$CAIRN" volume clone del1@s del1c -r "$R" --state-dir "$ST" >/dev/null || fail "clone del1"
[ "$(vfield "$R" del1c key)" = "$kd" ] || fail "the clone does not share its source's key"
"$CAIRN" volume delete del1 -r "$R" --state-dir "$ST" >/dev/null || fail "delete del1"
[ -f "$R/meta/vkeys/$kd" ] || fail "the key a clone shares was destroyed with its source"
"$CAIRN" export del1c "$T/del1c.img" -r "$R" --state-dir "$ST" >/dev/null || fail "export del1c"
cmp -s "$T/del1c.img" "$T/del.img" || fail "the clone lost its data when its source was deleted"
"$CAIRN" volume delete del1c -r "$R" --state-dir "$ST" >/dev/null || fail "delete del1c"
[ ! -e "$R/meta/vkeys/$kd" ] || fail "deleting the last volume under key $kd left the key"
[ -f "$R/meta/vkeys/$kd.erased" ] || fail "no tombstone of the deleted volumes' key"
out=$("$CAIRN" check -r "$R" --read-data) || fail "check --read-data after the deletes: $out"
# the imported chunks were under the volume key: unreadable now, counted apart, not damage
echo "$out" | qgrep "under destroyed volume keys" || fail "the deleted own-key volumes' chunks were not under their key: $out"
"$CAIRN" gc -r "$R" --grace 0 >/dev/null || fail "gc after the deletes"
"$CAIRN" check -r "$R" --read-data >/dev/null || fail "check --read-data after gc"

log "kill -9 during a CRYPTO ERASE (S3 behind the fault proxy), restart: it completes"
start_s3rver
python3 "$ROOT/tests/s3/fault_proxy.py" --upstream "127.0.0.1:$S3PORT" --rate 0 --stall 60 \
	>"$T/proxy.port" 2>"$T/proxy.log" &
PXPID=$!
for _ in $(seq 100); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
PXPORT=$(head -1 "$T/proxy.port")
[ -n "$PXPORT" ] || fail "fault proxy did not start"
export CAIRN_S3_ENDPOINT=http://127.0.0.1:$PXPORT
proxy() { python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1]).read()' \
	"http://127.0.0.1:$PXPORT/__fault_proxy_set?$1"; }
S=s3://cairn-cerase/repo
"$CAIRN" init -r "$S" --encrypt >/dev/null
"$CAIRN" volume create -r "$S" s3v --size 32M --own-key >/dev/null
"$CAIRN" volume create -r "$S" s3p --size 32M >/dev/null
k1=$(vfield "$S" s3v key)
start_daemon "$S" "$T/state3"
qemu-img convert -n -f raw -O raw "$T/fs.img" "$(url s3v)"
qemu-img convert -n -f raw -O raw "$T/fs.img" "$(url s3p)"
"$CAIRN" snapshot create -r "$S" s3v --name snap >/dev/null
# from here every request for a history object stalls: the erase stops in the middle
proxy "rate=1&modes=stall&match=/history/"
out=$(san s3v crypto-erase immed)
[ "$out" = "sanitize GOOD" ] || fail "crypto erase (IMMED) of s3v: $out"
sleep 2
out=$(san s3v tur)
case $out in sanitizing*) echo "  before the kill: $out" ;; *) fail "s3v is not being erased: $out" ;; esac
kill9_daemon
proxy "rate=0"
start_daemon "$S" "$T/state3"
qgrep "resuming the SANITIZE CRYPTO ERASE" "$T/serve.log" || fail "the daemon did not log the resume"
out=$(san s3v wait 120) || fail "the resumed crypto erase did not end: $out"
grep -E "resuming the SANITIZE|CRYPTO ERASE (done|failed)|destroying key" "$T/serve.log"
[ "$(san s3v tur)" = ready ] || fail "s3v is not ready after the resumed crypto erase"
qemu-img compare -q -f raw -F raw "$T/zero.img" "$(url s3v)" || fail "s3v does not read zeros after the resumed erase"
qemu-img compare -q -f raw -F raw "$T/fs.img" "$(url s3p)" || fail "s3p changed"
k2=$(vfield "$S" s3v key)
[ -n "$k2" ] && [ "$k2" != "$k1" ] || fail "s3v has no new key after the resumed erase"
expect_fail "has no snapshot named 'snap'" "$CAIRN" export -r "$S" s3v@snap "$T/x.img"
qemu-img convert -n -f raw -O raw "$T/fs.img" "$(url s3v)"
stop_daemon
out=$("$CAIRN" check -r "$S" --read-data) || fail "check --read-data fails after the resumed erase: $out"
echo "$out" | qgrep "under destroyed volume keys" || fail "check finds no erased chunk of the old key"
kill "$PXPID" 2>/dev/null || true
wait "$PXPID" 2>/dev/null || true
log "ok"
