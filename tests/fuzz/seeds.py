#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets that take wire formats made here by hand
(usage: seeds.py OUTDIR): DNS queries and upstream answers, the waypoint's HTTP/2 exchanges
(HPACK from python3-hpack) and delta-xDS response streams wrapping the committed Address and
Authorization seeds. Run by hand when a format changes; the output is committed under
tests/fuzz/corpus/ (mkseeds writes the other binary seeds)."""
import os
import struct
import sys

import hpack

out = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


# ---- DNS -------------------------------------------------------------------------------------
def dname(name):
    b = b""
    for label in name.strip(".").split("."):
        if label:
            b += bytes([len(label)]) + label.encode()
    return b + b"\0"


def dns_msg(qid, flags, qs=(), ans=(), auth=(), add=()):
    b = struct.pack(">HHHHHH", qid, flags, len(qs), len(ans), len(auth), len(add))
    for name, qtype in qs:
        b += dname(name) + struct.pack(">HH", qtype, 1)
    for sec in (ans, auth, add):
        for rr in sec:
            b += rr
    return b


def rr(name, rtype, ttl, rdata, cls=1, raw_name=None):
    return (raw_name if raw_name is not None else dname(name)) + \
        struct.pack(">HHIH", rtype, cls, ttl, len(rdata)) + rdata


OPT = rr("", 41, 0, b"", cls=1232)
OPT_DO = (b"\0" + struct.pack(">HHIH", 41, 4096, 0x8000, 0))
A, AAAA, CNAME, SRV, TXT, PTR, MX = 1, 28, 5, 33, 16, 12, 15
RD, QR, RA, TC = 0x0100, 0x8000, 0x0080, 0x0200

put("dns_query", "a", b"\0" + dns_msg(0x1111, RD, [("web.demo.svc.cluster.local", A)]))
put("dns_query", "aaaa-tcp-cname", b"\x13" + dns_msg(2, RD, [("web", AAAA)]))
put("dns_query", "edns", b"\x0e" + dns_msg(3, RD, [("api.example.com", A)], add=[OPT]))
put("dns_query", "edns-do", b"\x04" + dns_msg(4, 0, [("Web.Demo.", A)], add=[OPT_DO]))
put("dns_query", "srv", b"\0" + dns_msg(5, RD, [("_http._tcp.web.demo", SRV)]))
put("dns_query", "root", b"\0" + dns_msg(6, RD, [(".", 2)]))
put("dns_query", "two-questions", b"\0" + dns_msg(7, RD, [("a.b", A), ("c.d", A)]))
put("dns_query", "notify", b"\0" + dns_msg(8, 0x2000, [("a.b", A)]))
put("dns_query", "response", b"\0" + dns_msg(9, QR, [("a.b", A)]))
put("dns_query", "short", b"\0" + b"\x12\x34\x01\x00\x00\x01")
put("dns_query", "pointer-loop", b"\0" + struct.pack(">HHHHHH", 10, RD, 1, 0, 0, 0) +
    b"\xc0\x0c" + struct.pack(">HH", 1, 1))
put("dns_query", "long-name", b"\x0e" + dns_msg(11, RD, [(".".join(["a" * 63] * 3) + ".b", A)]))

put("dns_response", "a", b"\0" + dns_msg(0x4242, QR | RD | RA, [("api.example.com", A)],
    ans=[rr("api.example.com", A, 300, bytes([10, 76, 0, 3]))]))
put("dns_response", "aaaa-edns", b"\x03" + dns_msg(0x4242, QR | RD | RA, [("api.example.com", AAAA)],
    ans=[rr("api.example.com", AAAA, 60, bytes(15) + b"\1")], add=[OPT]))
put("dns_response", "cname-chain", b"\0" + dns_msg(0x4242, QR | RD | RA, [("api.example.com", A)],
    ans=[rr("api.example.com", CNAME, 30, dname("edge.example.com")),
         rr("edge.example.com", A, 20, bytes([192, 0, 2, 1])),
         rr("edge.example.com", A, 10, bytes([192, 0, 2, 2]))]))
put("dns_response", "compressed", b"\0" + dns_msg(0x4242, QR | RD | RA, [("api.example.com", A)],
    ans=[rr("", A, 5, bytes([1, 2, 3, 4]), raw_name=b"\xc0\x0c")] * 3))
put("dns_response", "nxdomain", b"\0" + dns_msg(0x4242, QR | RD | RA | 3, [("nope.example.com", A)],
    auth=[rr("example.com", 6, 60, dname("ns.example.com") + dname("h.example.com") + bytes(20))]))
put("dns_response", "truncated", b"\0" + dns_msg(0x4242, QR | RD | RA | TC, [("api.example.com", A)]))
put("dns_response", "many-tcp", b"\x04" + dns_msg(0x4242, QR | RD | RA, [("big.example.com", A)],
    ans=[rr("", A, 30, bytes([10, 0, i // 256, i % 256]), raw_name=b"\xc0\x0c") for i in range(200)]))
put("dns_response", "txt-mx", b"\0" + dns_msg(0x4242, QR | RD | RA, [("example.com", TXT)],
    ans=[rr("example.com", TXT, 30, b"\x05hello"), rr("example.com", MX, 30, b"\0\x0a" + dname("mx.example.com"))]))
put("dns_response", "servfail", b"\0" + dns_msg(0x4242, QR | RD | RA | 2, [("api.example.com", A)]))
put("dns_response", "wrong-id", b"\0" + dns_msg(0x1, QR, [("api.example.com", A)]))
put("dns_response", "bad-rdlength", b"\0" + dns_msg(0x4242, QR, [("a.b", A)],
    ans=[dname("a.b") + struct.pack(">HHIH", A, 1, 1, 16) + b"\1\2\3\4"]))


# ---- waypoint HTTP/2 -------------------------------------------------------------------------
def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def rec(direction, data):
    return bytes([direction]) + struct.pack(">H", len(data)) + data


SETTINGS = frame(4, 0, 0)
SETTINGS_ACK = frame(4, 1, 0)


def req(sid, method, path, extra=(), end=True, enc=None):
    enc = enc or hpack.Encoder()
    hdrs = [(":method", method), (":scheme", "http"), (":path", path),
            (":authority", "web.demo.svc.cluster.local")] + list(extra)
    return frame(1, 0x4 | (0x1 if end else 0), sid, enc.encode(hdrs))


def resp(sid, status=200, body=b"ok", enc=None):
    enc = enc or hpack.Encoder()
    return frame(1, 0x4, sid, enc.encode([(":status", str(status)), ("content-type", "text/plain")])) + \
        frame(0, 0x1, sid, body)


put("waypoint_h2", "get-allowed", rec(0, SETTINGS + req(1, "GET", "/api/x", [("x-ok", "yes")])) +
    rec(1, SETTINGS + SETTINGS_ACK + resp(1)))
put("waypoint_h2", "denied-admin", rec(0, SETTINGS + req(1, "DELETE", "/admin/users")))
put("waypoint_h2", "no-condition", rec(0, SETTINGS + req(1, "GET", "/api/x")))
e = hpack.Encoder()
put("waypoint_h2", "post-body", rec(0, SETTINGS + req(1, "POST", "/api/y", [("x-ok", "yes")], end=False, enc=e) +
    frame(0, 0, 1, b"hello ") + frame(0, 1, 1, b"world")) + rec(1, SETTINGS + resp(1, 201)))
e = hpack.Encoder()
put("waypoint_h2", "two-streams", rec(0, SETTINGS + req(1, "GET", "/api/a", [("x-ok", "yes")], enc=e) +
    req(3, "GET", "/admin", enc=e)) + rec(1, SETTINGS + resp(1)) + rec(0, frame(3, 0, 1, b"\0\0\0\x08")))
put("waypoint_h2", "upstream-gone", rec(0, SETTINGS + req(1, "GET", "/api/x", [("x-ok", "yes")])) +
    rec(0xff, b""))
put("waypoint_h2", "continuation", rec(0, SETTINGS + frame(1, 0, 1, hpack.Encoder().encode(
    [(":method", "GET"), (":scheme", "http")])) + frame(9, 0x4, 1, hpack.Encoder().encode(
        [(":path", "/api/z"), (":authority", "web")]))))
put("waypoint_h2", "ping-goaway", rec(0, SETTINGS + frame(6, 0, 0, bytes(8)) + frame(7, 0, 0, bytes(8))))
put("waypoint_h2", "window-update", rec(0, SETTINGS + frame(8, 0, 0, struct.pack(">I", 1 << 20)) +
    req(1, "GET", "/api/x", [("x-ok", "yes")])) + rec(1, SETTINGS + frame(1, 0x4, 1, hpack.Encoder().encode(
        [(":status", "100")])) + resp(1, 200, b"x" * 100)))
put("waypoint_h2", "big-header", rec(0, SETTINGS + req(1, "GET", "/api/x", [("x-big", "v" * 3000)])))


# ---- delta-xDS response streams --------------------------------------------------------------
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


ADDR = "type.googleapis.com/istio.workload.Address"
AUTHZ = "type.googleapis.com/istio.security.Authorization"


def resource(name, version, type_url, body):
    return ld(3, name) + ld(1, version) + ld(2, ld(1, type_url) + ld(2, body))


def response(type_url, resources=(), removed=(), nonce="1"):
    b = ld(4, type_url) + ld(5, nonce)
    for r in resources:
        b += ld(2, r)
    for n in removed:
        b += ld(6, n)
    return b


def grpc(msg):
    return b"\0" + struct.pack(">I", len(msg)) + msg


def seeds(target):
    d = os.path.join(here, "corpus", target)
    return [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d)) if not f.startswith("crash")]


addrs = seeds("xds_address")[:6]
authz = seeds("xds_authorization")[:3]
put("xds_response", "addresses", grpc(response(ADDR, [resource("a%d" % i, "1", ADDR, a) for i, a in enumerate(addrs)])))
put("xds_response", "authorizations", grpc(response(AUTHZ, [resource("p%d" % i, "1", AUTHZ, a) for i, a in enumerate(authz)])))
put("xds_response", "update-remove", grpc(response(ADDR, [resource("a0", "1", ADDR, addrs[0])])) +
    grpc(response(ADDR, [resource("a0", "2", ADDR, addrs[1])], nonce="2")) +
    grpc(response(ADDR, removed=["a0", "unknown"], nonce="3")))
put("xds_response", "mistyped", grpc(response(ADDR, [resource("p0", "1", AUTHZ, authz[0]),
                                                     resource("a0", "1", ADDR, authz[0])])))
put("xds_response", "duplicate", grpc(response(ADDR, [resource("a0", "1", ADDR, addrs[0]),
                                                      resource("a0", "2", ADDR, addrs[1])])))
put("xds_response", "nameless-bodiless", grpc(response(ADDR, [ld(1, "1"), ld(3, "x")])))
put("xds_response", "unsubscribed", grpc(response("type.googleapis.com/envoy.config.cluster.v3.Cluster")))
put("xds_response", "empty-and-split", grpc(b"") + grpc(response(AUTHZ, removed=["p0"]))[:7])


# ---- waypoint policies -----------------------------------------------------------------------
def vi(field, n):
    return varint(field << 3) + varint(n)


def policy(name, action=0, dry_run=False, services=(), rules=()):
    b = ld(1, "demo") + ld(2, name) + (vi(3, action) if action else b"") + (vi(4, 1) if dry_run else b"")
    return b + b"".join(ld(6, s) for s in services) + b"".join(ld(7, r) for r in rules)


def rule(frm=(), to=(), when=(), unevaluable=None):
    b = b"".join(ld(1, x) for x in frm) + b"".join(ld(2, x) for x in to) + b"".join(ld(3, x) for x in when)
    return b + (ld(4, unevaluable) if unevaluable else b"")


def rep(field, vals):
    return b"".join(ld(field, v) for v in vals)


def waypoint(*policies):
    return ld(1, "demo") + ld(2, "waypoint") + ld(3, "waypoint") + b"".join(ld(4, p) for p in policies)


put("waypoint_authz", "deny-admin-allow-api", waypoint(
    policy("no-admin", 1, rules=[rule(to=[rep(7, ["/admin*"]) + rep(5, ["DELETE"])])]),
    policy("api", 0, rules=[rule(frm=[rep(1, ["cluster.local/ns/demo/sa/*"])],
                                 to=[rep(7, ["/api/*"]) + rep(1, ["web*"])],
                                 when=[ld(1, "request.headers[x-ok]") + rep(2, ["yes"])])])))
put("waypoint_authz", "ip-blocks", waypoint(
    policy("nets", 0, rules=[rule(frm=[rep(5, ["10.244.0.0/16", "fd00::/8"]) + rep(6, ["10.244.9.0/24"]) +
                                       rep(7, ["10.0.0.0/8"]) + rep(8, ["10.0.0.9/32", "bad/99"])])])))
put("waypoint_authz", "audit-dry-run", waypoint(
    policy("audit", 2, rules=[rule(to=[rep(3, ["80", "8080"]) + rep(4, ["22"])])]),
    policy("dry", 1, dry_run=True, services=["demo/web.demo.svc.cluster.local"],
           rules=[rule(frm=[rep(3, ["demo"]) + rep(4, ["other"]) + rep(9, ["demo/sleep"]) + rep(10, ["demo/x"])])])))
put("waypoint_authz", "not-fields", waypoint(
    policy("nots", 0, rules=[rule(to=[rep(2, ["*.evil.com"]) + rep(6, ["POST", "PUT"]) + rep(8, ["*secret*", "/x*"])],
                                  when=[ld(1, "source.ip") + rep(3, ["10.0.0.1"]),
                                        ld(1, "request.auth.claims[iss]") + rep(2, ["x"])]),
                             rule(unevaluable="request.auth.principals")])))
put("waypoint_authz", "empty-rules", waypoint(policy("allow-nothing", 0), policy("deny-all", 1, rules=[rule()])))
