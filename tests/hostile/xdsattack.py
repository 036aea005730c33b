#!/usr/bin/python3
"""A malicious delta-xDS server against one ztunnel: TLS from Python's ssl, HTTP/2 frames and
protobuf made by hand (HPACK from python3-hpack). It serves ztunnel's ADS stream and runs every
case in order; each case states the reaction expected, then checks that ztunnel still runs,
takes a good response from a well-behaved server (ACK, the workload in /config_dump, ready),
and that its RSS and fds stay within bounds. Prints one PASS/FAIL line per case; exits 1 when
a case is not as expected (with --report, always 0).

usage: xdsattack.py --listen IP:PORT --cert C --key K --pid ZTUNNEL_PID --admin IP:PORT
                    --ready IP:PORT [--rss-bound KiB] [--rss-settle KiB] [--only CASE] [--report]
"""
import argparse
import json
import os
import socket
import ssl
import struct
import sys
import time
import urllib.request

import hpack

DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW, CONT = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ADDR = "type.googleapis.com/istio.workload.Address"
AUTHZ = "type.googleapis.com/istio.security.Authorization"


# ---- protobuf by hand ------------------------------------------------------------------------
def varint(n):
    b = b""
    while True:
        c = n & 0x7f
        n >>= 7
        if n:
            b += bytes([c | 0x80])
        else:
            return b + bytes([c])


def ld(field, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def fields(buf):
    """(field, wire type, value) of one message level; raises ValueError when malformed."""
    i, out = 0, []
    while i < len(buf):
        key, i = read_varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        else:
            raise ValueError("wire type %d" % wt)
        out.append((f, wt, v))
    return out


def read_varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def workload(uid, ip):
    """A minimal istio.workload.Address holding a Workload."""
    w = ld(20, uid) + ld(1, uid.rsplit("/", 1)[-1]) + ld(2, "hostile") + ld(3, socket.inet_aton(ip)) + \
        ld(7, "default") + ld(6, "cluster.local") + ld(9, "node-x")
    return ld(1, w)


def resource(name, body, type_url=ADDR, version="1"):
    return ld(3, name) + ld(1, version) + ld(2, ld(1, type_url) + ld(2, body))


def response(type_url, resources=(), removed=(), nonce="n"):
    return b"".join([ld(4, type_url), ld(5, nonce)] + [ld(2, r) for r in resources] +
                    [ld(6, n) for n in removed])


def grpc(msg, flag=0):
    return bytes([flag]) + struct.pack(">I", len(msg)) + msg


class Request:
    def __init__(self, buf):
        self.type_url = self.nonce = ""
        self.error = None
        self.subscribe, self.initial = [], {}
        for f, wt, v in fields(buf):
            if f == 2:
                self.type_url = v.decode()
            elif f == 3:
                self.subscribe.append(v.decode())
            elif f == 5:
                kv = dict((k, x) for k, _, x in fields(v))
                self.initial[kv.get(1, b"").decode()] = kv.get(2, b"").decode()
            elif f == 6:
                self.nonce = v.decode()
            elif f == 7:
                st = dict((k, x) for k, _, x in fields(v))
                self.error = (st.get(1, 0), st.get(2, b"").decode(errors="replace"))


# ---- HTTP/2 server side by hand --------------------------------------------------------------
def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + bytes(payload)


class Closed(Exception):
    pass


class Conn:
    def __init__(self, sock, ctx):
        sock.settimeout(10)
        self.sock = ctx.wrap_socket(sock, server_side=True)
        self.buf = b""
        self.enc = hpack.Encoder()
        self.sid = 0
        self.grpc = b""
        self.requests = []
        self.closed = None  # why the peer ended (RST_STREAM, GOAWAY, EOF)
        self.send_conn = 65535
        self.send_stream = 65535
        self.initial_window = 65535
        self.max_frame = 16384
        self.headers_sent = False

    def start(self):
        pre = self.read_exact(len(PREFACE))
        if pre != PREFACE:
            raise Closed("bad preface")
        # Large receive windows: the client's requests never wait for us.
        self.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 24)) +
                  frame(WINDOW, 0, 0, struct.pack(">I", 1 << 24)))

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Closed("send: %s" % e)

    def read_exact(self, n, deadline=None):
        while len(self.buf) < n:
            if deadline:
                self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise
            except (OSError, ssl.SSLError) as e:
                raise Closed("recv: %s" % e)
            if not chunk:
                raise Closed("EOF")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def one_frame(self, deadline):
        hdr = self.read_exact(9, deadline)
        ln = struct.unpack(">I", b"\0" + hdr[:3])[0]
        ftype, flags, sid = hdr[3], hdr[4], struct.unpack(">I", hdr[5:9])[0] & 0x7fffffff
        payload = self.read_exact(ln, deadline)
        if ftype == SETTINGS and not flags & ACK:
            for i in range(0, len(payload) - 5, 6):
                k, v = struct.unpack(">HI", payload[i:i + 6])
                if k == 4:
                    self.send_stream += v - self.initial_window
                    self.initial_window = v
                elif k == 5:
                    self.max_frame = v
            self.send(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self.send(frame(PING, ACK, 0, payload))
        elif ftype == WINDOW:
            inc = struct.unpack(">I", payload)[0] & 0x7fffffff
            if sid == 0:
                self.send_conn += inc
            else:
                self.send_stream += inc
        elif ftype == HEADERS:
            self.sid = sid
            self.send_stream = self.initial_window
        elif ftype == DATA:
            if payload:
                self.send(frame(WINDOW, 0, 0, struct.pack(">I", len(payload))) +
                          frame(WINDOW, 0, sid, struct.pack(">I", len(payload))))
            self.grpc += payload
            while len(self.grpc) >= 5:
                n = struct.unpack(">I", self.grpc[1:5])[0]
                if len(self.grpc) < 5 + n:
                    break
                self.requests.append(Request(self.grpc[5:5 + n]))
                self.grpc = self.grpc[5 + n:]
            if flags & END_STREAM:
                self.closed = "END_STREAM"
        elif ftype == RST:
            self.closed = "RST_STREAM %d" % struct.unpack(">I", payload)[0]
        elif ftype == GOAWAY:
            self.closed = "GOAWAY %d" % struct.unpack(">I", payload[4:8])[0]

    def pump(self, secs, until=None):
        """Reads frames for up to secs or until until() is true. Returns until()'s value."""
        deadline = time.time() + secs
        while True:
            if until and until():
                return True
            if time.time() >= deadline:
                return False
            try:
                self.one_frame(deadline)
            except socket.timeout:
                continue

    def wait_request(self, secs, pred):
        got = []

        def find():
            for r in self.requests:
                if pred(r):
                    got.append(r)
                    self.requests.remove(r)
                    return True
            return False
        return got[0] if self.pump(secs, find) else None

    def respond_headers(self):
        if not self.headers_sent:
            self.send(frame(HEADERS, END_HEADERS, self.sid, self.enc.encode(
                [(":status", "200"), ("content-type", "application/grpc")])))
            self.headers_sent = True

    def send_data(self, data, end=False):
        """DATA on the stream within the peer's flow-control windows."""
        self.respond_headers()
        data = memoryview(data)
        while data:
            while min(self.send_conn, self.send_stream) <= 0:
                if not self.pump(10, lambda: min(self.send_conn, self.send_stream) > 0):
                    raise Closed("flow control: no WINDOW_UPDATE")
            n = min(len(data), self.max_frame, self.send_conn, self.send_stream)
            self.send(frame(DATA, END_STREAM if end and n == len(data) else 0, self.sid, data[:n]))
            self.send_conn -= n
            self.send_stream -= n
            data = data[n:]  # a memoryview: no copy

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- the driver ------------------------------------------------------------------------------
class Driver:
    def __init__(self, a):
        self.a = a
        host, port = a.listen.rsplit(":", 1)
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((host, int(port)))
        self.ls.listen(64)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(a.cert, a.key)
        self.ctx.set_alpn_protocols(["h2"])
        self.conn = None
        self.seq = 0
        self.failed = []

    # ztunnel's side
    def status(self, key):
        with open("/proc/%d/status" % self.a.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise RuntimeError("ztunnel is gone")

    def rss(self):
        return self.status("VmRSS")

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.a.pid))

    def alive(self):
        try:
            os.kill(self.a.pid, 0)
            return True
        except OSError:
            return False

    def http(self, addr, path):
        with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=30) as r:
            return r.status, r.read()

    def dump_has(self, text):
        try:
            return text.encode() in self.http(self.a.admin, "/config_dump")[1]
        except OSError:
            return False

    # our side
    def accept(self, secs=20):
        """The next connection from ztunnel, started, with its first Address subscription."""
        if self.conn:
            self.conn.close()
            self.conn = None
        self.ls.settimeout(secs)
        s, _ = self.ls.accept()
        c = Conn(s, self.ctx)
        c.start()
        self.conn = c
        if not c.wait_request(10, lambda r: r.type_url == ADDR and not r.nonce):
            raise Closed("no Address subscription")
        return c

    def nonce(self):
        self.seq += 1
        return "n%d" % self.seq

    def send_response(self, msg_bytes, c=None, flag=0):
        (c or self.conn).send_data(grpc(msg_bytes, flag))

    def answer_of(self, nonce, secs=10):
        return self.conn.wait_request(secs, lambda r: r.nonce == nonce)

    def good(self, tag):
        """A well-behaved server: one workload, ACKed, in /config_dump, ztunnel ready."""
        uid = "cluster.local//v1/Pod/hostile/good-%s" % tag
        if not self.conn or self.conn.closed:
            self.accept()
        n = self.nonce()
        try:
            self.send_response(response(ADDR, [resource(uid, workload(uid, "10.9.0.%d" % (self.seq % 250 + 1)))],
                                        nonce=n))
            r = self.answer_of(n)
        except Closed:
            self.accept()
            return self.good(tag)
        if not r:
            return "no answer to a good response"
        if r.error:
            return "good response NACKed: %s" % r.error[1]
        if not self.dump_has(uid):
            return "good workload missing from /config_dump"
        try:
            st, _ = self.http(self.a.ready, "/healthz/ready")
        except OSError as e:
            return "readiness: %s" % e
        return None if st == 200 else "not ready (%d)" % st

    def expect_nack(self, nonce, *words):
        r = self.answer_of(nonce, 20)
        if not r:
            return False, "no answer"
        if not r.error:
            return False, "ACK"
        msg = r.error[1]
        missing = [w for w in words if w not in msg]
        return not missing, "NACK: %s" % msg[:160]

    def expect_reset(self, secs=15):
        """The stream or connection ends, and ztunnel comes back on a new connection."""
        c = self.conn
        try:
            c.pump(secs, lambda: c.closed is not None)
        except Closed as e:
            c.closed = c.closed or str(e)
        why = c.closed or "still open"
        if c.closed is None:
            return False, "stream still open after %ds" % secs
        t0 = time.time()
        try:
            self.accept(20)
        except (socket.timeout, Closed) as e:
            return False, "%s, no reconnect: %s" % (why, e)
        return True, "%s, reconnected after %.1fs" % (why, time.time() - t0)

    def run(self, name, expected, fn):
        if self.a.only and name != self.a.only:
            return
        rss0, fds0 = self.rss(), self.fds()
        t0 = time.time()
        try:
            ok, seen = fn()
        except (Closed, socket.timeout, ValueError) as e:
            ok, seen = False, "server side: %s" % e
        took = time.time() - t0
        extra = []
        if not self.alive():
            ok, seen = False, seen + "; ztunnel died"
        else:
            bad = self.good(name)
            if bad:
                ok = False
                extra.append("good server afterwards: " + bad)
            rss, fds = self.rss(), self.fds()
            extra.append("RSS %+d KiB, fds %+d" % (rss - rss0, fds - fds0))
            if rss > self.rss_base + self.a.rss_bound:
                ok = False
                extra.append("RSS %d KiB over the bound (start %d)" % (rss, self.rss_base))
            if fds > self.fds_base + 16:
                ok = False
                extra.append("fds %d (start %d)" % (fds, self.fds_base))
        print("%s  %-18s expected: %s\n      observed: %s (%.1fs; %s)" % (
            "PASS" if ok else "FAIL", name, expected, seen, took, "; ".join(extra)), flush=True)
        if not ok:
            self.failed.append(name)

    # ---- the cases ---------------------------------------------------------------------------
    def c_oversized_resource(self):
        n = self.nonce()
        uid = "cluster.local//v1/Pod/hostile/huge"
        body = ld(1, ld(20, uid) + ld(1, "huge") + ld(2, "hostile") + ld(10, "x" * (5 << 20)))
        self.send_response(response(ADDR, [resource(uid, body)], nonce=n))
        return self.expect_nack(n, "huge")

    def c_oversized_message(self):
        c = self.conn
        c.send_data(b"\0" + struct.pack(">I", 0x7fffffff) + b"\0" * 65536)
        return self.expect_reset()

    def c_deep_nesting(self):
        n = self.nonce()
        body = b"\x08\x01"
        for _ in range(20000):
            body = ld(1, body)
        self.send_response(response(ADDR, [resource("cluster.local//v1/Pod/hostile/deep", body)], nonce=n))
        return self.expect_nack(n, "deep")

    def c_mistyped_any(self):
        n = self.nonce()
        uid = "cluster.local//v1/Pod/hostile/mistyped"
        self.send_response(response(ADDR, [resource(uid, workload(uid, "10.9.1.1"), type_url=AUTHZ)], nonce=n))
        return self.expect_nack(n, "mistyped", "istio.security.Authorization")

    def c_wrong_message(self):
        n = self.nonce()
        # An Authorization's encoding (name, namespace, scope, action, rules) in an Address Any.
        authz = ld(1, "allow-all") + ld(2, "hostile") + b"\x18\x02" + b"\x20\x00" + ld(5, ld(1, ld(1, b"")))
        self.send_response(response(ADDR, [resource("cluster.local//v1/Pod/hostile/wrong", authz)], nonce=n))
        return self.expect_nack(n, "wrong")

    def c_duplicate(self):
        n = self.nonce()
        uid = "cluster.local//v1/Pod/hostile/dup"
        self.send_response(response(ADDR, [resource(uid, workload(uid, "10.9.2.1"), version="1"),
                                           resource(uid, workload(uid, "10.9.2.2"), version="2")],
                                    nonce=n))
        ok, seen = self.expect_nack(n, "dup", "duplicate")
        dump = self.http(self.a.admin, "/config_dump")[1].decode()
        held = "10.9.2.1" in dump and "10.9.2.2" not in dump
        return ok and held, seen + ("; the first copy held" if held else "; store: not the first copy")

    def c_garbage_framing(self):
        # Six times in a row: each reconnect waits longer than the one before.
        gaps = []
        for _ in range(6):
            self.conn.send_data(b"\x80\0\0\0\x04abcd")
            c = self.conn
            c.pump(15, lambda: c.closed is not None)
            if c.closed is None:
                return False, "stream still open"
            t0 = time.time()
            self.accept(20)
            gaps.append(time.time() - t0)
        ok = gaps[-1] > gaps[0] and gaps[-1] >= 0.15
        return ok, "%s each time, reconnects after %s s" % (c.closed, ", ".join("%.2f" % g for g in gaps))

    def c_compressed(self):
        self.conn.send_data(b"\x01\0\0\0\x04abcd")
        return self.expect_reset()

    def c_huge_count(self):
        count = 20000
        n = self.nonce()
        names = ["cluster.local//v1/Pod/hostile/bulk-%d" % i for i in range(count)]
        res = [resource(u, workload(u, "10.%d.%d.%d" % (100 + i // 65536, i // 256 % 256, i % 256)))
               for i, u in enumerate(names)]
        t0 = time.time()
        self.send_response(response(ADDR, res, nonce=n))
        r = self.answer_of(n, 60)
        t_apply = time.time() - t0
        if not r or r.error:
            return False, "no ACK for %d workloads: %s" % (count, r.error[1][:120] if r else "no answer")
        # The ACK says every one was applied (a rejected one would be named in a NACK); a
        # /config_dump of 20000 workloads is left out (seconds under sanitizers).
        peak = self.rss()
        n = self.nonce()
        self.send_response(response(ADDR, removed=names, nonce=n))
        r = self.answer_of(n, 60)
        if not r or r.error:
            return False, "removal of %d not ACKed" % count
        if self.dump_has(names[-1]):
            return False, "removed workload still present"
        # Freed memory goes back to the system (the heap is trimmed after a spike).
        back = self.wait_rss(self.rss_base + self.a.rss_settle, 10)
        return back, "%d workloads ACKed in %.1fs (RSS %d KiB at the peak), all removed, ACK; RSS %d KiB after" % (
            count, t_apply, peak, self.rss())

    def wait_rss(self, bound, secs):
        deadline = time.time() + secs
        while time.time() < deadline:
            if self.rss() <= bound:
                return True
            self.conn.pump(0.5)
        return self.rss() <= bound

    def c_unknown_removal(self):
        n = self.nonce()
        self.send_response(response(ADDR, removed=["cluster.local//v1/Pod/hostile/never-%d" % i
                                                   for i in range(10000)], nonce=n))
        r = self.answer_of(n, 20)
        if not r:
            return False, "no answer"
        return r.error is None, "ACK" if r.error is None else "NACK: %s" % r.error[1][:160]

    def c_silent_stream(self):
        # The stream is open and the request read; no response ever comes.
        c = self.accept(20) if self.conn.closed else self.conn
        c.pump(3)
        if c.closed:
            return False, "ztunnel ended the stream: %s" % c.closed
        try:
            st, _ = self.http(self.a.ready, "/healthz/ready")
        except OSError as e:
            return False, "readiness: %s" % e
        if st != 200:
            return False, "not ready while the server is silent"
        c.close()
        self.conn = None
        t0 = time.time()
        self.accept(20)
        return True, "kept its config and stayed ready for 3s; reconnected %.1fs after the close" % (
            time.time() - t0)

    def c_silent_tcp(self):
        # A server that accepts TCP and never says a word: no TLS handshake.
        if self.conn:
            self.conn.close()
            self.conn = None
        self.ls.settimeout(20)
        s, _ = self.ls.accept()
        t0 = time.time()
        s.settimeout(30)
        try:
            while s.recv(4096):
                pass
            why = "closed by ztunnel"
        except OSError as e:
            why = str(e)
        gave_up = time.time() - t0
        s.close()
        self.accept(20)
        return gave_up < 15, "%s after %.1fs, then a new connection" % (why, gave_up)

    def main(self):
        # A first good response for both types: ztunnel becomes ready.
        self.accept(30)
        n = self.nonce()
        self.send_response(response(AUTHZ, nonce=n))
        bad = self.good("initial")
        if bad:
            print("FAIL  setup: %s" % bad)
            return 1
        self.rss_base, self.fds_base = self.rss(), self.fds()
        print("baseline: ztunnel RSS %d KiB, %d fds" % (self.rss_base, self.fds_base), flush=True)
        cases = [
            ("oversized-resource", "a 5 MiB resource: NACK naming it, nothing applied", self.c_oversized_resource),
            ("oversized-message", "a gRPC message announced at 2 GiB: stream reset before buffering, reconnect",
             self.c_oversized_message),
            ("deep-nesting", "20000 nested messages in a resource: NACK naming it", self.c_deep_nesting),
            ("mistyped-any", "an Authorization Any in an Address response: NACK naming both", self.c_mistyped_any),
            ("wrong-message", "Authorization bytes under the Address type: NACK naming it", self.c_wrong_message),
            ("duplicate", "one name twice in a response: NACK naming it, the first copy stands", self.c_duplicate),
            ("garbage-framing", "gRPC flag byte 0x80, six times: stream reset, reconnects with a growing backoff", self.c_garbage_framing),
            ("compressed", "a compressed message (no grpc-encoding agreed): stream reset, reconnect",
             self.c_compressed),
            ("huge-count", "20000 resources in one response: ACK, all applied, then all removed; RSS bounded",
             self.c_huge_count),
            ("unknown-removal", "10000 removals of names never sent: ACK, nothing changes", self.c_unknown_removal),
            ("silent-stream", "no response ever: ztunnel keeps its config and stays ready, reconnects after",
             self.c_silent_stream),
            ("silent-tcp", "TCP accepted, no TLS: handshake deadline, then a new connection", self.c_silent_tcp),
        ]
        for name, expected, fn in cases:
            self.run(name, expected, fn)
        print("end: ztunnel RSS %d KiB (start %d), %d fds (start %d)" % (
            self.rss(), self.rss_base, self.fds(), self.fds_base), flush=True)
        if self.failed:
            print("cases not as expected: %s" % " ".join(self.failed))
            return 0 if self.a.report else 1
        return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--admin", required=True)
    p.add_argument("--ready", required=True)
    p.add_argument("--rss-bound", type=int, default=65536)
    p.add_argument("--rss-settle", type=int, default=16384)
    p.add_argument("--only")
    p.add_argument("--report", action="store_true")
    sys.exit(Driver(p.parse_args()).main())


if __name__ == "__main__":
    main()
