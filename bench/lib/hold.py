#!/usr/bin/env python3
"""Opens N TCP connections to IP:PORT, sends one byte on each and reads its echo (so every
connection is established end to end), prints "holding N" and keeps them idle until stdin
closes. Used by bench/dataplane.sh to measure memory per idle tunneled connection.
    hold.py IP:PORT N"""
import socket
import sys

host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(b"x")
    socks.append(s)
    if len(socks) % 500 == 0:  # keep the unread echoes bounded
        for t in socks[-500:]:
            if t.recv(1) != b"x":
                sys.exit(f"connection {i}: no echo")
for t in socks[len(socks) - len(socks) % 500:]:
    if t.recv(1) != b"x":
        sys.exit("no echo")
print(f"holding {len(socks)}", flush=True)
sys.stdin.read()  # until the benchmark closes it
for s in socks:
    s.close()
