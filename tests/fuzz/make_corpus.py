#!/usr/bin/env python3
"""make_corpus.py - write the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/).

Seeds follow the input layouts documented at the top of fuzz_pdu.c, fuzz_login_text.c and
fuzz_cdb.c: logins as libiscsi sends them (keys in its order), discovery, CHAP (MD5 and
SHA-256, one-way and mutual, with the '?' placeholders the harness fills), digests, R2T and
Data-Out, TMF, text, logout; and a CDB sequence for every opcode of gateway/scsi.c's table.
The seed-libiscsi_* inputs of fuzz_pdu are recorded from real initiators by
capture_libiscsi.py. Files in corpus/*/regress-* are inputs of fixed bugs (each found with
a fuzz harness); this script never touches them. Run it from anywhere:
python3 tests/fuzz/make_corpus.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
IQN = b"iqn.2026-11.org.cairn:fuzz"
INI = b"iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-inq"

# FZ_* of fuzz_env.h
FZ_CHAP, FZ_MUTUAL, FZ_DISC_CHAP, FZ_LUN_RO, FZ_ACL, FZ_BS4K, FZ_NOCOPY = 1, 2, 4, 8, 16, 32, 64


def crc32c(data, crc=0xFFFFFFFF):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def keys(*kv):
    return b"".join(k + b"\0" for k in kv)


class Initiator:
    """Builds initiator PDUs with running ITT/CmdSN, optionally with digests."""

    def __init__(self):
        self.itt = 0x10
        self.cmdsn = 1
        self.hd = self.dd = False

    def pdu(self, bhs, data=b""):
        bhs = bytearray(bhs)
        bhs[5:8] = len(data).to_bytes(3, "big")
        out = bytes(bhs)
        if self.hd:
            out += struct.pack("<I", crc32c(bytes(bhs)))
        if data:
            pad = b"\0" * ((4 - len(data) % 4) % 4)
            out += data + pad
            if self.dd:
                out += struct.pack("<I", crc32c(data + pad))
        return out

    def next_itt(self):
        self.itt += 1
        return self.itt

    def login(self, flags, data, isid=b"\x40\x00\x01\x37\x00\x00", tsih=0, cid=0):
        bhs = bytearray(48)
        bhs[0] = 0x43  # immediate Login Request
        bhs[1] = flags
        bhs[8:14] = isid
        bhs[14:16] = struct.pack(">H", tsih)
        bhs[16:20] = struct.pack(">I", self.next_itt())
        bhs[20:22] = struct.pack(">H", cid)
        bhs[24:28] = struct.pack(">I", self.cmdsn)
        return self.pdu(bhs, data)

    def cmd(self, cdb, edtl, flags=0x80, data=b"", lun=0, immediate=False):
        bhs = bytearray(48)
        bhs[0] = 0x01 | (0x40 if immediate else 0)
        bhs[1] = flags
        bhs[9] = lun
        itt = self.next_itt()
        bhs[16:20] = struct.pack(">I", itt)
        bhs[20:24] = struct.pack(">I", edtl)
        bhs[24:28] = struct.pack(">I", self.cmdsn)
        if not immediate:
            self.cmdsn += 1
        bhs[32:32 + len(cdb)] = cdb
        return itt, self.pdu(bhs, data)

    def data_out(self, itt, ttt, off, data, datasn=0, final=True):
        bhs = bytearray(48)
        bhs[0] = 0x05
        bhs[1] = 0x80 if final else 0
        bhs[16:20] = struct.pack(">I", itt)
        bhs[20:24] = struct.pack(">I", ttt)
        bhs[36:40] = struct.pack(">I", datasn)
        bhs[40:44] = struct.pack(">I", off)
        return self.pdu(bhs, data)

    def nop(self, data=b"ping"):
        bhs = bytearray(48)
        bhs[0] = 0x40
        bhs[1] = 0x80
        bhs[16:20] = struct.pack(">I", self.next_itt())
        bhs[20:24] = b"\xff\xff\xff\xff"
        bhs[24:28] = struct.pack(">I", self.cmdsn)
        return self.pdu(bhs, data)

    def tmf(self, fn, ref_itt=0xFFFFFFFF, lun=0):
        bhs = bytearray(48)
        bhs[0] = 0x42
        bhs[1] = 0x80 | fn
        bhs[9] = lun
        bhs[16:20] = struct.pack(">I", self.next_itt())
        bhs[20:24] = struct.pack(">I", ref_itt)
        bhs[24:28] = struct.pack(">I", self.cmdsn)
        return self.pdu(bhs)

    def text(self, data, final=True, ttt=0xFFFFFFFF):
        bhs = bytearray(48)
        bhs[0] = 0x04
        bhs[1] = 0x80 if final else 0x40
        bhs[16:20] = struct.pack(">I", self.next_itt())
        bhs[20:24] = struct.pack(">I", ttt)
        bhs[24:28] = struct.pack(">I", self.cmdsn)
        self.cmdsn += 1
        return self.pdu(bhs, data)

    def logout(self, reason=0):
        bhs = bytearray(48)
        bhs[0] = 0x46
        bhs[1] = 0x80 | reason
        bhs[16:20] = struct.pack(">I", self.next_itt())
        bhs[24:28] = struct.pack(">I", self.cmdsn)
        return self.pdu(bhs)


# libiscsi's login keys, in its order (iscsi-inq, iscsi-ls, iscsi-test-cu)
def normal_keys(ini=INI, digest=b"None"):
    return keys(b"InitiatorName=" + ini, b"TargetName=" + IQN, b"SessionType=Normal",
                b"HeaderDigest=" + digest, b"DataDigest=" + digest,
                b"DefaultTime2Wait=2", b"DefaultTime2Retain=0", b"IFMarker=No", b"OFMarker=No",
                b"ErrorRecoveryLevel=0", b"InitialR2T=No", b"ImmediateData=Yes",
                b"MaxBurstLength=262144", b"FirstBurstLength=262144",
                b"MaxOutstandingR2T=1", b"MaxConnections=1",
                b"MaxRecvDataSegmentLength=262144", b"DataPDUInOrder=Yes",
                b"DataSequenceInOrder=Yes")


def discovery_keys(ini=INI):
    return keys(b"InitiatorName=" + ini, b"SessionType=Discovery", b"HeaderDigest=None",
                b"DataDigest=None", b"DefaultTime2Wait=2", b"DefaultTime2Retain=0",
                b"IFMarker=No", b"OFMarker=No", b"ErrorRecoveryLevel=0",
                b"MaxRecvDataSegmentLength=262144")


T_OPER_FULL = 0x80 | (1 << 2) | 3  # T, CSG operational, NSG full feature
T_SEC_OPER = 0x80 | (0 << 2) | 1   # T, CSG security, NSG operational
SEC_STAY = 0x00                    # CSG security, no transit


def cdb10(op, lba=0, blocks=1, b1=0):
    return bytes([op, b1]) + struct.pack(">I", lba) + b"\0" + struct.pack(">H", blocks) + b"\0"


def cdb16(op, lba=0, blocks=1, b1=0):
    return bytes([op, b1]) + struct.pack(">Q", lba) + struct.pack(">I", blocks) + b"\0\0"


INQ = bytes([0x12, 0, 0, 0, 96, 0])
INQ_VPD83 = bytes([0x12, 1, 0x83, 0, 255, 0])
TUR = bytes(6)
RC16 = bytes([0x9E, 0x10]) + bytes(8) + struct.pack(">I", 32) + b"\0\0"
REPORT_LUNS = bytes([0xA0, 0, 0, 0, 0, 0]) + struct.pack(">I", 64) + b"\0\0"


def records(cfg, pdus, split=None):
    """fuzz_pdu input: configuration byte, then [u16 len][bytes] records (one per PDU, or
    the stream cut at the offsets in split)."""
    out = bytes([cfg])
    if split is None:
        for p in pdus:
            out += struct.pack(">H", len(p)) + p
        return out
    stream = b"".join(pdus)
    prev = 0
    for cut in split + [len(stream)]:
        out += struct.pack(">H", cut - prev) + stream[prev:cut]
        prev = cut
    return out


def pdu_seeds():
    s = {}
    # 1. a normal session: login, the commands iscsi-inq and sg tools send, writes with
    # immediate data and with R2T + Data-Out, NOP, TMF, text, logout
    i = Initiator()
    p = [i.login(T_OPER_FULL, normal_keys())]
    p.append(i.cmd(TUR, 0)[1])
    p.append(i.cmd(INQ, 96, 0xC0)[1])
    p.append(i.cmd(INQ_VPD83, 255, 0xC0)[1])
    p.append(i.cmd(RC16, 32, 0xC0)[1])
    p.append(i.cmd(REPORT_LUNS, 64, 0xC0)[1])
    p.append(i.cmd(cdb10(0x28, 0, 8), 4096, 0xC0)[1])
    p.append(i.cmd(cdb10(0x2A, 8, 2), 1024, 0xA0, data=b"\x5a" * 1024)[1])
    itt, c = i.cmd(cdb10(0x2A, 16, 4), 2048, 0x20, data=b"\x11" * 512)
    p.append(c)
    p.append(i.data_out(itt, 0xFFFFFFFF, 512, b"\x22" * 1536, final=True))
    p.append(i.nop())
    p.append(i.text(keys(b"SendTargets=All")))
    p.append(i.tmf(1, ref_itt=0x1234))
    p.append(i.tmf(5))
    p.append(i.logout())
    s["session_normal"] = records(0, p)
    s["session_normal_stream"] = records(0, p, split=[100, 700, 900])
    # 2. R2T-solicited write (InitialR2T=Yes, no immediate data): the Data-Out carries the
    # TTT of the first task slot the target allocates (gen 1 << 16 | index 0)
    i = Initiator()
    kv = normal_keys().replace(b"InitialR2T=No", b"InitialR2T=Yes").replace(
        b"ImmediateData=Yes", b"ImmediateData=No")
    p = [i.login(T_OPER_FULL, kv)]
    itt, c = i.cmd(cdb10(0x2A, 0, 2), 1024, 0xA0)
    p.append(c)
    p.append(i.data_out(itt, 0x00010000, 0, b"\x33" * 1024))
    p.append(i.cmd(cdb10(0x28, 0, 2), 1024, 0xC0)[1])
    s["session_r2t"] = records(0, p)
    # 2b. several R2T sequences: MaxBurstLength 512, two outstanding; DataSN restarts with
    # each sequence; then a text answer longer than MaxRecvDataSegmentLength (512), fetched
    # in pieces with the Target Transfer Tag the target hands out (1, 2, ...)
    i = Initiator()
    kv = normal_keys().replace(b"InitialR2T=No", b"InitialR2T=Yes").replace(
        b"ImmediateData=Yes", b"ImmediateData=No").replace(
        b"MaxBurstLength=262144", b"MaxBurstLength=512").replace(
        b"FirstBurstLength=262144", b"FirstBurstLength=512").replace(
        b"MaxOutstandingR2T=1", b"MaxOutstandingR2T=2").replace(
        b"MaxRecvDataSegmentLength=262144", b"MaxRecvDataSegmentLength=512")
    p = [i.login(T_OPER_FULL, kv), i.cmd(TUR, 0)[1]]
    itt, c = i.cmd(cdb10(0x2A, 0, 4), 2048, 0xA0)
    p.append(c)
    for off in range(0, 2048, 512):
        # TTT: the TUR used task slot 0 (gen 1) and freed it; the WRITE has it again
        p.append(i.data_out(itt, 0x00020000, off, bytes([off // 512]) * 256, datasn=0, final=False))
        p.append(i.data_out(itt, 0x00020000, off + 256, bytes([off // 512]) * 256, datasn=1))
    p.append(i.cmd(cdb10(0x28, 0, 4), 2048, 0xC0)[1])
    p.append(i.text(keys(*[b"X-unknown-%03d=1" % k for k in range(60)])))
    p.append(i.text(b"", ttt=1))
    p.append(i.text(b"", ttt=2))
    p.append(i.logout())
    s["session_r2t_sequences_text_continued"] = records(0, p)
    # 3. discovery
    i = Initiator()
    p = [i.login(T_OPER_FULL, discovery_keys()), i.text(keys(b"SendTargets=All")),
         i.text(keys(b"SendTargets=" + IQN)), i.logout()]
    s["discovery"] = records(FZ_ACL, p)
    # 4. login in two stages with AuthMethod=None, text split with the C bit
    i = Initiator()
    kv = normal_keys()
    p = [i.login(0x40 | SEC_STAY, kv[:40]),
         i.login(T_SEC_OPER, kv[40:] + keys(b"AuthMethod=None")),
         i.login(T_OPER_FULL, keys(b"MaxRecvDataSegmentLength=8192")),
         i.cmd(TUR, 0)[1]]
    s["login_continued"] = records(0, p)
    # 5. CHAP MD5 one-way, then SHA-256 mutual (the '?' are filled by the harness)
    for name, cfg, alg, dl, mutual in (("chap_md5", FZ_CHAP, b"5", 16, False),
                                       ("chap_sha256_mutual", FZ_CHAP | FZ_MUTUAL, b"7,5", 32, True)):
        i = Initiator()
        first = keys(b"InitiatorName=" + INI, b"TargetName=" + IQN, b"SessionType=Normal",
                     b"AuthMethod=CHAP,None")
        resp = [b"CHAP_N=fuzzuser", b"CHAP_R=0x" + b"?" * (2 * dl)]
        if mutual:
            resp += [b"CHAP_I=7", b"CHAP_C=0x" + bytes(range(16)).hex().encode()]
        p = [i.login(SEC_STAY, first), i.login(SEC_STAY, keys(b"CHAP_A=" + alg)),
             i.login(T_SEC_OPER, keys(*resp)),
             i.login(T_OPER_FULL, keys(b"HeaderDigest=None", b"DataDigest=None",
                                       b"MaxRecvDataSegmentLength=65536")),
             i.cmd(INQ, 96, 0xC0)[1], i.cmd(cdb10(0x2A, 0, 1), 512, 0xA0, data=b"c" * 512)[1]]
        s[name] = records(cfg, p)
    # 6. header and data digests
    i = Initiator()
    p = [i.login(T_OPER_FULL, normal_keys(digest=b"CRC32C,None"))]
    i.hd = i.dd = True
    p.append(i.cmd(TUR, 0)[1])
    p.append(i.cmd(cdb10(0x2A, 0, 1), 512, 0xA0, data=b"\x77" * 512)[1])
    p.append(i.cmd(cdb10(0x28, 0, 1), 512, 0xC0)[1])
    p.append(i.nop(b"abc"))
    p.append(i.logout())
    s["digests"] = records(0, p)
    # 7. read-only by ACL and by LUN; persistent reservations through the transport
    i = Initiator()
    p = [i.login(T_OPER_FULL, normal_keys(ini=b"iqn.2026-11.org.fuzz:ro-host")),
         i.cmd(TUR, 0)[1], i.cmd(TUR, 0, lun=2)[1],
         i.cmd(cdb10(0x2A, 0, 1), 512, 0xA0, data=b"w" * 512)[1],
         i.cmd(cdb10(0x2A, 0, 1), 512, 0xA0, data=b"w" * 512, lun=2)[1]]
    s["acl_read_only"] = records(FZ_ACL | FZ_LUN_RO, p)
    i = Initiator()
    prout = bytes(8) + struct.pack(">Q", 0xABCD) + bytes(8)
    p = [i.login(T_OPER_FULL, normal_keys()),
         i.cmd(TUR, 0)[1],
         i.cmd(bytes([0x5F, 0, 0, 0, 0]) + struct.pack(">I", 24) + b"\0", 24, 0xA0, data=prout)[1],
         i.cmd(bytes([0x5E, 0]) + bytes(5) + struct.pack(">H", 256) + b"\0", 256, 0xC0)[1],
         i.cmd(bytes([0x16]) + bytes(5), 0)[1], i.tmf(6)]
    s["reservations"] = records(0, p)
    i = Initiator()
    p = [i.login(T_OPER_FULL, normal_keys(ini=b"iqn.2026-11.org.fuzz:deny-me"))]
    s["acl_denied"] = records(FZ_ACL, p)
    # 8. Multiple Connections per Session: a leading login offering MaxConnections=4, a
    # non-immediate NOP-Out sent above a CmdSN gap (held until the command below it),
    # ABORT TASK by RefCmdSN, Logout of an unknown CID, of this CID; and a login adding a
    # connection to a session this input does not have (TSIH 1: session does not exist)
    i = Initiator()
    mk = normal_keys().replace(b"MaxConnections=1", b"MaxConnections=4")
    p = [i.login(T_OPER_FULL, mk), i.cmd(TUR, 0, immediate=True)[1]]
    held = bytearray(48)
    held[0], held[1] = 0x00, 0x80
    held[16:28] = struct.pack(">III", i.next_itt(), 0xFFFFFFFF, i.cmdsn + 1)
    p.append(i.pdu(held, b"later"))
    p.append(i.cmd(cdb10(0x28, 0, 1), 512, 0xC0)[1])
    i.cmdsn += 1  # the held NOP-Out's
    gap = i.cmdsn  # a CmdSN never sent, closed by ABORT TASK's RefCmdSN
    i.cmdsn += 1
    abort = bytearray(i.tmf(1, 0x7777)[:48])
    abort[32:36] = struct.pack(">I", gap)
    p += [i.pdu(abort), i.cmd(TUR, 0)[1]]
    logout = bytearray(i.logout(1)[:48])
    logout[0], logout[20:22] = 0x46, struct.pack(">H", 9)
    p += [i.pdu(logout), i.logout(1)]
    s["mcs_session"] = records(0, p)
    i = Initiator()
    p = [i.login(T_OPER_FULL, mk, tsih=1, cid=1)]
    s["mcs_add_connection"] = records(0, p)
    return s


def login_text_seeds():
    s = {}
    # mode 0: text
    s["text_normal"] = bytes([0, 0]) + normal_keys()
    s["text_discovery"] = bytes([1, 0]) + discovery_keys()
    s["text_odd"] = bytes([0, 0]) + keys(b"HeaderDigest=CRC32C,None", b"MaxBurstLength=0x1000",
                                         b"FirstBurstLength=999999999", b"X-com.example=1",
                                         b"InitialR2T=Maybe", b"SendTargets=All",
                                         b"MaxRecvDataSegmentLength=NotUnderstood")
    # mode 1: CHAP
    s["chap_md5"] = bytes([0, 1]) + keys(b"CHAP_A=5") + b"\xff" + keys(
        b"CHAP_N=fuzzuser", b"CHAP_R=0x" + b"?" * 32)
    s["chap_sha256_mutual"] = bytes([FZ_MUTUAL, 1]) + keys(b"CHAP_A=7,5") + b"\xff" + keys(
        b"CHAP_N=fuzzuser", b"CHAP_R=0x" + b"?" * 64, b"CHAP_I=200",
        b"CHAP_C=0b" + b"AAECAwQFBgcICQoLDA0ODw==")
    s["chap_base64"] = bytes([0, 1]) + keys(b"CHAP_A=5") + b"\xff" + keys(
        b"CHAP_N=fuzzuser", b"CHAP_R=0bAAECAwQFBgcICQoLDA0ODw==")

    # mode 2: login records [BHS][u16 dlen][data]
    def rec(flags, data, i):
        bhs = bytearray(i.login(flags, b"")[:48])
        return bytes(bhs) + struct.pack(">H", len(data)) + data

    i = Initiator()
    s["login_one_pdu"] = bytes([0, 2]) + rec(T_OPER_FULL, normal_keys(), i)
    i = Initiator()
    s["login_discovery"] = bytes([FZ_DISC_CHAP, 2]) + rec(SEC_STAY, discovery_keys() + keys(
        b"AuthMethod=CHAP"), i) + rec(SEC_STAY, keys(b"CHAP_A=5"), i) + rec(
        T_SEC_OPER, keys(b"CHAP_N=fuzzuser", b"CHAP_R=0x" + b"?" * 32), i) + rec(
        T_OPER_FULL, b"", i)
    i = Initiator()
    s["login_chap_mutual"] = bytes([FZ_CHAP | FZ_MUTUAL, 2]) + rec(SEC_STAY, keys(
        b"InitiatorName=" + INI, b"TargetName=" + IQN, b"SessionType=Normal",
        b"AuthMethod=CHAP"), i) + rec(SEC_STAY, keys(b"CHAP_A=7"), i) + rec(
        T_SEC_OPER, keys(b"CHAP_N=fuzzuser", b"CHAP_R=0x" + b"?" * 64, b"CHAP_I=1",
                         b"CHAP_C=0x0102030405060708090a0b0c0d0e0f10"), i) + rec(
        T_OPER_FULL, keys(b"HeaderDigest=None", b"MaxRecvDataSegmentLength=65536"), i)
    i = Initiator()
    s["login_continue"] = bytes([0, 2]) + rec(0x40 | (1 << 2), normal_keys()[:50], i) + rec(
        T_OPER_FULL, normal_keys()[50:], i)
    # a login adding connection 1 to session 1 (Leading Only keys answered Irrelevant)
    i = Initiator()
    bhs = bytearray(i.login(T_OPER_FULL, b"", tsih=1, cid=1)[:48])
    mk = normal_keys().replace(b"MaxConnections=1", b"MaxConnections=4")
    s["login_add_connection"] = bytes([0, 2]) + bytes(bhs) + struct.pack(">H", len(mk)) + mk
    return s


def cdb_rec(sel, cdb, edtl=0, dout=b"", xfer=3 << 2 | 0):
    """One fuzz_cdb command; an event (sel bits 4-6 >= 4) is sel + 16 + 3 bytes."""
    cdb = (cdb + bytes(16))[:16]
    return bytes([sel]) + cdb + bytes([xfer]) + struct.pack(">H", edtl) + \
        struct.pack(">H", len(dout)) + dout


def cdb_seeds():
    s = {}
    A, B, C = 0, 1, 2
    L0, L2 = 0 << 2, 2 << 2
    IN = 1 << 2
    OUT = 2 << 2
    def every_opcode(lun):
        r = b""
        r += cdb_rec(A | lun, TUR)  # consumes the POWER ON unit attention
        r += cdb_rec(A | lun, bytes([0x03, 0, 0, 0, 18, 0]), 18, xfer=IN)
        r += cdb_rec(A | lun, INQ, 96, xfer=IN)
        for page in (0x00, 0x80, 0x83, 0x86, 0xB0, 0xB1, 0xB2):
            r += cdb_rec(A | lun, bytes([0x12, 1, page, 0, 255, 0]), 255, xfer=IN)
        r += cdb_rec(A | lun, bytes([0x25]) + bytes(9), 8, xfer=IN)
        r += cdb_rec(A | lun, RC16, 32, xfer=IN)
        r += cdb_rec(A | lun, REPORT_LUNS, 64, xfer=IN)
        r += cdb_rec(A | lun, bytes([0x1A, 0, 0x3F, 0, 255, 0]), 255, xfer=IN)
        r += cdb_rec(A | lun, bytes([0x5A, 0, 0x3F, 0, 0, 0, 0, 1, 0, 0]), 256, xfer=IN)
        r += cdb_rec(A | lun, bytes([0x0A, 0, 0, 1, 1, 0]), 512, b"\x01" * 512, xfer=OUT)
        r += cdb_rec(A | lun, bytes([0x08, 0, 0, 1, 1, 0]), 512, xfer=IN)
        r += cdb_rec(A | lun, cdb10(0x2A, 2, 2), 1024, b"\x02" * 1024, xfer=OUT)
        r += cdb_rec(A | lun, cdb10(0x2E, 2, 1), 512, b"\x02" * 512, xfer=OUT)
        r += cdb_rec(A | lun, cdb10(0x28, 2, 2), 1024, xfer=IN)
        r += cdb_rec(A | lun, bytes([0xAA, 0]) + struct.pack(">II", 4, 1) + b"\0\0", 512, b"\x03" * 512, xfer=OUT)
        r += cdb_rec(A | lun, bytes([0xA8, 0]) + struct.pack(">II", 4, 1) + b"\0\0", 512, xfer=IN)
        r += cdb_rec(A | lun, cdb16(0x8A, 5, 1, b1=0x08), 512, b"\x04" * 512, xfer=OUT)
        r += cdb_rec(A | lun, cdb16(0x88, 5, 1), 512, xfer=IN)
        r += cdb_rec(A | lun, cdb16(0x8B, 5, 1), 512, b"\x10" * 512, xfer=OUT)
        r += cdb_rec(A | lun, cdb16(0x9C, 6, 0) [:12] + struct.pack(">H", 1) + b"\0\0", 512, b"\x05" * 512, xfer=OUT)
        r += cdb_rec(A | lun, cdb16(0x89, 5, 0)[:13] + b"\x01\0\0", 1024, b"\x04" * 512 + b"\x06" * 512, xfer=OUT)
        r += cdb_rec(A | lun, cdb10(0x2F, 5, 1, b1=0x02), 512, b"\x06" * 512, xfer=OUT)
        r += cdb_rec(A | lun, cdb16(0x8F, 5, 1, b1=0x06), 512, b"\x06" * 512, xfer=OUT)
        r += cdb_rec(A | lun, cdb10(0x41, 8, 4, b1=0x08), 512, bytes(512), xfer=OUT)
        r += cdb_rec(A | lun, cdb16(0x93, 12, 4, b1=0x09), 0, xfer=0)
        unmap = struct.pack(">HH", 22, 16) + bytes(4) + struct.pack(">QI", 20, 4) + bytes(4)
        r += cdb_rec(A | lun, bytes([0x42, 0, 0, 0, 0, 0, 0]) + struct.pack(">H", 24) + b"\0", 24, unmap, xfer=OUT)
        r += cdb_rec(A | lun, bytes([0x9E, 0x12]) + struct.pack(">Q", 0) + struct.pack(">I", 64) + b"\0\0", 64, xfer=IN)
        r += cdb_rec(A | lun, cdb10(0x35, 0, 0), 0, xfer=0)
        r += cdb_rec(A | lun, cdb16(0x91, 0, 8), 0, xfer=0)
        r += cdb_rec(A | lun, cdb10(0x34, 0, 8), 0, xfer=0)
        r += cdb_rec(A | lun, cdb16(0x90, 0, 8), 0, xfer=0)
        r += cdb_rec(A | lun, bytes([0x1B, 0, 0, 0, 1, 0]), 0, xfer=0)
        r += cdb_rec(A | lun, bytes([0x1E, 0, 0, 0, 1, 0]), 0, xfer=0)
        r += cdb_rec(A | lun, bytes([0x37, 0, 0x18, 0, 0, 0, 0, 0, 8, 0]), 8, xfer=IN)
        r += cdb_rec(A | lun, bytes([0xA3, 0x0C, 0]) + bytes(3) + struct.pack(">I", 4096) + b"\0\0", 4096, xfer=IN)
        r += cdb_rec(A | lun, bytes([0xA3, 0x0C, 1, 0x28]) + bytes(2) + struct.pack(">I", 64) + b"\0\0", 64, xfer=IN)
        modesel = bytes([0, 0, 0, 0]) + bytes([0x0A, 10, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        r += cdb_rec(A | lun, bytes([0x15, 0x10, 0, 0, len(modesel), 0]), len(modesel), modesel, xfer=OUT)
        r += cdb_rec(A | lun, bytes([0x48, 0x03]) + bytes(5) + struct.pack(">H", 0) + b"\0", 0, xfer=0)
        return r

    s["every_opcode"] = bytes([0]) + every_opcode(L0)
    s["every_opcode_4k_nocopy"] = bytes([FZ_BS4K | FZ_NOCOPY]) + every_opcode(L2)

    # SCSI-2 and persistent reservations between nexuses A and B, unit attentions
    def prout(sa, key, sakey, typ=0, flags=0, extra=b""):
        par = struct.pack(">QQ", key, sakey) + bytes(4) + bytes([flags, 0, 0, 0]) + extra
        return cdb_rec(0, bytes([0x5F, sa, typ, 0, 0]) + struct.pack(">I", len(par)) + b"\0",
                       len(par), par, xfer=OUT)

    def sel(rec, nexus, lun=L0):
        return bytes([nexus | lun]) + rec[1:]

    def prin(sa, nexus):
        return cdb_rec(nexus, bytes([0x5E, sa]) + bytes(5) + struct.pack(">H", 512) + b"\0", 512, xfer=IN)

    r = cdb_rec(A, TUR) + cdb_rec(B, TUR)
    r += sel(prout(0, 0, 0xA), A) + sel(prout(0, 0, 0xB, flags=1), B)  # REGISTER (B with APTPL)
    r += sel(prout(1, 0xA, 0, typ=5), A)  # RESERVE write exclusive, registrants only
    r += cdb_rec(B, cdb10(0x2A, 0, 1), 512, b"b" * 512, xfer=OUT)
    r += cdb_rec(C, cdb10(0x2A, 0, 1), 512, b"c" * 512, xfer=OUT)
    for sa in range(4):
        r += prin(sa, A)
    r += sel(prout(4, 0xB, 0xA, typ=5), B)  # PREEMPT
    r += cdb_rec(A, TUR)
    r += sel(prout(2, 0xB, 0, typ=5), B)    # RELEASE
    r += sel(prout(6, 0xB, 0xC), B)         # REGISTER AND IGNORE
    # REGISTER AND MOVE to nexus C: key, SA key, 0, flags, RELATIVE TARGET PORT 1,
    # TransportID (iSCSI, format 0: protocol 5, length, NUL-padded name)
    name = b"iqn.2026-11.org.fuzz:initc\0\0"
    tid = bytes([0x05, 0]) + struct.pack(">H", len(name)) + name
    par = struct.pack(">QQ", 0xC, 0xD) + bytes([0, 0]) + struct.pack(">HI", 1, len(tid)) + tid
    r += sel(cdb_rec(0, bytes([0x5F, 7, 1, 0, 0]) + struct.pack(">I", len(par)) + b"\0",
                     len(par), par, xfer=OUT), B)
    r += sel(prout(3, 0xC, 0), B)           # CLEAR
    r += cdb_rec(A, bytes([0x16]) + bytes(5)) + cdb_rec(B, TUR) + cdb_rec(B, cdb10(0x28, 0, 1), 512, xfer=IN)
    r += cdb_rec(A, bytes([0x17]) + bytes(5)) + cdb_rec(B, bytes([0x56]) + bytes(9))
    r += bytes([A | L0 | (4 << 4)]) + bytes(16 + 3)   # LUN RESET
    r += bytes([B | (6 << 4)]) + bytes(16 + 3)        # nexus B lost
    r += bytes([A | (7 << 4)]) + bytes(16 + 3)        # capacity changed
    r += cdb_rec(A, bytes([0x03, 0, 0, 0, 252, 0]), 252, xfer=IN)
    r += bytes([C | (5 << 4)]) + bytes(16 + 3)        # TARGET RESET
    r += cdb_rec(A, TUR) + cdb_rec(C, TUR)
    # APTPL: B registers again with APTPL and reserves; the LUN restarts (state reloaded
    # from the saved blob), once intact and once with a damaged byte
    r += cdb_rec(B, TUR) + sel(prout(0, 0, 0xB, flags=1), B) + sel(prout(1, 0xB, 0, typ=1), B)
    r += bytes([0x80 | B | (4 << 4)]) + bytes(16 + 3)
    r += prin(3, A) + cdb_rec(A, cdb10(0x2A, 0, 1), 512, b"a" * 512, xfer=OUT)
    r += bytes([0x80 | B | (4 << 4)]) + bytes([0x40]) + bytes(15) + bytes([0, 0, 9])
    r += prin(0, A) + prin(1, A)
    s["reservations_and_uas"] = bytes([FZ_ACL]) + r

    # EXTENDED COPY (LID1) within LUN 0 and from LUN 0 to LUN 2, RECEIVE COPY RESULTS
    def cscd(lun_idx):
        naa = bytes([0x60, 0x01]) + bytes(13) + bytes([lun_idx])
        return bytes([0xE4, 0, 0, 0, 0x01, 0x03, 0, 16]) + naa + bytes(4) + bytes([0, 0, 2, 0])

    seg = bytes([0x02, 0]) + struct.pack(">H", 24) + struct.pack(">HH", 0, 1) + \
        b"\0\0" + struct.pack(">H", 16) + struct.pack(">QQ", 0, 64)
    cscds = cscd(0) + cscd(2)
    hdr = bytes([1, 0]) + struct.pack(">H", len(cscds)) + bytes(4) + struct.pack(">I", len(seg)) + bytes(4)
    plist = hdr + cscds + seg
    r = cdb_rec(A, TUR)
    r += cdb_rec(A, cdb10(0x2A, 0, 16), 8192, b"x" * 8192, xfer=OUT)
    r += cdb_rec(A, bytes([0x83]) + bytes(9) + struct.pack(">I", len(plist)) + b"\0\0", len(plist), plist, xfer=OUT)
    r += cdb_rec(A, bytes([0x84, 0x00, 1]) + bytes(7) + struct.pack(">I", 64) + b"\0\0", 64, xfer=IN)
    r += cdb_rec(A, bytes([0x84, 0x03, 0]) + bytes(7) + struct.pack(">I", 64) + b"\0\0", 64, xfer=IN)
    s["xcopy"] = bytes([0]) + r
    s["xcopy_nocopy"] = bytes([FZ_NOCOPY]) + r
    # a failing LUN: MEDIUM ERROR / SPACE ALLOCATION FAILED paths
    r = cdb_rec(A, TUR)
    r += cdb_rec(0x80 | A, cdb10(0x28, 0, 1), 512, xfer=IN)
    r += cdb_rec(0x80 | A, cdb10(0x2A, 0, 1), 512, b"f" * 512, xfer=OUT)
    r += cdb_rec(0x80 | A, cdb10(0x35, 0, 0), 0, xfer=0)
    s["faults_read_only"] = bytes([FZ_LUN_RO]) + r + cdb_rec(A, cdb10(0x2A, 0, 1), 512, b"r" * 512, xfer=OUT)
    return s


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("fuzz_pdu", pdu_seeds())
    write("fuzz_login_text", login_text_seeds())
    write("fuzz_cdb", cdb_seeds())
