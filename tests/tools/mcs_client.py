#!/usr/bin/env python3
"""mcs_client.py - a raw-PDU iSCSI initiator for Multiple Connections per Session (MC/S).

No initiator on this machine speaks MC/S (libiscsi does not), and the target's own PDU
code may not be the only check of itself, so this initiator is written from RFC 7143
alone with the Python standard library: it builds Login (with CHAP MD5), SCSI Command
(WRITE 10 / READ 10 with immediate, unsolicited and R2T-solicited data), Data-Out,
NOP-Out, Task Management and Logout PDUs by hand and checks the target's answers.

Usage: mcs_client.py --port P --target IQN [--cairn BIN --repo DIR] SCENARIO
Scenarios (each exits 0 when every check holds, else prints FAIL: ... and exits 1):
  io        one session, 4 connections: different data written through each (immediate,
            unsolicited Data-Out, R2T-solicited, mixed; one at a time, then all at once),
            read back through the others; the session listing shows each connection
  order     CmdSN n+1 sent on B before n on A (SCSI commands and NOP-Outs): the target
            holds n+1 until n arrives (ExpCmdSN stays at n), then answers both
  abort     ABORT TASK on A of a task waiting for R2T data on B, of a task held above a
            CmdSN gap, of a command never sent (RefCmdSN); ABORT TASK SET on A empties B
  logout    logout of another CID, of its own CID, of an unknown CID (CID not found),
            reason 2 (not supported at ERL 0); the session goes on; a connection added
            after; a session logout closes every connection
  refuse    too many connections, wrong TSIH, another InitiatorName or ISID with the
            session's TSIH, a denied IQN and a denied address on an added connection,
            read-only address on a full session, connection reinstatement (same CID)
  chap      (a CHAP target) an added connection must authenticate: none or a wrong
            secret is refused, another user is refused, the right secret joins
  kill      a connection's socket reset with a write in flight: the other connections
            of the session and the daemon go on; the session ends with its last one
Layouts follow RFC 7143 section 11 (byte offsets in the comments of each builder).
"""
import argparse
import hashlib
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

OP_NOP_OUT, OP_SCSI_CMD, OP_TMF, OP_LOGIN, OP_TEXT, OP_DATA_OUT, OP_LOGOUT = 0, 1, 2, 3, 4, 5, 6
OP_NOP_IN, OP_SCSI_RSP, OP_TMF_RSP, OP_LOGIN_RSP = 0x20, 0x21, 0x22, 0x23
OP_TEXT_RSP, OP_DATA_IN, OP_LOGOUT_RSP, OP_R2T, OP_ASYNC, OP_REJECT = 0x24, 0x25, 0x26, 0x31, 0x32, 0x3F
IMM = 0x40
RSVD = 0xFFFFFFFF
BLOCK = 512

LOGIN_AUTH_FAILED = 0x0201
LOGIN_FORBIDDEN = 0x0202
LOGIN_TOO_MANY = 0x0206
LOGIN_NO_SESSION = 0x020A

# our side of the session: small bursts so that a 64 KiB write needs several R2Ts
OUR_MRDSL = 8192
FIRST_BURST = 16384
MAX_BURST = 32768


DEBUG = bool(os.environ.get("MCS_DEBUG"))


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def _crc32c_table():
    tab = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        tab.append(c)
    return tab


CRC32C_TAB = _crc32c_table()


def crc32c(data):
    """CRC32C (Castagnoli), the iSCSI header and data digest (RFC 7143 13.1)."""
    c = 0xFFFFFFFF
    for b in data:
        c = CRC32C_TAB[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def u32(b, off):
    return struct.unpack_from(">I", b, off)[0]


def sn_lt(a, b):
    return a != b and ((a - b) & 0xFFFFFFFF) >= 0x80000000


def kv(pairs):
    return b"".join(("%s=%s" % (k, v)).encode() + b"\0" for k, v in pairs)


def parse_kv(data):
    out = {}
    for item in data.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            out[k.decode()] = v.decode()
    return out


class Pdu:
    def __init__(self, bhs, data):
        self.bhs = bhs
        self.data = data

    @property
    def op(self):
        return self.bhs[0] & 0x3F

    @property
    def itt(self):
        return u32(self.bhs, 16)

    def __repr__(self):
        return "Pdu(op=0x%02x itt=0x%x)" % (self.op, self.itt)


class Session:
    """Session-wide state: names, ISID, TSIH, CmdSN, the target's window, ITTs."""

    def __init__(self, a, initiator=None, isid=None):
        self.a = a
        self.host, self.port, self.target = a.host, a.port, a.target
        self.initiator = initiator or a.initiator
        self.isid = isid or bytes([0x80, 0x00, 0x4D, 0x43, 0x53, os.getpid() & 0xFF])
        self.tsih = 0
        self.cmdsn = 1
        self.exp_cmdsn = 1
        self.max_cmdsn = 1
        self.itt = 0x1000
        self.conns = []
        self.keys = {}

    def next_itt(self):
        self.itt += 1
        return self.itt

    def take_cmdsn(self):
        sn = self.cmdsn
        self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
        return sn

    def window(self, bhs):
        exp, mx = u32(bhs, 28), u32(bhs, 32)
        if not sn_lt(exp, self.exp_cmdsn):
            self.exp_cmdsn = exp
        if not sn_lt(mx, self.max_cmdsn):
            self.max_cmdsn = mx


class Conn:
    """One TCP connection of a session, with its own StatSN and PDUs not yet claimed."""

    def __init__(self, sess, cid, src=None):
        self.s = sess
        self.cid = cid
        self.exp_statsn = 0
        self.sock = socket.create_connection((sess.host, sess.port), timeout=10,
                                             source_address=(src, 0) if src else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.inbox = []
        self.closed = False
        self.hd = self.dd = False  # digests in force (after the final Login Response)

    # ---- wire ----
    def send(self, bhs, data=b""):
        bhs = bytearray(bhs)
        bhs[5:8] = len(data).to_bytes(3, "big")
        if DEBUG:
            print("    conn %d -> op 0x%02x itt 0x%x flags 0x%02x cmdsn %d len %d" % (
                self.cid, bhs[0] & 0x3F, u32(bhs, 16), bhs[1], u32(bhs, 24), len(data)),
                file=sys.stderr)
        pad = b"\0" * ((4 - len(data) % 4) % 4)
        out = bytes(bhs)
        if self.hd:
            out += struct.pack("<I", crc32c(out))
        out += data + pad
        if data and self.dd:
            out += struct.pack("<I", crc32c(data + pad))
        self.sock.sendall(out)

    def _read(self, n, timeout):
        buf = b""
        self.sock.settimeout(timeout)
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout:
                if not buf:
                    return None
                raise Fail("conn %d: PDU cut short" % self.cid)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                raise EOFError
            buf += chunk
        return buf

    def recv_raw(self, timeout=10.0):
        """The next PDU from the socket, or None after timeout s. EOFError when closed."""
        bhs = self._read(48, timeout)
        if bhs is None:
            return None
        ahs = bhs[4] * 4
        dlen = int.from_bytes(bhs[5:8], "big")
        if ahs:
            bhs += self._read(ahs, 10)
        if self.hd:
            d = self._read(4, 10)
            check(struct.unpack("<I", d)[0] == crc32c(bhs), "conn %d: bad header digest"
                  % self.cid)
        bhs = bhs[:48]
        data = b""
        if dlen:
            data = self._read(dlen + (4 - dlen % 4) % 4, 10)
            if self.dd:
                d = self._read(4, 10)
                check(struct.unpack("<I", d)[0] == crc32c(data), "conn %d: bad data digest"
                      % self.cid)
            data = data[:dlen]
        p = Pdu(bytes(bhs), data)
        op = p.op
        if DEBUG:
            print("    conn %d <- op 0x%02x itt 0x%x flags 0x%02x sn %d exp %d max %d len %d" % (
                self.cid, op, p.itt, p.bhs[1], u32(p.bhs, 24), u32(p.bhs, 28), u32(p.bhs, 32),
                len(data)), file=sys.stderr)
        status_bearing = op in (OP_SCSI_RSP, OP_TMF_RSP, OP_LOGIN_RSP, OP_TEXT_RSP,
                                OP_LOGOUT_RSP, OP_REJECT, OP_ASYNC, OP_R2T) or \
            (op == OP_NOP_IN and p.itt != RSVD) or (op == OP_DATA_IN and p.bhs[1] & 1)
        if status_bearing and op not in (OP_R2T,):
            self.exp_statsn = (u32(p.bhs, 24) + 1) & 0xFFFFFFFF
        if op != OP_LOGIN_RSP:
            self.s.window(p.bhs)
        return p

    def recv(self, timeout=10.0, want=None):
        """The next PDU matching want(pdu) (others stay in the inbox), or None."""
        for i, p in enumerate(self.inbox):
            if want is None or want(p):
                return self.inbox.pop(i)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            p = self.recv_raw(left)
            if p is None:
                return None
            if want is None or want(p):
                return p
            self.inbox.append(p)

    def expect_closed(self, timeout=10.0):
        """True if the target closes this connection within timeout s."""
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                p = self.recv_raw(end - time.monotonic())
                if p is None:
                    return False
        except EOFError:
            return True
        return False

    def reset(self):
        """Abort the socket (RST), as a dying host or cut cable would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.closed = True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True

    # ---- login (RFC 7143 11.12: byte 1 T|C|CSG<<2|NSG, 8 ISID, 14 TSIH, 16 ITT,
    #      20 CID, 24 CmdSN, 28 ExpStatSN; response 36 status class, 37 detail) ----
    def login_pdu(self, flags, itt, keys):
        h = bytearray(48)
        h[0] = IMM | OP_LOGIN
        h[1] = flags
        h[8:14] = self.s.isid
        struct.pack_into(">HI", h, 14, self.s.tsih, itt)
        struct.pack_into(">H", h, 20, self.cid)
        struct.pack_into(">II", h, 24, self.s.cmdsn, self.exp_statsn)
        self.send(h, kv(keys))
        r = self.recv_raw(10)
        check(r is not None and r.op == OP_LOGIN_RSP, "conn %d: no Login Response" % self.cid)
        return r, (r.bhs[36] << 8) | r.bhs[37], parse_kv(r.data)

    def login(self, tsih=0, op_keys=None, chap=None, initiator=None, digests=False):
        """Log in (leading if tsih == 0, else add this connection to session tsih).
        Returns (status, response keys). chap = (user, secret) or None."""
        s = self.s
        s.tsih = tsih
        itt = s.next_itt()
        sec = [("InitiatorName", initiator or s.initiator), ("TargetName", s.target),
               ("SessionType", "Normal"), ("AuthMethod", "CHAP,None" if chap else "None")]
        keys_seen = {}
        transit = 0x80 | (0 << 2) | 1
        r, st, k = self.login_pdu(transit, itt, sec)
        keys_seen.update(k)
        while st == 0 and not (r.bhs[1] & 0x80 and (r.bhs[1] & 3) == 1):
            if chap and k.get("AuthMethod") == "CHAP":
                r, st, k = self.login_pdu(transit, itt, [("CHAP_A", "5")])
            elif chap and "CHAP_C" in k:
                cid = int(k["CHAP_I"], 0)
                chal = bytes.fromhex(k["CHAP_C"][2:])
                resp = hashlib.md5(bytes([cid]) + chap[1].encode() + chal).hexdigest()
                r, st, k = self.login_pdu(transit, itt, [("CHAP_N", chap[0]),
                                                         ("CHAP_R", "0x" + resp)])
            else:
                raise Fail("conn %d: login stuck in the security stage: %r" % (self.cid, k))
            keys_seen.update(k)
        if st:
            return st, keys_seen
        dg = "CRC32C" if digests else "None"
        ops = op_keys if op_keys is not None else [
            ("HeaderDigest", dg), ("DataDigest", dg),
            ("MaxConnections", str(s.a.max_conns)), ("InitialR2T", "No"),
            ("ImmediateData", "Yes"), ("MaxRecvDataSegmentLength", str(OUR_MRDSL)),
            ("MaxBurstLength", str(MAX_BURST)), ("FirstBurstLength", str(FIRST_BURST)),
            ("MaxOutstandingR2T", "1"), ("ErrorRecoveryLevel", "0"),
            ("DataPDUInOrder", "Yes"), ("DataSequenceInOrder", "Yes")]
        r, st, k = self.login_pdu(0x80 | (1 << 2) | 3, itt, ops)
        keys_seen.update(k)
        if st:
            return st, keys_seen
        check(r.bhs[1] & 0x80 and (r.bhs[1] & 3) == 3, "conn %d: no transit to full feature"
              % self.cid)
        s.tsih = struct.unpack_from(">H", r.bhs, 14)[0]
        s.window(r.bhs)
        self.hd = keys_seen.get("HeaderDigest") == "CRC32C"
        self.dd = keys_seen.get("DataDigest") == "CRC32C"
        if tsih == 0:
            s.keys = keys_seen
        s.conns.append(self)
        return 0, keys_seen

    # ---- full feature phase ----
    def nop(self, immediate=True, cmdsn=None, data=b""):
        """NOP-Out ping (11.18: 16 ITT, 20 TTT ffffffff, 24 CmdSN, 28 ExpStatSN);
        returns its ITT (the NOP-In comes back with it)."""
        itt = self.s.next_itt()
        h = bytearray(48)
        h[0] = (IMM if immediate else 0) | OP_NOP_OUT
        h[1] = 0x80
        if cmdsn is None:
            cmdsn = self.s.cmdsn if immediate else self.s.take_cmdsn()
        struct.pack_into(">IIII", h, 16, itt, RSVD, cmdsn, self.exp_statsn)
        self.send(h, data)
        return itt

    def ping(self):
        """Immediate NOP-Out round trip; returns the NOP-In (ExpCmdSN at 28)."""
        itt = self.nop()
        p = self.recv(10, lambda p: p.op == OP_NOP_IN and p.itt == itt)
        check(p is not None, "conn %d: no NOP-In for an immediate NOP-Out" % self.cid)
        return p

    def tmf(self, fn, rtt=RSVD, refcmdsn=0, lun=0):
        """Task Management Function Request, immediate (11.5: byte 1 0x80|function,
        8 LUN, 16 ITT, 20 Referenced Task Tag, 24 CmdSN, 28 ExpStatSN, 32 RefCmdSN);
        returns the response code (byte 2 of the response)."""
        itt = self.s.next_itt()
        h = bytearray(48)
        h[0] = IMM | OP_TMF
        h[1] = 0x80 | fn
        h[9] = lun
        struct.pack_into(">IIIII", h, 16, itt, rtt, self.s.cmdsn, self.exp_statsn, refcmdsn)
        self.send(h)
        p = self.recv(10, lambda p: p.op == OP_TMF_RSP and p.itt == itt)
        check(p is not None, "conn %d: no TMF response" % self.cid)
        return p.bhs[2]

    def logout(self, reason, cid=None):
        """Logout Request (11.14: byte 1 0x80|reason, 16 ITT, 20 CID, 24 CmdSN, 28
        ExpStatSN), non-immediate; returns the response code (byte 2 of the response)."""
        itt = self.s.next_itt()
        h = bytearray(48)
        h[0] = OP_LOGOUT
        h[1] = 0x80 | reason
        struct.pack_into(">I", h, 16, itt)
        struct.pack_into(">H", h, 20, self.cid if cid is None else cid)
        struct.pack_into(">II", h, 24, self.s.take_cmdsn(), self.exp_statsn)
        self.send(h)
        p = self.recv(10, lambda p: p.op == OP_LOGOUT_RSP and p.itt == itt)
        check(p is not None, "conn %d: no Logout Response" % self.cid)
        return p.bhs[2]


class Task:
    """One SCSI command on a connection (11.3: byte 1 F|R|W|attr, 8 LUN, 16 ITT, 20 EDTL,
    24 CmdSN, 28 ExpStatSN, 32 CDB) with its Data-Out (11.7: 20 TTT, 36 DataSN,
    40 BufferOffset) answering R2Ts (11.8: 20 TTT, 40 offset, 44 length) and its
    Data-In (11.7: byte 1 F|..|S, 36 DataSN, 40 BufferOffset)."""

    def __init__(self, conn, cdb, read_len=0, data=None, mode="imm", cmdsn=None,
                 immediate=False):
        self.c = conn
        self.cdb = cdb
        self.data = data or b""
        self.read_len = read_len
        self.mode = mode
        self.itt = conn.s.next_itt()
        self.immediate = immediate
        self.cmdsn = cmdsn if cmdsn is not None else (
            conn.s.cmdsn if immediate else conn.s.take_cmdsn())
        self.rbuf = bytearray(read_len)
        self.got = 0
        self.status = None
        self.sense = b""
        self.r2ts = 0
        self.exp_cmdsn_at_rsp = None

    def start(self):
        edtl = len(self.data) if self.data else self.read_len
        imm_len = unsol_len = 0
        if self.data:
            if self.mode == "imm":
                imm_len = unsol_len = min(len(self.data), FIRST_BURST)
            elif self.mode == "unsol":
                unsol_len = min(len(self.data), FIRST_BURST)
            elif self.mode == "mixed":
                imm_len = min(len(self.data), 4096)
                unsol_len = min(len(self.data), FIRST_BURST)
        h = bytearray(48)
        h[0] = (IMM if self.immediate else 0) | OP_SCSI_CMD
        h[1] = 0x01  # SIMPLE
        if unsol_len == imm_len:
            h[1] |= 0x80
        h[1] |= 0x20 if self.data else (0x40 if self.read_len else 0)
        struct.pack_into(">IIII", h, 16, self.itt, edtl, self.cmdsn, self.c.exp_statsn)
        h[32:32 + len(self.cdb)] = self.cdb
        self.c.send(h, self.data[:imm_len])
        off, sn = imm_len, 0
        while off < unsol_len:
            n = min(OUR_MRDSL, unsol_len - off)
            self.data_out(RSVD, sn, off, n, off + n == unsol_len)
            off += n
            sn += 1
        return self

    def data_out(self, ttt, datasn, off, n, final):
        h = bytearray(48)
        h[0] = OP_DATA_OUT
        h[1] = 0x80 if final else 0
        struct.pack_into(">II", h, 16, self.itt, ttt)
        struct.pack_into(">I", h, 28, self.c.exp_statsn)
        struct.pack_into(">II", h, 36, datasn, off)
        self.c.send(h, self.data[off:off + n])

    def handle(self, p):
        """A PDU of this task arrived. Returns True once the task has its status."""
        if p.op == OP_R2T:
            self.r2ts += 1
            ttt, off, n = u32(p.bhs, 20), u32(p.bhs, 40), u32(p.bhs, 44)
            check(off + n <= len(self.data), "R2T beyond the data (%d+%d)" % (off, n))
            sn, end = 0, off + n
            while off < end:
                k = min(OUR_MRDSL, end - off)
                self.data_out(ttt, sn, off, k, off + k == end)
                off += k
                sn += 1
            return False
        if p.op == OP_DATA_IN:
            off = u32(p.bhs, 40)
            check(off + len(p.data) <= self.read_len, "Data-In beyond the buffer")
            check(len(p.data) <= OUR_MRDSL, "Data-In longer than our MaxRecvDataSegmentLength")
            self.rbuf[off:off + len(p.data)] = p.data
            self.got += len(p.data)
            if p.bhs[1] & 1:
                self.status = p.bhs[3]
                self.exp_cmdsn_at_rsp = u32(p.bhs, 28)
                return True
            return False
        if p.op == OP_SCSI_RSP:
            self.status = p.bhs[3]
            self.exp_cmdsn_at_rsp = u32(p.bhs, 28)
            if len(p.data) >= 2:
                n = struct.unpack_from(">H", p.data, 0)[0]
                self.sense = p.data[2:2 + n]
            return True
        raise Fail("conn %d: unexpected %r for task 0x%x" % (self.c.cid, p, self.itt))


def pump(tasks, timeout=30.0):
    """Serve every task's connection (R2Ts, Data-In, responses) until all have status.
    PDUs of no pending task stay in their connection's inbox."""
    pending = {(t.c, t.itt): t for t in tasks}
    end = time.monotonic() + timeout
    while pending:
        conns = {c for c, _ in pending}
        for c in conns:  # first what already arrived
            for p in list(c.inbox):
                t = pending.get((c, p.itt))
                if t:
                    c.inbox.remove(p)
                    if t.handle(p):
                        del pending[(c, p.itt)]
        if not pending:
            break
        left = end - time.monotonic()
        check(left > 0, "no answer to %d tasks (ITTs %s)" % (
            len(pending), ", ".join("0x%x" % i for _, i in pending)))
        ready, _, _ = select.select([c.sock for c in conns], [], [], left)
        for c in conns:
            if c.sock not in ready:
                continue
            p = c.recv_raw(5)
            if p is None:
                continue
            t = pending.get((c, p.itt))
            if t is None:
                c.inbox.append(p)
            elif t.handle(p):
                del pending[(c, p.itt)]
    return tasks


def write10(lba, nblocks):
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, nblocks, 0)


def read10(lba, nblocks):
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, nblocks, 0)


def pattern(tag, n):
    seed = hashlib.sha256(tag.encode()).digest()
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
        i += 1
    return bytes(out[:n])


def write(conn, lba, data, mode="imm"):
    t = pump([Task(conn, write10(lba, len(data) // BLOCK), data=data, mode=mode).start()])[0]
    check(t.status == 0, "conn %d: WRITE(10) at %d (%s) status 0x%x sense %s" % (
        conn.cid, lba, mode, t.status, t.sense.hex()))
    return t


def read(conn, lba, n):
    t = pump([Task(conn, read10(lba, n // BLOCK), read_len=n).start()])[0]
    check(t.status == 0, "conn %d: READ(10) at %d status 0x%x sense %s" % (
        conn.cid, lba, t.status, t.sense.hex()))
    check(t.got == n, "conn %d: READ(10) returned %d of %d bytes" % (conn.cid, t.got, n))
    return bytes(t.rbuf)


def log(msg):
    print("  " + msg, flush=True)


def sessions(a):
    """The daemon's session list (cairn session list --json)."""
    out = subprocess.run([a.cairn, "session", "list", "-r", a.repo, "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def listed(a, sess):
    for s in sessions(a):
        if s["tsih"] == sess.tsih and s["initiator"] == sess.initiator:
            return s
    return None


def clear_ua(conn):
    """TEST UNIT READY until GOOD: a new I_T nexus starts with a unit attention
    (POWER ON OR RESET) that the first command would get."""
    for _ in range(4):
        t = pump([Task(conn, bytes(6)).start()])[0]
        if t.status == 0:
            return
        check(t.status == 2 and len(t.sense) > 2 and t.sense[2] & 0xF == 6,
              "TEST UNIT READY status 0x%x sense %s" % (t.status, t.sense.hex()))
    raise Fail("unit attentions do not clear")


def open_session(a, n, first_cid=0, initiator=None, isid=None, chap=None):
    s = Session(a, initiator, isid)
    for i in range(n):
        c = Conn(s, first_cid + i)
        st, k = c.login(s.tsih, chap=chap)
        check(st == 0, "login of connection %d refused: 0x%04x" % (i, st))
        if i == 0:
            clear_ua(c)
        else:  # session-wide keys stay the leading login's; this connection's are its own
            check(k.get("MaxBurstLength") == "Irrelevant" and
                  k.get("MaxConnections") == "Irrelevant",
                  "Leading Only keys on an added connection answered %r" % k)
            check(k.get("MaxRecvDataSegmentLength") == s.keys["MaxRecvDataSegmentLength"],
                  "the added connection's MaxRecvDataSegmentLength: %r" % k)
    return s


# ---- scenarios ----

def sc_io(a):
    s = open_session(a, 4)
    check(s.keys.get("MaxConnections") == str(min(a.max_conns, a.expect_max)),
          "MaxConnections answered %r" % s.keys.get("MaxConnections"))
    log("session tsih %d with %d connections (MaxConnections=%s)" % (
        s.tsih, len(s.conns), s.keys.get("MaxConnections")))
    modes = ["imm", "unsol", "r2t", "mixed"]
    size = 65536
    # one at a time: region i written through connection i, read through i+1
    for i, c in enumerate(s.conns):
        t = write(c, 1000 + i * 256, pattern("seq%d" % i, size), modes[i])
        if modes[i] == "r2t":
            check(t.r2ts >= 2, "an R2T-solicited 64 KiB write got %d R2Ts" % t.r2ts)
    for i in range(4):
        got = read(s.conns[(i + 1) % 4], 1000 + i * 256, size)
        check(got == pattern("seq%d" % i, size), "region %d differs when read through "
              "connection %d" % (i, (i + 1) % 4))
    log("4 writes (immediate, unsolicited, R2T, mixed) read back through other connections")
    # all at once: commands interleave across connections in any order at the target
    tasks = []
    for r in range(3):
        for i, c in enumerate(s.conns):
            data = pattern("par%d.%d" % (r, i), size)
            tasks.append(Task(c, write10(3000 + (r * 4 + i) * 256, size // BLOCK), data=data,
                              mode=modes[(i + r) % 4]).start())
    pump(tasks)
    for t in tasks:
        check(t.status == 0, "parallel write status 0x%x" % t.status)
    tasks = []
    for r in range(3):
        for i in range(4):
            c = s.conns[(i + 2) % 4]
            tasks.append(Task(c, read10(3000 + (r * 4 + i) * 256, size // BLOCK),
                              read_len=size).start())
    pump(tasks)
    for k, t in enumerate(tasks):
        r, i = divmod(k, 4)
        check(t.status == 0 and bytes(t.rbuf) == pattern("par%d.%d" % (r, i), size),
              "parallel region %d.%d differs" % (r, i))
    log("12 writes in flight on 4 connections at once, read back through others")
    # each connection answers its own NOP-Out
    for c in s.conns:
        c.ping()
    if a.cairn:
        ls = listed(a, s)
        check(ls is not None, "the session is not listed")
        cs = ls.get("connections", [])
        check(len(cs) == 4, "listed with %d connections" % len(cs))
        check(sorted(x["cid"] for x in cs) == [0, 1, 2, 3], "CIDs listed: %r" % cs)
        check(len({x["address"] for x in cs}) == 4, "connection addresses: %r" % cs)
        check(all(x["commands"] >= 5 and x["bytes_written"] > 0 and x["bytes_read"] > 0
                  for x in cs), "per-connection counters: %r" % cs)
        check(ls["commands"] >= sum(x["commands"] for x in cs), "session counters")
        check(ls["max_connections"] == min(a.max_conns, a.expect_max), "max_connections")
        txt = subprocess.run([a.cairn, "session", "list", "-r", a.repo], check=True,
                             capture_output=True, text=True).stdout
        check(txt.count("connection CID") >= 4, "text listing: %s" % txt)
        log("listing: %d connections %s" % (len(cs), ", ".join(
            "CID %d %s (%d commands)" % (x["cid"], x["address"], x["commands"]) for x in cs)))
    for c in s.conns[1:]:
        check(c.logout(1) == 0, "logout of conn %d" % c.cid)
    check(s.conns[0].logout(0) == 0, "session logout")


def sc_order(a):
    s = open_session(a, 2)
    A, B = s.conns
    data = pattern("order", 8192)
    n = s.take_cmdsn()
    n1 = s.take_cmdsn()
    tb = Task(B, read10(5000, 16), read_len=8192, cmdsn=n1).start()
    check(B.recv(1.0, lambda p: p.itt == tb.itt) is None,
          "CmdSN %d was answered before CmdSN %d arrived" % (n1, n))
    nop = B.ping()
    check(u32(nop.bhs, 28) == n, "ExpCmdSN %d while CmdSN %d is missing (want %d)" % (
        u32(nop.bhs, 28), n, n))
    log("CmdSN %d on B held while %d is missing (ExpCmdSN stays %d)" % (n1, n, n))
    ta = Task(A, write10(5000, 16), data=data, mode="imm", cmdsn=n).start()
    pump([ta, tb])
    check(ta.status == 0 and tb.status == 0, "statuses 0x%x 0x%x" % (ta.status, tb.status))
    check(not sn_lt(tb.exp_cmdsn_at_rsp, n1 + 1), "ExpCmdSN %d after both" % tb.exp_cmdsn_at_rsp)
    check(read(B, 5000, 8192) == data, "the write through A is not read through B")
    log("both answered once CmdSN %d arrived on A" % n)
    # non-SCSI PDUs are ordered the same way
    m = s.take_cmdsn()
    m1 = s.take_cmdsn()
    ib = B.nop(immediate=False, cmdsn=m1)
    check(B.recv(1.0, lambda p: p.itt == ib) is None, "NOP-Out %d answered before %d" % (m1, m))
    ia = A.nop(immediate=False, cmdsn=m)
    check(A.recv(10, lambda p: p.itt == ia) is not None, "no NOP-In on A")
    p = B.recv(10, lambda p: p.itt == ib)
    check(p is not None and not sn_lt(u32(p.bhs, 28), m1 + 1), "NOP-In on B after the gap")
    log("non-immediate NOP-Outs %d (B) and %d (A) answered in order" % (m1, m))
    # a command outside the window (above MaxCmdSN) is ignored, the session goes on
    far = (s.max_cmdsn + 10) & 0xFFFFFFFF
    tf = Task(A, read10(0, 1), read_len=512, cmdsn=far).start()
    check(A.recv(1.0, lambda p: p.itt == tf.itt) is None, "a CmdSN above MaxCmdSN was answered")
    check(read(B, 5000, 8192) == data, "session stalled after an out-of-window command")
    log("CmdSN above MaxCmdSN ignored, session goes on")
    check(A.logout(0) == 0, "session logout")
    check(B.expect_closed(), "B not closed by the session logout")


def sc_abort(a):
    s = open_session(a, 2)
    A, B = s.conns
    # 1. a write on B waiting for its R2T-solicited data, aborted from A
    data = pattern("abort", 65536)
    tb = Task(B, write10(6000, 128), data=data, mode="r2t").start()
    r2t = B.recv(10, lambda p: p.op == OP_R2T and p.itt == tb.itt)
    check(r2t is not None, "no R2T for the write on B")
    check(A.tmf(1, rtt=tb.itt, refcmdsn=tb.cmdsn) == 0, "ABORT TASK from A of B's task")
    tb.handle(r2t)  # the data comes anyway: the target discards it
    B.ping()
    check(B.recv(0.5, lambda p: p.itt == tb.itt and p.op == OP_SCSI_RSP) is None,
          "the aborted task was answered")
    check(read(B, 6000, 4096) == bytes(4096), "the aborted write reached the disk")
    log("ABORT TASK on A of a task of B (waiting for Data-Out): done, nothing written")
    # 2. a command held above a CmdSN gap on B, aborted from A; the gap then filled
    n = s.take_cmdsn()
    th = Task(B, read10(0, 1), read_len=512, cmdsn=s.take_cmdsn()).start()
    check(B.recv(0.5, lambda p: p.itt == th.itt) is None, "held command answered")
    check(A.tmf(1, rtt=th.itt, refcmdsn=th.cmdsn) == 0, "ABORT TASK of a held command")
    tn = Task(A, read10(0, 1), read_len=512, cmdsn=n).start()
    pump([tn])
    check(not sn_lt(tn.exp_cmdsn_at_rsp, th.cmdsn + 1), "ExpCmdSN did not pass the aborted "
          "command (%d)" % tn.exp_cmdsn_at_rsp)
    check(B.recv(0.5, lambda p: p.itt == th.itt) is None, "the aborted held command ran")
    log("ABORT TASK of a command held above a gap: its CmdSN counts as received")
    # 3. a command never sent (lost with a connection): ABORT TASK by RefCmdSN fills the gap
    lost = s.take_cmdsn()
    tl = Task(B, read10(0, 1), read_len=512, cmdsn=s.take_cmdsn()).start()
    check(B.recv(0.5, lambda p: p.itt == tl.itt) is None, "held command answered")
    check(A.tmf(1, rtt=0x7777777, refcmdsn=lost) == 0, "ABORT TASK by RefCmdSN of a command "
          "never received")
    pump([tl])
    check(tl.status == 0, "the command after the gap failed")
    check(A.tmf(1, rtt=0x7777778, refcmdsn=(s.exp_cmdsn - 5) & 0xFFFFFFFF) == 1,
          "ABORT TASK of an old unknown task: want 'task does not exist'")
    log("ABORT TASK with a RefCmdSN never received: gap closed; an old one: no such task")
    # 4. ABORT TASK SET on A empties the task set of B
    tb = Task(B, write10(7000, 128), data=data, mode="r2t").start()
    check(B.recv(10, lambda p: p.op == OP_R2T and p.itt == tb.itt) is not None, "no R2T")
    check(A.tmf(2, lun=0) == 0, "ABORT TASK SET")
    B.ping()
    check(B.recv(0.5, lambda p: p.itt == tb.itt and p.op == OP_SCSI_RSP) is None,
          "a task of B answered after ABORT TASK SET on A")
    write(B, 7000, data[:8192], "imm")
    check(read(A, 7000, 8192) == data[:8192], "session after ABORT TASK SET")
    log("ABORT TASK SET on A aborts B's tasks; the session goes on")
    check(A.logout(0) == 0, "session logout")


def sc_logout(a):
    s = open_session(a, 3)
    A, B, C = s.conns
    check(A.logout(1, cid=C.cid) == 0, "logout of C from A")
    check(C.expect_closed(), "C not closed after its logout from A")
    log("logout of CID %d sent on CID %d: closed" % (C.cid, A.cid))
    check(A.logout(1, cid=77) == 1, "logout of an unknown CID: want 1 (CID not found)")
    check(B.logout(2) == 2, "logout reason 2 at ERL 0: want 2 (recovery not supported)")
    B.ping()
    log("unknown CID: 'CID not found'; reason 2: 'connection recovery is not supported'")
    check(B.logout(1) == 0, "B logs itself out")
    check(B.expect_closed(), "B not closed after its own logout")
    write(A, 8000, pattern("lo", 32768), "r2t")
    check(read(A, 8000, 32768) == pattern("lo", 32768), "A after the logouts")
    if a.cairn:
        ls = listed(a, s)
        check(ls is not None and [x["cid"] for x in ls["connections"]] == [A.cid],
              "listing after logouts: %r" % ls)
    log("the session goes on over CID %d alone" % A.cid)
    D = Conn(s, 9)
    st, k = D.login(s.tsih, digests=True)
    check(st == 0, "adding a connection after logouts: 0x%04x" % st)
    check(D.hd and D.dd, "CRC32C digests on the added connection: %r" % k)
    check(read(D, 8000, 32768) == pattern("lo", 32768), "read through the added connection")
    write(D, 8100, pattern("dg", 40960), "mixed")
    check(read(A, 8100, 40960) == pattern("dg", 40960), "digest connection's write through A")
    log("connection added with CRC32C header and data digests beside one without")
    check(A.logout(0) == 0, "session logout")
    check(A.expect_closed() and D.expect_closed(), "session logout did not close everything")
    if a.cairn:
        check(listed(a, s) is None, "the session is still listed after its logout")
    log("session logout closes every connection; the session is gone")


def sc_refuse(a):
    s = open_session(a, 1)
    A = s.conns[0]
    lim = min(a.max_conns, a.expect_max)
    extra = []
    for i in range(1, lim):
        c = Conn(s, i)
        st, _ = c.login(s.tsih)
        check(st == 0, "connection %d of %d refused: 0x%04x" % (i + 1, lim, st))
        extra.append(c)
    c = Conn(s, 50)
    st, _ = c.login(s.tsih)
    check(st == LOGIN_TOO_MANY, "connection %d of %d: status 0x%04x, want 0x0206" % (
        lim + 1, lim, st))
    check(c.expect_closed(), "refused connection left open")
    log("MaxConnections=%d: connection %d refused with 0x0206 (too many connections)" % (
        lim, lim + 1))
    for c in extra:
        check(c.logout(1) == 0, "logout")
    cases = [
        ("wrong TSIH", dict(tsih=(s.tsih + 4321) & 0xFFFF or 1), LOGIN_NO_SESSION),
        ("another InitiatorName with the session's TSIH", dict(initiator=a.other), LOGIN_NO_SESSION),
        ("another ISID with the session's TSIH", dict(isid=b"\x80\x00\x00\x00\x00\x09"),
         LOGIN_NO_SESSION),
        ("a denied IQN with the session's TSIH", dict(initiator=a.denied), LOGIN_FORBIDDEN),
        ("a denied address (%s)" % a.denied_ip, dict(src=a.denied_ip), LOGIN_FORBIDDEN),
        ("a read-only address (%s) on a full session" % a.ro_ip, dict(src=a.ro_ip),
         LOGIN_FORBIDDEN),
    ]
    for what, kw, want in cases:
        s2 = Session(a, kw.get("initiator"), kw.get("isid", s.isid))
        c = Conn(s2, 60, kw.get("src"))
        st, _ = c.login(kw.get("tsih", s.tsih))
        check(st == want, "%s: status 0x%04x, want 0x%04x" % (what, st, want))
        check(c.expect_closed(), "%s: refused connection left open" % what)
        log("%s: refused with 0x%04x" % (what, st))
    # a leading login (TSIH 0) from the denied address is refused too
    s3 = Session(a, isid=b"\x80\x00\x00\x00\x00\x0a")
    st, _ = Conn(s3, 0, a.denied_ip).login(0)
    check(st == LOGIN_FORBIDDEN, "leading login from the denied address: 0x%04x" % st)
    # connection reinstatement: a login with the CID of a live connection replaces it
    B = Conn(s, 5)
    check(B.login(s.tsih)[0] == 0, "add CID 5")
    tb = Task(B, write10(9000, 128), data=pattern("ri", 65536), mode="r2t").start()
    check(B.recv(10, lambda p: p.op == OP_R2T and p.itt == tb.itt) is not None, "no R2T")
    B2 = Conn(s, 5)
    st, _ = B2.login(s.tsih)
    check(st == 0, "connection reinstatement (CID 5): 0x%04x" % st)
    check(B.expect_closed(), "the reinstated connection's old socket is still open")
    write(B2, 9000, pattern("ri2", 8192), "unsol")
    check(read(A, 9000, 8192) == pattern("ri2", 8192), "after reinstatement")
    if a.cairn:
        ls = listed(a, s)
        check(ls is not None and sorted(x["cid"] for x in ls["connections"]) == [0, 5],
              "listing after reinstatement: %r" % (ls and ls["connections"]))
    log("CID 5 reinstated: the old connection closed (its write ended), the new one serves")
    check(A.logout(0) == 0, "session logout")


def sc_chap(a):
    chap = (a.chap_user, a.chap_secret)
    s = open_session(a, 1, chap=chap)
    A = s.conns[0]
    for what, cred, want in [("no CHAP", None, LOGIN_AUTH_FAILED),
                             ("a wrong secret", (a.chap_user, a.chap_secret + "x"),
                              LOGIN_AUTH_FAILED),
                             ("another CHAP user", (a.chap_user2, a.chap_secret2),
                              LOGIN_FORBIDDEN)]:
        c = Conn(s, 7)
        st, _ = c.login(s.tsih, chap=cred)
        check(st == want, "added connection with %s: 0x%04x, want 0x%04x" % (what, st, want))
        check(c.expect_closed(), "refused connection left open")
        s.conns = [A]
        log("added connection with %s: refused with 0x%04x" % (what, st))
    B = Conn(s, 8)
    check(B.login(s.tsih, chap=chap)[0] == 0, "added connection with the right secret")
    write(B, 100, pattern("chap", 16384), "mixed")
    check(read(A, 100, 16384) == pattern("chap", 16384), "CHAP session I/O")
    log("added connection with the right secret joins")
    check(A.logout(0) == 0, "session logout")


def sc_kill(a):
    other = open_session(a, 1, initiator=a.other)  # another session, one connection
    s = open_session(a, 3)
    A, B, C = s.conns
    write(A, 11000, pattern("k0", 32768), "imm")
    # B dies with a write waiting for its R2T data and a command held above a gap
    tb = Task(B, write10(11100, 128), data=pattern("k1", 65536), mode="r2t").start()
    check(B.recv(10, lambda p: p.op == OP_R2T and p.itt == tb.itt) is not None, "no R2T")
    # ... and half of a command PDU (CmdSN n, 1000 of its 8192 immediate bytes) while
    # CmdSN n+1 waits on A for it
    n = s.take_cmdsn()
    h = bytearray(48)
    h[0], h[1] = OP_SCSI_CMD, 0x80 | 0x20 | 0x01
    struct.pack_into(">IIII", h, 16, s.next_itt(), 8192, n, B.exp_statsn)
    h[32:42] = write10(11300, 16)
    h[5:8] = (8192).to_bytes(3, "big")
    B.sock.sendall(bytes(h) + bytes(1000))
    ta = Task(A, read10(11000, 64), read_len=32768).start()
    check(A.recv(1.0, lambda p: p.itt == ta.itt) is None, "CmdSN %d answered before %d" % (
        ta.cmdsn, n))
    B.reset()
    # ERL 0: B's half-received command counts as received, so A's goes on by itself
    pump([ta])
    check(ta.status == 0 and bytes(ta.rbuf) == pattern("k0", 32768), "A's held command")
    check(read(C, 11300, 8192) == bytes(8192), "the half-received write reached the disk")
    check(read(C, 11000, 32768) == pattern("k0", 32768), "C after B was reset")
    write(C, 11200, pattern("k2", 16384), "r2t")
    check(read(A, 11200, 16384) == pattern("k2", 16384), "A after B was reset")
    if a.cairn:
        ls = listed(a, s)
        check(ls is not None and sorted(x["cid"] for x in ls["connections"]) == [0, 2],
              "listing after the reset: %r" % (ls and ls["connections"]))
    log("B reset mid-write and mid-PDU: A's command waiting for B's CmdSN went on, A and C "
        "go on, the listing shows CIDs 0 and 2")
    check(read(other.conns[0], 11200, 16384) == pattern("k2", 16384), "the other session")
    check(other.conns[0].logout(0) == 0, "the other session's logout")
    log("the other session goes on")
    A.reset()
    C.reset()
    time.sleep(0.5)
    if a.cairn:
        check(listed(a, s) is None, "the session is still listed after its last connection")
    log("the session ended with its last connection")


SCENARIOS = {"io": sc_io, "order": sc_order, "abort": sc_abort, "logout": sc_logout,
             "refuse": sc_refuse, "chap": sc_chap, "kill": sc_kill}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--initiator", default="iqn.2026-01.test:mcs")
    ap.add_argument("--other", default="iqn.2026-01.test:other")
    ap.add_argument("--denied", default="iqn.2026-01.test:bad-mcs")
    ap.add_argument("--denied-ip", default="127.0.0.2")
    ap.add_argument("--ro-ip", default="127.0.0.3")
    ap.add_argument("--max-conns", type=int, default=4, help="MaxConnections offered")
    ap.add_argument("--expect-max", type=int, default=4, help="the target's limit")
    ap.add_argument("--chap-user", default="")
    ap.add_argument("--chap-secret", default="")
    ap.add_argument("--chap-user2", default="")
    ap.add_argument("--chap-secret2", default="")
    ap.add_argument("--cairn", default="", help="cairn binary, for session listings")
    ap.add_argument("--repo", default="")
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    a = ap.parse_args()
    try:
        SCENARIOS[a.scenario](a)
    except subprocess.CalledProcessError as e:
        print("FAIL: %s: %s: %s" % (a.scenario, " ".join(e.cmd), e.stderr), flush=True)
        return 1
    except (Fail, EOFError, OSError) as e:
        print("FAIL: %s: %s" % (a.scenario, e or type(e).__name__), flush=True)
        return 1
    print("ok: %s" % a.scenario, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
