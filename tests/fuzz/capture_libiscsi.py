#!/usr/bin/env python3
"""capture_libiscsi.py - record what real libiscsi initiators send, as fuzz_pdu seeds.

Starts BUILD/tests/tools/gw_ram_target, puts a logging TCP relay in front of it, runs
iscsi-inq, iscsi-ls and iscsi-readcapacity16 (Debian's libiscsi-bin) through the relay,
and writes each connection's initiator->target bytes, cut into one record per PDU, as
tests/fuzz/corpus/fuzz_pdu/seed-libiscsi_* (layout: fuzz_pdu.c). The target name ram0 is
renamed to the fuzz target's (same length). Loopback only.

    python3 tests/fuzz/capture_libiscsi.py [BUILD]     (default build-san)
"""
import os
import socket
import struct
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUNS = [  # seed name, command (URL {u} / portal {p})
    ("libiscsi_inq", ["iscsi-inq", "{u}"]),
    ("libiscsi_ls_discovery", ["iscsi-ls", "-s", "iscsi://{p}/"]),
    ("libiscsi_readcapacity16", ["iscsi-readcapacity16", "{u}"]),
    ("libiscsi_inq_header_digest", ["iscsi-inq", "{u}?header_digest=crc32c"]),
    ("libiscsi_inq_vpd83", ["iscsi-inq", "-e", "1", "-c", "0x83", "{u}"]),
    ("libiscsi_inq_chap_offer", ["iscsi-inq", "iscsi://fuzzuser%fuzz-secret-0001@{p}/"
                                 "iqn.2026-11.org.cairn:ram0/0"]),
]


def relay(listener, target_port, logs):
    while True:
        try:
            c, _ = listener.accept()
        except OSError:
            return
        t = socket.create_connection(("127.0.0.1", target_port))
        log = bytearray()
        logs.append(log)

        def pipe(a, b, keep):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    if keep is not None:
                        keep.extend(d)
                    b.sendall(d)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(c, t, log), daemon=True).start()
        threading.Thread(target=pipe, args=(t, c, None), daemon=True).start()


def records(stream):
    """Cut an initiator byte stream into PDUs: login PDUs carry no digests; later ones
    carry what the last login text asked for (this target picks the first item)."""
    d = bytes(stream).replace(b"iqn.2026-11.org.cairn:ram0", b"iqn.2026-11.org.cairn:fuzz")
    i, recs, hd, dd, login_done = 0, [], False, False, False
    while i + 48 <= len(d):
        if d[i] & 0x3F != 0x03 and not login_done:
            login_done = True
            text = b"".join(recs)
            hd = b"HeaderDigest=CRC32C" in text
            dd = b"DataDigest=CRC32C" in text
        dl = int.from_bytes(d[i + 5:i + 8], "big")
        n = 48 + d[i + 4] * 4 + (4 if hd else 0) + dl + (4 - dl % 4) % 4 + (4 if dd and dl else 0)
        recs.append(d[i:i + n])
        i += n
    return bytes([0]) + b"".join(struct.pack(">H", len(r)) + r for r in recs)


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build-san")
    gw = subprocess.Popen([os.path.join(build, "tests/tools/gw_ram_target"), "--listen",
                           "127.0.0.1:0", "--size", "1M"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(gw.stdout.readline().split()[1])
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        portal = "127.0.0.1:%d" % listener.getsockname()[1]
        url = "iscsi://%s/iqn.2026-11.org.cairn:ram0/0" % portal
        logs = []
        threading.Thread(target=relay, args=(listener, port, logs), daemon=True).start()
        outdir = os.path.join(HERE, "corpus", "fuzz_pdu")
        for name, cmd in RUNS:
            before = len(logs)
            subprocess.run([a.format(u=url, p=portal) for a in cmd], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
            for k, log in enumerate(logs[before:]):
                suffix = "" if k == 0 else "_%d" % k
                with open(os.path.join(outdir, "seed-" + name + suffix), "wb") as f:
                    f.write(records(log))
        listener.close()
    finally:
        gw.terminate()
        gw.wait()


if __name__ == "__main__":
    main()
