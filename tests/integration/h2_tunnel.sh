#!/usr/bin/env bash
# Protocol library end to end on loopback: our HTTP/2 client and server over mutual TLS with
# SPIFFE identities. CONNECT echo from 1 byte to 100 MiB with half-close both ways; gRPC
# unary and a bidirectional stream of 10,000 messages; identity checks on both sides.
set -euo pipefail
cd "$(dirname "$0")/../.."
peer=${BUILD_DIR:-build}/tests/h2peer
dir=$(mktemp -d)
srv_pid=
cleanup() { [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

td=spiffe://cluster.local/ns/default/sa
scripts/certs.sh root "$dir"
scripts/certs.sh leaf "$dir" server "$td/server"
scripts/certs.sh leaf "$dir" client "$td/client"
scripts/certs.sh leaf "$dir" foreign spiffe://other.domain/ns/default/sa/client

"$peer" serve 127.0.0.1:0 "$dir" server > "$dir/server.out" 2> "$dir/server.err" &
srv_pid=$!
for _ in $(seq 100); do grep -q listening "$dir/server.out" 2>/dev/null && break; sleep 0.05; done
addr=$(awk '/listening/ {print $2}' "$dir/server.out")
[ -n "$addr" ] || { echo "server did not start"; cat "$dir/server.err"; exit 1; }
echo "server on $addr"

expect_ok() { echo "+ $*"; timeout 60 "$peer" "$@"; }
expect_fail() {
	local want=$1; shift
	echo "+ (must fail: $want) $*"
	if out=$(timeout 60 "$peer" "$@" 2>&1); then echo "unexpected success: $out"; exit 1; fi
	echo "$out"
	grep -q -- "$want" <<<"$out" || { echo "missing '$want' in output"; exit 1; }
}

for n in 1 16384 1048577 104857600; do
	expect_ok connect "$addr" "$dir" client "$td/server" "$n"
done
expect_ok unary "$addr" "$dir" client "$td/server"
expect_ok stream "$addr" "$dir" client "$td/server" 10000
# The server proves an identity outside the list the client expects.
expect_fail "not in expected list" connect "$addr" "$dir" client "$td/other" 10
# A client from another trust domain: the server refuses it after the handshake.
expect_fail "tunnel closed\|handshake failed\|TLS" connect "$addr" "$dir" foreign "$td/server" 10
grep -q "server handshake failed" "$dir/server.err"
kill -0 "$srv_pid" # the server survived all of it
echo ok
