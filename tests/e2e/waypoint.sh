#!/usr/bin/env bash
# Waypoints in the lab (spec §18): client ztunnel -> sim-waypoint -> server ztunnel -> pod, with
# L7 policy per request. Asserts what a user sees from curl in a pod: status codes, the 403
# body, keep-alive across a denial, HTTP/2 streams, who the app saw as the source, the identities each
# ztunnel logged, the waypoint's access log and metrics, a Service without a waypoint left
# alone, a pod that opts in by label, bad HTTP, and a waypoint restart.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$ROOT/netns-lab/lab
NAME=w$((RANDOM % 100000))
STATE=/run/netns-lab/$NAME
BIN=$(cd "${BUILD_DIR:-$ROOT/build}/bin" && pwd)
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}

source "$ROOT/netns-lab/lib.sh"
DIE_PREFIX=FAIL

trap '"$LAB" down --name "$NAME" > /dev/null 2>&1 || true' EXIT
on_die() {
	for c in waypoint-shop-waypoint ztunnel-node-1 ztunnel-node-2 istiod; do
		echo "--- $c:"; tail -n 12 "$STATE/logs/$c.log" 2>/dev/null || true
	done
}
log() { echo "[$(date +%T)] $*"; }
ipof() { awk -v ns="$1" -v p="$2" -F'\t' '$1 == ns && $2 == p {print $4}' "$STATE/pods"; }
# http ARGS...: curl from frontend/client; prints the body, then "code=N".
http() { "$LAB" exec frontend/client --name "$NAME" -- curl -s -m 5 -w '\ncode=%{http_code}' "$@" 2> /dev/null || true; }
code_of() { sed -n 's/^code=//p' <<<"$1"; }
expect() { # expect CODE ARGS...
	local want=$1 out; shift
	out=$(http "$@")
	[ "$(code_of "$out")" = "$want" ] || fail "curl $*: want $want, got: $out"
	echo "$out"
}
wlog() { cat "$STATE/logs/waypoint-shop-waypoint.log"; }

log "lab up"
"$LAB" up "$ROOT/tests/e2e/data/waypoint.yaml" --name "$NAME" > /dev/null || fail "lab up"
st=$("$LAB" status --name "$NAME")
grep -q '^shop/waypoint .* running ' <<<"$st" && grep -q '^shop/open .* running ' <<<"$st" ||
	fail "status shows no running waypoints: $st"
wp=$(ipof shop waypoint) client=$(ipof frontend client) solo=$(ipof shop solo)

log "1. allowed GET through the waypoint, load balanced to the endpoint with the waypoint's identity"
out=$(expect 200 http://10.96.0.20/items/1)
grep -q "^hello from cart-1" <<<"$out" || fail "not answered by cart-1: $out"
grep -q "^source=$wp:" <<<"$out" || fail "the app did not see the waypoint as its peer: $out"
grep -q '^path=/items/1$' <<<"$out" || fail "path changed on the way: $out"
grep 'direction=outbound' "$STATE/logs/ztunnel-node-1.log" | grep 'dst.hbone_addr=10.96.0.20:80' |
	grep -q 'dst.identity=spiffe://cluster.local/ns/shop/sa/waypoint' ||
	fail "client ztunnel did not go to the waypoint"
grep 'direction=inbound' "$STATE/logs/ztunnel-node-2.log" | grep 'dst.workload=cart-1' |
	grep -q 'src.identity=spiffe://cluster.local/ns/shop/sa/waypoint' ||
	fail "server ztunnel did not see the waypoint's identity"
wlog | grep 'access method=GET path="/items/1" status=200' |
	grep -q 'src.identity="spiffe://cluster.local/ns/frontend/sa/client"' ||
	fail "waypoint access log lacks the request with the client identity"

log "2. denied POST (DENY policy) and denied path (no ALLOW matched): 403 RBAC: access denied"
out=$(expect 403 -X POST --data-binary 'x=1' http://10.96.0.20/items/1)
grep -q '^RBAC: access denied$' <<<"$out" || fail "403 body: $out"
wlog | grep -q 'denied method=POST path="/items/1" reason="denied by shop/no-writes"' ||
	fail "POST denial not logged with its policy"
out=$(expect 403 http://10.96.0.20/other)
wlog | grep -q 'reason="no ALLOW policy matched (shop/cart-viewer)"' || fail "path denial reason"

log "3. keep-alive: allowed, denied, allowed on one connection"
out=$(http -o /dev/null -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
	http://10.96.0.20/items/a \
	http://10.96.0.20/admin/x http://10.96.0.20/items/b)
codes=$(grep -o '^[0-9]* [0-9]*' <<<"$out" | tr '\n' ' ')
[ "$codes" = "200 1 403 0 200 0 " ] || fail "codes and new connections per request: '$codes'"

log "3b. HTTP/2 (h2c, port http2): allowed and denied streams at once on one connection"
out=$("$LAB" exec frontend/client --name "$NAME" -- timeout 10 node "$ROOT/tests/e2e/data/h2c_requests.js" \
	http://10.96.0.22:80 /items/1 /admin /items/3 2> /dev/null || true)
[ "$out" = $'200 hello from api-1\n403 RBAC: access denied\n200 hello from api-1' ] ||
	fail "h2c streams: $out"
out=$(expect 200 --http2-prior-knowledge http://10.96.0.22/items/2)
grep -q '^protocol=HTTP/2$' <<<"$out" && grep -q "^source=$wp:" <<<"$out" || fail "h2c upstream: $out"
wlog | grep -q 'access method=GET path="/admin" status=403 .*dst.service=api.shop' ||
	fail "h2c denial not in the access log"

log "3c. TCP through the waypoint: the DENY rule's HTTP-only parts are ignored, so it denies"
out=$("$LAB" exec frontend/client --name "$NAME" -- "$BIN/sim-workload" client \
	--connect 10.96.0.23:80 --bytes 1000 --timeout 5s 2> /dev/null || true)
[ "$(jq -r .ok <<<"$out" 2> /dev/null)" = 0 ] || fail "TCP through a waypoint with a DENY rule: $out"
wlog | grep -q 'denied connection from spiffe://cluster.local/ns/frontend/sa/client to echo.shop' ||
	fail "L4 denial not logged"

log "3d. TCP through a waypoint without policies: bytes relayed both ways at L4"
out=$("$LAB" exec frontend/client --name "$NAME" -- "$BIN/sim-workload" client \
	--connect 10.96.0.24:80 --bytes 1MiB --connections 2 --timeout 5s 2> /dev/null || true)
[ "$(jq -r .ok <<<"$out" 2> /dev/null)" = 2 ] || fail "TCP through the open waypoint: $out"
grep 'direction=inbound' "$STATE/logs/ztunnel-node-2.log" | grep 'dst.workload=echo-1' |
	grep -q 'src.identity=spiffe://cluster.local/ns/shop/sa/open' ||
	fail "echo-1 not reached with the open waypoint's identity"

log "4. a Service without a waypoint is unaffected (no L7 policy, client identity at the server)"
out=$(expect 200 http://10.96.0.21/admin)
grep -q "^source=$client:" <<<"$out" || fail "plain service saw another source: $out"
grep 'direction=inbound' "$STATE/logs/ztunnel-node-2.log" | grep 'dst.workload=plain-1' |
	grep -q 'src.identity=spiffe://cluster.local/ns/frontend/sa/client' ||
	fail "plain service not reached directly"

log "5. a pod labelled istio.io/use-waypoint: pod-IP calls go through the waypoint"
out=$(expect 200 "http://$solo:8080/items")
grep -q "^source=$wp:" <<<"$out" || fail "workload-addressed call bypassed the waypoint: $out"
expect 403 "http://$solo:8080/admin" > /dev/null

log "6. bad HTTP: malformed request 400 and closed, oversized headers 431"
bad=$("$LAB" exec frontend/client --name "$NAME" -- python3 -c '
import socket, sys
s = socket.create_connection(("10.96.0.20", 80), timeout=5)
s.sendall(b"GET /items HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
sys.stdout.write(data.decode(errors="replace").split("\r\n")[0])
' 2> /dev/null || true)
[ "$bad" = "HTTP/1.1 400 Bad Request" ] || fail "malformed request: '$bad'"
big=$(head -c 70000 /dev/zero | tr '\0' a)
out=$(http -H "x-big: $big" http://10.96.0.20/items)
[ "$(code_of "$out")" = 431 ] || fail "70 kB of headers: want 431, got $(code_of "$out")"

log "7. metrics on the waypoint's 15020"
m=$(nsx "$NAME-p-shop-waypoint" curl -s 127.0.0.1:15020/metrics 2> /dev/null)
grep 'istio_requests_total{reporter="waypoint"' <<<"$m" | grep 'destination_service="cart.shop.svc.cluster.local"' |
	grep -q 'response_code="403"' || fail "no 403 series: $m"
grep -q 'istio_request_duration_milliseconds_count{reporter="waypoint",source_workload="client"' <<<"$m" ||
	fail "no duration histogram"

log "8. a restarted waypoint serves new requests"
starts=$(wlog | grep -c 'serving HBONE')
"$LAB" restart waypoint-shop-waypoint --name "$NAME" > /dev/null
serving() { [ "$(wlog | grep -c 'serving HBONE')" -gt "$starts" ]; }
wait_for 30 serving || fail "waypoint did not come back"
ok=""
for _ in $(seq 25); do
	[ "$(code_of "$(http http://10.96.0.20/items/after)")" = 200 ] && { ok=1; break; }
	sleep 0.2
done
[ -n "$ok" ] || fail "no 200 after the waypoint restart"

log "9. lab down leaves nothing"
"$LAB" down --name "$NAME" > /dev/null
! ip netns list | grep -q "^$NAME-" || fail "namespaces left behind"
echo "e2e waypoint: ok"
