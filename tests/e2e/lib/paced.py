#!/usr/bin/env python3
"""A long-lived paced echo client for the lifecycle scenarios: one TCP connection, a 64-byte
round trip every --interval seconds for at most --seconds, each checked. Prints one line per
second ("alive T N" with the wall-clock time and round trips so far) and a last line "end T N
REASON" (REASON "done" when the time ran out, else what broke the connection). Exit 0 only
for "done"."""
import argparse
import socket
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("addr")
ap.add_argument("--seconds", type=float, default=30)
ap.add_argument("--interval", type=float, default=0.05)
a = ap.parse_args()
host, port = a.addr.rsplit(":", 1)
n = 0
last = 0.0


def now():
    return time.time()


try:
    s = socket.create_connection((host, int(port)), timeout=5)
    start = now()
    while now() - start < a.seconds:
        msg = (b"%08d" % n) * 8
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            d = s.recv(len(msg) - len(got))
            if not d:
                raise ConnectionError("closed by the peer")
            got += d
        if got != msg:
            raise ValueError("echo mismatch")
        n += 1
        if now() - last >= 1:
            last = now()
            print("alive %.3f %d" % (last, n), flush=True)
        time.sleep(a.interval)
    print("end %.3f %d done" % (now(), n), flush=True)
except Exception as e:  # the reason is the result
    print("end %.3f %d %s" % (now(), n, str(e) or type(e).__name__), flush=True)
    sys.exit(1)
