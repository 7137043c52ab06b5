#!/bin/bash
# Bad input gets a clear error and loses nothing, and the daemon keeps serving everyone
# else: malformed PDUs, abrupt disconnects, reads and writes beyond the end of the LUN,
# a corrupt pack (MEDIUM ERROR, never wrong data), a full state disk.
source "$(dirname "$0")/lib.sh"
R=$T/repo
"$CAIRN" init -r "$R" >/dev/null
"$CAIRN" volume create a --size 64M -r "$R" >/dev/null
"$CAIRN" volume create b --size 64M -r "$R" >/dev/null
head -c 16M /dev/urandom >"$T/a.bin"
head -c 16M /dev/urandom >"$T/b.bin"
start_daemon "$R" "$T/state"
qemu-img convert -n -f raw -O raw "$T/a.bin" "$(url a)"

log "malformed PDUs and abrupt disconnects"
python3 - "$PORT" <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s
def closed(s):
    try:
        s.settimeout(5)
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, socket.timeout) as e:
        return not isinstance(e, socket.timeout)
# 0: a peer that connects, sends half a header and stalls is dropped (login timeout)
stalled = conn(); stalled.sendall(b"\x43\x87\x00"); t0 = time.time()
# 1: 48 bytes of garbage with an invalid opcode before login
s = conn(); s.sendall(bytes([0x3f]) + b"\xff" * 47)
assert closed(s), "garbage before login did not close the connection"
# 2: a login PDU that claims a 16 MiB data segment
bhs = bytearray(48); bhs[0] = 0x43; bhs[1] = 0x87; bhs[5:8] = b"\xff\xff\xff"
s = conn(); s.sendall(bytes(bhs) + b"x" * 1000)
assert closed(s), "oversized login was not refused"
# 3: half a header, then hang up; 4: connect and hang up at once; many of them
for i in range(50):
    s = conn()
    if i % 2: s.sendall(b"\x43\x87\x00")
    s.close()
# 5: a login with garbage text keys
text = b"InitiatorName=\xff\xfe\x00Bogus\x00=\x00" + b"A" * 300
bhs = bytearray(48); bhs[0] = 0x43; bhs[1] = 0x87; bhs[5:8] = len(text).to_bytes(3, "big")
bhs[8:14] = b"\x80\x00\x00\x01\x00\x00"
pad = (4 - len(text) % 4) % 4
s = conn(); s.sendall(bytes(bhs) + text + b"\0" * pad)
s.settimeout(5)
try:
    d = s.recv(48)
    assert not d or d[0] & 0x3f in (0x23, 0x3f), f"unexpected reply opcode {d[0]:#x}"
except (ConnectionResetError, socket.timeout):
    pass
s.close()
stalled.settimeout(30)
assert stalled.recv(100) == b"" and time.time() - t0 < 25, "a stalled login was not dropped"
print("malformed input handled; stalled login dropped after %.0f s" % (time.time() - t0))
PY
qemu-img compare -f raw -F raw "$T/a.bin" "$(url a)" || fail "data differs after malformed input"
kill -0 "$DAEMON_PID" || fail "daemon died on malformed input"

log "IO beyond the end of the LUN"
if qemu-io -f raw -c "read 64M 4k" "$(url a)" 2>&1 | tee "$T/eol" | qgrep "read 4096/4096"; then
	fail "read beyond the end succeeded"
fi
iscsi-test-cu --test=SCSI.Read16.BeyondEol "$(url b)" >"$T/eol.cu" 2>&1 || true
qgrep "Test: BeyondEol ...passed" "$T/eol.cu" || { cat "$T/eol.cu"; fail "READ16 beyond the end not refused correctly"; }
iscsi-test-cu --dataloss --test=SCSI.Write16.BeyondEol "$(url b)" >"$T/eol2.cu" 2>&1 || true
qgrep "Test: BeyondEol ...passed" "$T/eol2.cu" || { cat "$T/eol2.cu"; fail "WRITE16 beyond the end not refused correctly"; }

log "corrupt pack: MEDIUM ERROR for the damaged range, never wrong data"
stop_daemon                       # a's chunks are now in their own pack(s)
start_daemon "$R" "$T/state"
qemu-img convert -n -f raw -O raw "$T/b.bin" "$(url b)"
stop_daemon
apack=$(ls -tr $(find "$R/packs" -type f) | head -1)
python3 - "$apack" <<'PY'
import os, sys
p = sys.argv[1]; n = os.path.getsize(p)
with open(p, "r+b") as f:
    for off in (n // 3, n // 2):
        f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x55]))
PY
start_daemon "$R" "$T/state"
rc=0; qemu-img convert -f raw -O raw "$(url a)" "$T/a.back" 2>"$T/corrupt.err" || rc=$?
[ $rc -ne 0 ] || { cmp -s "$T/a.bin" <(head -c 16M "$T/a.back") && fail "corruption went unnoticed?" ; fail "read of a damaged pack returned data instead of an error"; }
cat "$T/corrupt.err"
kill -0 "$DAEMON_PID" || fail "daemon died on a corrupt pack"
qemu-img compare -f raw -F raw "$T/b.bin" "$(url b)" || fail "undamaged volume b no longer reads right"
stop_daemon

log "full state disk: writes fail cleanly, acknowledged data stays"
truncate -s 24M "$T/small.fs"
mkfs.ext4 -q -F "$T/small.fs"
mkdir -p "$T/mnt.small"
mount -o loop "$T/small.fs" "$T/mnt.small"
"$CAIRN" volume create c --size 256M -r "$R" >/dev/null
start_daemon "$R" "$T/mnt.small/state"
qemu-io -f raw -c "write -P 0x33 0 1M" -c flush "$(url c)" >/dev/null || fail "small write on a roomy disk failed"
fallocate -l $(( $(df --output=avail -B1 "$T/mnt.small" | tail -1) - 4096 )) "$T/mnt.small/filler" 2>/dev/null || true
rc=0; qemu-io -f raw -c "write -P 0x44 8M 32M" "$(url c)" >"$T/full.out" 2>&1 || rc=$?
cat "$T/full.out" | tail -3
qgrep -i "error\|failed" "$T/full.out" || [ $rc -ne 0 ] || fail "writes into a full disk reported success"
kill -0 "$DAEMON_PID" || fail "daemon died on a full disk"
qemu-io -f raw -c "read -P 0x33 0 1M" "$(url c)" | qgrep "read 1048576/1048576" || fail "acknowledged data lost on a full disk"
rm -f "$T/mnt.small/filler"
qemu-io -f raw -c "write -P 0x55 1M 1M" -c "read -P 0x55 1M 1M" "$(url c)" | qgrep "read 1048576" || fail "writes do not resume once space is back"
stop_daemon
umount "$T/mnt.small"
