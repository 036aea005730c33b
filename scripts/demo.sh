#!/usr/bin/env bash
# The demo: two of our own peers over loopback speaking what HBONE is made of. A throwaway
# CA issues SPIFFE certificates; the server and client verify each other's identity over
# TLS 1.3, open an HTTP/2 CONNECT tunnel and echo bytes through it, then make gRPC calls.
# Prints one line per exchange with what each side verified.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
peer=$build/tests/h2peer
dir=$(mktemp -d)
srv_pid=
cleanup() { [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

td=spiffe://cluster.local/ns
server_id=$td/demo/sa/echo-server
client_id=$td/demo/sa/sleep
scripts/certs.sh root "$dir"
scripts/certs.sh leaf "$dir" server "$server_id"
scripts/certs.sh leaf "$dir" client "$client_id"
scripts/certs.sh leaf "$dir" rogue spiffe://evil.example/ns/demo/sa/sleep

"$peer" serve 127.0.0.1:0 "$dir" server > "$dir/server.out" 2> "$dir/server.err" &
srv_pid=$!
for _ in $(seq 200); do grep -q listening "$dir/server.out" 2>/dev/null && break; sleep 0.05; done
addr=$(awk '/listening/ {print $2}' "$dir/server.out")
[ -n "$addr" ] || { echo "demo: server did not start" >&2; cat "$dir/server.err" >&2; exit 1; }

printf '%-34s %-46s %-8s %s\n' "EXCHANGE" "SERVER IDENTITY SEEN" "VERDICT" "DETAIL"
run() {
	local label=$1 want=$2; shift 2
	local out rc=0 seen detail verdict
	out=$(timeout 60 "$peer" "$@" 2>&1) || rc=$?
	seen=$(sed -n 's/.*server identity \(spiffe:[^,]*\),.*/\1/p' <<<"$out" | head -1)
	detail=$(grep -E "tunnel closed|grpc status|handshake failed" <<<"$out" | head -1 | sed 's/^h2peer: //')
	if [ $rc -eq 0 ]; then verdict=ok; else verdict=refused; fi
	printf '%-34s %-46s %-8s %s\n' "$label" "${seen:-(none)}" "$verdict" "$detail"
	[ "$verdict" = "$want" ] || { echo "demo: expected $want for '$label'" >&2; exit 1; }
}
run "CONNECT echo 8 MiB (mTLS, h2)" ok connect "$addr" "$dir" client "$server_id" 8388608
run "gRPC unary with bearer token" ok unary "$addr" "$dir" client "$server_id"
run "gRPC bidi stream, 1000 messages" ok stream "$addr" "$dir" client "$server_id" 1000
run "client expects another identity" refused connect "$addr" "$dir" client "$td/demo/sa/db" 10
run "client from another trust domain" refused connect "$addr" "$dir" rogue "$server_id" 10
echo
echo "server log:"
sed 's/^/  /' "$dir/server.err"
