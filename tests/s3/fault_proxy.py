#!/usr/bin/env python3
"""fault_proxy.py - an HTTP/1.1 proxy for tests that injects S3-style faults.

Usage: fault_proxy.py --upstream 127.0.0.1:PORT [--rate 0.3] [--seed N] [--stall 5]
                      [--modes 503,500,drop,reset,drop-after,truncate,stall]

Listens on a free 127.0.0.1 port and prints that port alone on the first line of
stdout. Each request is forwarded to the upstream server, except that a fraction
`rate` of them (chosen by a seeded generator) gets one fault, picked among `modes`:
  503         503 SlowDown with an S3 XML error body (request not forwarded)
  500         500 InternalError (request not forwarded)
  drop        the connection is closed without an answer (request not forwarded)
  reset       the connection is reset (RST) without an answer (request not forwarded)
  drop-after  forwarded, then the connection is closed without an answer
  truncate    forwarded, the answer is cut in the middle of its body
  stall       nothing is sent for `stall` seconds, then the connection is closed
GET /__fault_proxy_stats answers a JSON object: requests seen and faults per mode.
GET /__fault_proxy_set?rate=R&modes=M1,M2 changes the rate and modes at run time (an
outage is rate=1 with modes=reset or 503; rate=0 ends it) and answers the new settings.
  --match S (or set?match=S): only requests whose path contains S can get a fault
  (e.g. "/index/": index segments only); "" (the default) means every request. A set
  that gives a rate but no match resets match to "".
  --delay D (or set?delay=D): every forwarded request waits D seconds first, so
  concurrent requests overlap for sure.
  --bw B (or set?bw=B): each request body and each answer body of N bytes waits N/B
  seconds: a link of B bytes/s per connection (0: unlimited).
The stats also hold "max_inflight" and "max_inflight_<METHOD>": the most requests
(of that method) the proxy was handling at once (from request line to answer), and
with --track S (or set?track=S) "max_inflight_<METHOD>_track" counts only requests whose
path contains S (e.g. "/packs/"); set?reset=1 zeroes every figure of the stats.
Runs until SIGTERM/SIGINT or until its parent process exits. Loopback only.
Python 3 standard library only.
"""
import argparse
import http.client
import http.server
import json
import os
import random
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te",
       "trailer", "upgrade"}

ERR_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
           '<Message>{msg}</Message><RequestId>fault-proxy</RequestId></Error>')


class State:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.stats = {"requests": 0}
        self.local = threading.local()
        self.inflight = {}

    def enter(self, method, path, d):
        keys = ["", "_" + method]
        if self.args.track and self.args.track in path:
            keys.append("_%s_track" % method)
        with self.lock:
            for k in keys:
                n = self.inflight.get(k, 0) + d
                self.inflight[k] = n
                if n > self.stats.get("max_inflight" + k, 0):
                    self.stats["max_inflight" + k] = n

    def pick(self, path):
        with self.lock:
            self.stats["requests"] += 1
            if self.args.match and self.args.match not in path:
                return None
            if self.rng.random() >= self.args.rate:
                return None
            mode = self.rng.choice(self.args.modes)
            self.stats[mode] = self.stats.get(mode, 0) + 1
            return mode

    def upstream(self, fresh=False):
        conn = getattr(self.local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            host, port = self.args.upstream.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            self.local.conn = conn
        return conn


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _error(self, status, code, msg):
        body = ERR_XML.format(code=code, msg=msg).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _hangup(self, reset=False):
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _forward(self, body):
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        for attempt in (0, 1):
            conn = STATE.upstream(fresh=attempt > 0)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp, data
            except (OSError, http.client.HTTPException):
                if attempt:
                    raise
        raise RuntimeError("unreachable")

    def _send(self, resp, data, cut=False):
        self.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() in HOP or k.lower() == "content-length":
                continue
            self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data[: len(data) // 2] if cut else data)
            self.wfile.flush()

    def _handle(self):
        if self.path == "/__fault_proxy_stats":
            self._body()
            with STATE.lock:
                data = json.dumps(STATE.stats).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if self.path.startswith("/__fault_proxy_set"):
            self._body()
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            with STATE.lock:
                if "rate" in q:
                    STATE.args.rate = float(q["rate"][0])
                if "modes" in q:
                    STATE.args.modes = [m for m in q["modes"][0].split(",") if m]
                if "match" in q or "rate" in q:
                    STATE.args.match = q.get("match", [""])[0]
                if "delay" in q:
                    STATE.args.delay = float(q["delay"][0])
                if "bw" in q:
                    STATE.args.bw = float(q["bw"][0])
                if "track" in q:
                    STATE.args.track = q["track"][0]
                if "reset" in q:
                    STATE.stats = {"requests": 0}
                data = json.dumps({"rate": STATE.args.rate, "modes": STATE.args.modes,
                                   "match": STATE.args.match,
                                   "delay": STATE.args.delay}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        path = self.path
        STATE.enter(self.command, path, 1)
        try:
            self._fault_or_forward()
        finally:
            STATE.enter(self.command, path, -1)

    def _fault_or_forward(self):
        body = self._body()
        mode = STATE.pick(self.path)
        if mode == "503":
            return self._error(503, "SlowDown", "Please reduce your request rate.")
        if mode == "500":
            return self._error(500, "InternalError", "We encountered an internal error.")
        if mode in ("drop", "reset"):
            return self._hangup(reset=mode == "reset")
        if mode == "stall":
            time.sleep(STATE.args.stall)
            return self._hangup()
        if STATE.args.delay > 0:
            time.sleep(STATE.args.delay)
        if STATE.args.bw > 0:
            time.sleep(len(body) / STATE.args.bw)
        try:
            resp, data = self._forward(body)
        except (OSError, http.client.HTTPException) as e:
            return self._error(502, "BadGateway", "upstream: %s" % e)
        if STATE.args.bw > 0:
            time.sleep(len(data) / STATE.args.bw)
        if mode == "drop-after":
            return self._hangup()
        if mode == "truncate" and self.command != "HEAD" and len(data) >= 2:
            self._send(resp, data, cut=True)
            return self._hangup()
        self._send(resp, data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--rate", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stall", type=float, default=5.0)
    ap.add_argument("--modes", default="503,500,drop,reset,drop-after,truncate,stall")
    ap.add_argument("--match", default="")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--bw", type=float, default=0.0)
    ap.add_argument("--track", default="")
    args = ap.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    STATE = State(args)
    srv = Server(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)

    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_parent, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        srv.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        srv.server_close()


STATE = None

if __name__ == "__main__":
    main()
