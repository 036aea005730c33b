#!/usr/bin/env bash
# Interoperability with an independent HTTP/2 + TLS stack: Node.js (built-in http2/tls only)
# as HBONE client, hand-framed gRPC client and HBONE server against our h2peer, plus hostile
# clients (garbage instead of the preface, a bad frame, no ALPN, http/1.1 only) that our
# server must drop while it keeps serving. Scripts: tests/integration/node/*.js.
set -euo pipefail
cd "$(dirname "$0")/../.."
peer=${BUILD_DIR:-build}/tests/h2peer
js=tests/integration/node
node=$(command -v node || true)
[ -n "$node" ] || { echo "FAIL: node (Node.js >= 18) is required for this test"; exit 1; }
[ -x "$peer" ] || { echo "FAIL: $peer not built"; exit 1; }
dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

td=spiffe://cluster.local/ns/default/sa
scripts/certs.sh root "$dir"
scripts/certs.sh leaf "$dir" server "$td/server"
scripts/certs.sh leaf "$dir" client "$td/client"
scripts/certs.sh leaf "$dir" foreign spiffe://other.domain/ns/default/sa/client

# Starts a server in the background (its pid in $pid), then waits for its "listening ADDR"
# line by polling (up to 10 s) and sets $listen to ADDR.
start_server() {
	local name=$1; shift
	: > "$dir/$name.out"
	"$@" > "$dir/$name.out" 2> "$dir/$name.err" &
	pid=$!
	pids+=("$pid")
	listen=
	for _ in $(seq 200); do
		listen=$(awk '/^listening / {print $2; exit}' "$dir/$name.out")
		[ -z "$listen" ] || return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "FAIL: $name did not start"
	cat "$dir/$name.out" "$dir/$name.err"
	exit 1
}

expect_ok() {
	echo "+ $*"
	timeout 20 "$@" || { echo "FAIL: exit $? from: $*"; exit 1; }
}
expect_fail() {
	local want=$1 out; shift
	echo "+ (must fail: $want) $*"
	if out=$(timeout 20 "$@" 2>&1); then echo "$out"; echo "FAIL: unexpected success"; exit 1; fi
	echo "$out"
	grep -q -- "$want" <<<"$out" || { echo "FAIL: missing '$want' in output"; exit 1; }
}
# The peer logs a line when it sees the tunnel close, which can come after our side is done:
# wait for it (10 s) before calling it missing.
expect_log() {
	local i
	for i in $(seq 100); do
		grep -q -- "$2" "$dir/$1" && return 0
		sleep 0.1
	done
	echo "FAIL: '$2' not in $1:"
	cat "$dir/$1"
	exit 1
}

start_server zt "$peer" serve 127.0.0.1:0 "$dir" server
addr=$listen zt_pid=$pid
echo "our server on $addr"
start_server node "$node" "$js/hbone_server.js" "$dir" server "$td/client"
naddr=$listen
echo "node server on $naddr"

echo "== 1. Node HBONE client -> our server"
expect_ok "$node" "$js/hbone_client.js" "$addr" "$dir" client "$td/server" $((10 << 20))
# The SPIFFE check in the Node client rejects a server proving another identity.
expect_fail "is not $td/other" "$node" "$js/hbone_client.js" "$addr" "$dir" client "$td/other" 10

echo "== 2. Node gRPC client (hand-framed) -> our server"
expect_ok "$node" "$js/grpc_client.js" "$addr" "$dir" client "$td/server"

echo "== 3. our client -> Node HBONE server"
expect_ok "$peer" connect "$naddr" "$dir" client "$td/server" $((1 << 20))
expect_log node.out "accepted CONNECT $naddr from $td/client over TLSv1.3 alpn=h2"
expect_log node.out "echoed 1048576 bytes, rst=0"
expect_fail "not in expected list" "$peer" connect "$naddr" "$dir" client "$td/other" 10
# A client from another trust domain passes the chain check; Node refuses its identity.
expect_fail "CONNECT status 403" "$peer" connect "$naddr" "$dir" foreign "$td/server" 10
expect_log node.out "refused CONNECT .* from spiffe://other.domain/ns/default/sa/client"

echo "== 4. hostile clients -> our server"
for mode in garbage badframe noalpn http11; do
	expect_ok "$node" "$js/hostile.js" "$mode" "$addr" "$dir" client "$td/server"
done
expect_log zt.err "client offered no ALPN"
expect_log zt.err "client offered no h2 in ALPN"
kill -0 "$zt_pid" || { echo "FAIL: our server died"; cat "$dir/zt.err"; exit 1; }
expect_ok "$peer" unary "$addr" "$dir" client "$td/server"
expect_ok "$node" "$js/grpc_client.js" "$addr" "$dir" client "$td/server"
echo ok
