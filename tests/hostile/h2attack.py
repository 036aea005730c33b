#!/usr/bin/python3
"""Hostile HBONE client: mTLS with a mesh certificate (or none), then hand-made HTTP/2 frames
(HPACK from python3-hpack), one attack per invocation. Prints one line "CASE: observed" and
exits 0 when ztunnel reacted as the case expects, 1 otherwise.

usage: h2attack.py CASE --addr IP:PORT --authority IP:PORT [--cert C --key K --roots R]
"""
import argparse
import socket
import ssl
import struct
import sys
import time

import hpack

DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW, CONT = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
ERR = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
       6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 11: "ENHANCE_YOUR_CALM"}
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


class Conn:
    def __init__(self, a, tls=True):
        host, port = a.addr.rsplit(":", 1)
        self.raw = socket.create_connection((host, int(port)), timeout=a.timeout)
        self.sock = self.raw
        self.buf = b""
        self.timeout = a.timeout
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_allowed_table_size = 65536
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the server's identity is not under test here
            if a.cert:
                ctx.load_cert_chain(a.cert, a.key)
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.raw)

    def send(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def start(self):
        self.send(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 20)))

    def headers(self, sid, hdrs, end=False):
        block = self.enc.encode(hdrs)
        return frame(HEADERS, END_HEADERS | (END_STREAM if end else 0), sid, block)

    def connect(self, sid, authority):
        return self.headers(sid, [(":method", "CONNECT"), (":authority", authority)])

    def read_frame(self, deadline):
        """Next frame (type, flags, sid, payload), or None on close/timeout."""
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    t, fl = self.buf[3], self.buf[4]
                    sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                    p = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    if t == SETTINGS and not fl & ACK:
                        try:
                            self.send(frame(SETTINGS, ACK, 0))
                        except OSError:
                            pass
                    if t == HEADERS:
                        try:
                            p = self.dec.decode(p)
                        except Exception:
                            p = []
                    return t, fl, sid, p
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                d = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLError, OSError):
                return None
            if not d:
                return None
            self.buf += d

    def until(self, pred, secs):
        """Reads frames until pred(frame) is true; returns that frame or None."""
        deadline = time.monotonic() + secs
        while True:
            f = self.read_frame(deadline)
            if f is None or pred(f):
                return f

    def goaway(self, secs):
        f = self.until(lambda f: f[0] == GOAWAY, secs)
        return ERR.get(struct.unpack(">I", f[3][4:8])[0], "?") if f else None

    def closed(self, secs):
        """Whether the peer closed (or sent GOAWAY) within secs."""
        deadline = time.monotonic() + secs
        while True:
            f = self.read_frame(deadline)
            if f is None:
                return time.monotonic() < deadline
            if f[0] == GOAWAY:
                return True


def status_of(f):
    for k, v in f[3]:
        if k in (b":status", ":status"):
            return int(v)
    return None


def echo_ok(c, sid, authority, payload=b"ping", early=False):
    """CONNECT on sid; with early, DATA goes out before the response. True if echoed."""
    msg = c.connect(sid, authority)
    if early:
        msg += frame(DATA, 0, sid, payload)
    c.send(msg)
    f = c.until(lambda f: f[2] == sid and f[0] in (HEADERS, RST), 10)
    if not f or f[0] != HEADERS or status_of(f) != 200:
        return False, "no 200: %s" % (describe(f),)
    if not early:
        c.send(frame(DATA, 0, sid, payload))
    got = b""
    deadline = time.monotonic() + 10
    while len(got) < len(payload):
        f = c.read_frame(deadline)
        if f is None:
            break
        if f[2] == sid and f[0] == DATA:
            got += f[3]
            if f[3]:
                c.send(frame(WINDOW, 0, 0, struct.pack(">I", len(f[3]))) +
                       frame(WINDOW, 0, sid, struct.pack(">I", len(f[3]))))
        if f[2] == sid and f[0] == RST:
            return False, "reset %s" % ERR.get(struct.unpack(">I", f[3])[0], "?")
    return got == payload, "echoed %d of %d bytes" % (len(got), len(payload))


def describe(f):
    if f is None:
        return "nothing (closed or timed out)"
    if f[0] == RST:
        return "RST_STREAM %s" % ERR.get(struct.unpack(">I", f[3])[0], "?")
    if f[0] == HEADERS:
        return "HEADERS :status %s" % status_of(f)
    return "frame type %d" % f[0]


# ---- cases: each returns (ok, observed) --------------------------------------------------

def case_garbage(a):
    c = Conn(a, tls=False)
    c.send(b"\x16\x03\x01\xff\xff" + b"\x00" * 4096)
    return c.closed(8), "connection closed"


def case_no_client_cert(a):
    a.cert = None
    try:
        c = Conn(a)
        c.start()
        return c.closed(8), "closed after the handshake without a client certificate"
    except (ssl.SSLError, OSError) as e:
        return True, "handshake refused (%s)" % type(e).__name__


def case_bad_preface(a):
    c = Conn(a)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return c.closed(8), "closed on an HTTP/1.1 request"


def case_malformed_frames(a):
    c = Conn(a)
    c.start()
    c.send(frame(DATA, 0, 0, b"x") + frame(WINDOW, 0, 1, b"\0\0"))
    g = c.goaway(8)
    return g in ("PROTOCOL_ERROR", "FRAME_SIZE_ERROR"), "GOAWAY %s" % g


def case_header_bomb(a):
    c = Conn(a)
    c.start()
    hdrs = [(":method", "CONNECT"), (":authority", a.authority)]
    hdrs += [("x-bomb-%d" % i, "v" * 1000) for i in range(200)]
    block = hpack.Encoder().encode(hdrs)
    c.enc = hpack.Encoder()
    out = frame(HEADERS, 0, 1, block[:16000])
    rest = block[16000:]
    while rest:
        out += frame(CONT, END_HEADERS if len(rest) <= 16000 else 0, 1, rest[:16000])
        rest = rest[16000:]
    try:
        c.send(out)
    except OSError:
        return True, "connection closed while the headers were sent"
    f = c.until(lambda f: f[2] == 1 and f[0] in (HEADERS, RST) or f[0] == GOAWAY, 8)
    if f is None:
        return c.closed(1) or True, "connection closed"
    ok = f[0] == RST or (f[0] == HEADERS and status_of(f) == 431) or f[0] == GOAWAY
    return ok, describe(f) if f[0] != GOAWAY else "GOAWAY"


def case_continuation_flood(a):
    c = Conn(a)
    c.start()
    c.send(frame(HEADERS, 0, 1, c.enc.encode([(":method", "CONNECT")])))
    sent = 0
    try:
        for _ in range(20000):
            c.send(frame(CONT, 0, 1, b"\x40\x01x\x01y"))
            sent += 1
    except OSError:
        pass
    return c.closed(8), "closed after %d CONTINUATION frames" % sent


def flood(a, ftype, payload):
    c = Conn(a)
    c.start()
    sent = 0
    try:
        for _ in range(50):
            c.send(frame(ftype, 0, 0, payload) * 2000)
            sent += 2000
    except OSError:
        pass
    return c, sent


def case_settings_flood(a):
    c, sent = flood(a, SETTINGS, struct.pack(">HI", 3, 100))
    g = c.goaway(8)
    return g == "ENHANCE_YOUR_CALM" or c.closed(1), "GOAWAY %s after %d SETTINGS (not reading)" % (g, sent)


def case_ping_flood(a):
    c, sent = flood(a, PING, b"12345678")
    g = c.goaway(8)
    return g == "ENHANCE_YOUR_CALM" or c.closed(1), "GOAWAY %s after %d PINGs (not reading)" % (g, sent)


def case_slowloris(a):
    """Many connections, each sending the preface a byte at a time, then stalling."""
    conns = []
    for _ in range(a.n):
        c = Conn(a)
        c.send(PREFACE[:5])
        conns.append(c)
    time.sleep(1)
    for c in conns:
        try:
            c.send(PREFACE[5:8])
        except OSError:
            pass
    closed = sum(1 for c in conns if c.closed(0.05))
    return True, "%d stalled connections held open, %d closed so far" % (len(conns), closed)


def case_stop_reading(a):
    """A tunnel whose client sends without ever reading the echo (nor the server's window
    updates): ztunnel's memory must stay bounded whatever the client does."""
    rss0 = proc_stat(a.pid)[0] if a.pid else 0
    c = Conn(a)
    c.start()
    c.send(c.connect(1, a.authority))
    f = c.until(lambda f: f[2] == 1 and f[0] in (HEADERS, RST), 10)
    if not f or status_of(f) != 200:
        return False, describe(f)
    sent = 0
    c.sock.settimeout(5)
    try:
        while sent < 64 << 20:
            c.send(frame(DATA, 0, 1, b"z" * 16384))
            sent += 16384
    except (socket.timeout, OSError):
        pass
    rss1 = proc_stat(a.pid)[0] if a.pid else 0
    return rss1 - rss0 < a.rss_bound, ("sent %d KiB before the peer stopped taking them; ztunnel RSS "
                                 "%d -> %d KiB" % (sent >> 10, rss0, rss1))


def case_rapid_reset(a):
    c = Conn(a)
    c.start()
    out, sid, g = b"", 1, None
    # Frames are read between writes: the GOAWAY must be seen before the server's close
    # (with our unread frames in its buffer) turns into a TCP reset that discards it.
    for i in range(a.n):
        out += c.connect(sid, a.authority) + frame(RST, 0, sid, struct.pack(">I", 8))
        sid += 2
        if len(out) > 8000:
            try:
                c.send(out)
            except OSError:
                break
            out = b""
            f = c.until(lambda f: f[0] == GOAWAY, 0.01)
            if f:
                g = ERR.get(struct.unpack(">I", f[3][4:8])[0], "?")
                break
    if g is None:
        try:
            c.send(out)
        except OSError:
            pass
        g = c.goaway(10)
    return g == "ENHANCE_YOUR_CALM", "GOAWAY %s after %d HEADERS+RST_STREAM sent" % (g, (sid - 1) // 2)


def case_early_data(a):
    c = Conn(a)
    c.start()
    ok, what = echo_ok(c, 1, a.authority, b"early bytes", early=True)
    return ok, what


def case_stream_limit(a):
    c = Conn(a)
    c.start()
    f = c.until(lambda f: f[0] == SETTINGS and not f[1] & ACK, 5)
    limit = 100
    for i in range(0, len(f[3]) if f else 0, 6):
        k, v = struct.unpack(">HI", f[3][i:i + 6])
        if k == 3:
            limit = v
    out = b""
    for i in range(limit + 1):
        out += c.connect(1 + 2 * i, a.authority)
    c.send(out)
    over = 1 + 2 * limit
    answered, refused, goaway = 0, None, None
    deadline = time.monotonic() + 15
    while answered < limit or refused is None:
        f = c.read_frame(deadline)
        if f is None:
            break
        if f[0] == GOAWAY:
            goaway = ERR.get(struct.unpack(">I", f[3][4:8])[0], "?")
            break
        if f[0] == HEADERS and status_of(f) == 200:
            answered += 1
        if f[0] == RST and f[2] == over:
            refused = ERR.get(struct.unpack(">I", f[3])[0], "?")
    if goaway:
        return False, "GOAWAY %s after %d streams (limit %d)" % (goaway, limit + 1, limit)
    return (refused == "REFUSED_STREAM" and answered == limit,
            "limit %d: %d answered 200, stream %d %s, connection kept" %
            (limit, answered, limit + 1, refused or "not refused"))


def proc_stat(pid):
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    import os
    return rss, len(os.listdir("/proc/%d/fd" % pid))


def raise_nofile():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def hold_pending(a, hello):
    """a.n connections that never finish a handshake (silent, or after one ClientHello),
    then a good client; reports ztunnel's RSS and fds per pending connection."""
    raise_nofile()
    host, port = a.addr.rsplit(":", 1)
    rss0, fds0 = proc_stat(a.pid)
    conns = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    for _ in range(a.n):
        s = socket.create_connection((host, int(port)), timeout=5)
        if hello:
            s.setblocking(False)
            t = ctx.wrap_socket(s, do_handshake_on_connect=False)
            try:
                t.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                pass
            except (ssl.SSLError, OSError) as e:
                return False, "ClientHello refused: %s" % e
            s = t
        conns.append(s)
    time.sleep(1.5)
    rss1, fds1 = proc_stat(a.pid)
    ok, what = case_good(a)
    held = max(fds1 - fds0, 1)  # ztunnel keeps a bounded number; the rest it closed
    per = (rss1 - rss0) / held
    return ok, ("%d %s sent: ztunnel RSS %d -> %d KiB (%.1f KiB per one held), fds %d -> %d; "
                "good client: %s" % (a.n, "half-open ClientHellos" if hello else "silent TCP connections",
                                     rss0, rss1, per, fds0, fds1, what))


def case_silent_flood(a):
    return hold_pending(a, False)


def case_hello_flood(a):
    return hold_pending(a, True)


def case_idle_tunnels(a):
    """a.n idle CONNECT tunnels (50 per connection); ztunnel's RSS per tunnel."""
    raise_nofile()
    rss0, fds0 = proc_stat(a.pid)
    conns, opened = [], 0
    while opened < a.n:
        c = Conn(a)
        c.start()
        k = min(50, a.n - opened)
        c.send(b"".join(c.connect(1 + 2 * i, a.authority) for i in range(k)))
        got = 0
        deadline = time.monotonic() + 10
        while got < k:
            f = c.read_frame(deadline)
            if f is None:
                break
            if f[0] == HEADERS and status_of(f) == 200:
                got += 1
        opened += got
        conns.append(c)
        if got < k:
            return False, "only %d of %d tunnels opened" % (opened, a.n)
    time.sleep(1.5)
    rss1, fds1 = proc_stat(a.pid)
    return True, ("%d idle tunnels: ztunnel RSS %d -> %d KiB (%.1f KiB each), fds %d -> %d" %
                  (opened, rss0, rss1, (rss1 - rss0) / opened, fds0, fds1))


def case_good(a):
    c = Conn(a)
    c.start()
    return echo_ok(c, 1, a.authority, b"hello from a good client")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("--addr", required=True)
    p.add_argument("--authority", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--rss-bound", type=int, default=32768, help="KiB a case may add to RSS")
    a = p.parse_args()
    fn = globals().get("case_" + a.case.replace("-", "_"))
    if not fn:
        print("unknown case %s" % a.case)
        return 2
    try:
        ok, what = fn(a)
    except (OSError, ssl.SSLError) as e:
        ok, what = False, "client error: %s" % e
    print("%s: %s" % (a.case, what))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
