#!/usr/bin/env bash
# sim-waypoint on loopback against fake-istiod (its certificate, addresses and policies) and
# hbone-client as the caller's ztunnel: the HTTP/1.1 parser with bad input (malformed head
# 400 and close, oversized head 431), a DENY answered 403 `RBAC: access denied` with the
# stream kept for the next pipelined request, an allowed request whose endpoint refuses
# HBONE 503, CONNECT to a destination the waypoint does not serve 503, and its metrics.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(cd "${BUILD_DIR:-build}/bin" && pwd)
dir=$(mktemp -d)
istiod= wp=
cleanup() {
	for p in $istiod $wp; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	echo "--- sim-waypoint:"; tail -n ${FAIL_TAIL:-20} "$dir/wp.err" 2>/dev/null || true
	echo "--- fake-istiod:"; tail -n 10 "$dir/istiod.err" 2>/dev/null || true
	exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() {
	local n=$(($1 * 5)); shift
	for _ in $(seq "$n"); do "$@" > /dev/null 2>&1 && return 0; sleep 0.2; done
	return 1
}

cat > "$dir/mesh.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient, istio.io/use-waypoint: waypoint}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: shop}
spec: {gatewayClassName: istio-waypoint}
---
apiVersion: v1
kind: Pod
metadata:
  name: waypoint
  namespace: shop
  labels: {gateway.networking.k8s.io/gateway-name: waypoint, istio.io/dataplane-mode: none}
spec: {nodeName: node-1, serviceAccountName: waypoint}
---
apiVersion: v1
kind: Pod
metadata: {name: cart-1, namespace: shop, labels: {app: cart}}
spec: {nodeName: node-1, serviceAccountName: cart, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: cart, namespace: shop}
spec:
  clusterIP: 10.96.0.20
  selector: {app: cart}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-writes, namespace: shop}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  action: DENY
  rules: [{to: [{operation: {methods: [POST]}}]}]
YAML
printf 'shop/waypoint 127.0.0.1\nshop/cart-1 127.0.0.2\n' > "$dir/mesh.addrs"
xport=$(free_port) hport=$(free_port) mport=$(free_port)
"$bin/fake-istiod" serve --config "$dir/mesh.yaml" --addresses "$dir/mesh.addrs" \
	--listen "127.0.0.1:$xport" --ca-dir "$dir/ca" > /dev/null 2> "$dir/istiod.err" &
istiod=$!
wait_for 10 grep -q listening "$dir/istiod.err" || fail "fake-istiod did not start"
"$bin/fake-istiod" token --ca-dir "$dir/ca" --node node-1 --namespace shop \
	--service-account waypoint > "$dir/token"
"$bin/sim-waypoint" --namespace shop --name waypoint --ip 127.0.0.1 --istiod "127.0.0.1:$xport" \
	--roots "$dir/ca/root-cert.pem" --token "$dir/token" --listen "127.0.0.1:$hport" \
	--metrics "127.0.0.1:$mport" 2> "$dir/wp.err" &
wp=$!
wait_for 10 grep -q 'serving HBONE' "$dir/wp.err" || fail "sim-waypoint did not start"
wait_for 10 grep -q 'xDS synced' "$dir/wp.err" || fail "sim-waypoint did not sync"

# The caller: a client certificate from the same root (fake-istiod keeps its key in the CA dir).
scripts/certs.sh leaf "$dir/ca" client spiffe://cluster.local/ns/frontend/sa/client
# call AUTHORITY: sends $dir/in through one HBONE tunnel; sets $rc, output in $dir/out.
call() {
	rc=0
	"$bin/hbone-client" --cert "$dir/ca/client-cert.pem" --key "$dir/ca/client-key.pem" \
		--roots "$dir/ca/root-cert.pem" --expect spiffe://cluster.local/ns/shop/sa/waypoint \
		--connect "127.0.0.1:$hport" --authority "$1" --timeout 5s < "$dir/in" \
		> "$dir/out" 2> "$dir/hc.err" || rc=$?
}
# The status lines of the responses (a 403 body has no newline: the next response follows it).
status_lines() { grep -ao 'HTTP/1\.1 [0-9][0-9][0-9] [^[:cntrl:]]*' "$dir/out" | tr '\n' '|'; }

echo "1. two pipelined POSTs: 403 RBAC: access denied each, one stream"
printf 'POST /a HTTP/1.1\r\nHost: cart\r\nContent-Length: 3\r\n\r\nabcPOST /b HTTP/1.1\r\nHost: cart\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n' > "$dir/in"
call 10.96.0.20:80
[ "$rc" = 0 ] || fail "tunnel: rc $rc $(cat "$dir/hc.err")"
[ "$(status_lines)" = "HTTP/1.1 403 Forbidden|HTTP/1.1 403 Forbidden|" ] || fail "statuses: $(status_lines)"
[ "$(grep -ao 'RBAC: access denied' "$dir/out" | wc -l)" = 2 ] || fail "403 bodies: $(cat -v "$dir/out")"
grep -q 'denied method=POST path="/b" reason="denied by shop/no-writes"' "$dir/wp.err" ||
	fail "second request not decided"

echo "2. malformed head: 400 and the stream ends"
printf 'GET / HTTP/1.1\r\nHost: cart\r\nno colon here\r\n\r\nGET /never HTTP/1.1\r\n\r\n' > "$dir/in"
call 10.96.0.20:80
[ "$(status_lines)" = "HTTP/1.1 400 Bad Request|" ] || fail "malformed: $(status_lines)"
grep -aqi '^connection: close' "$dir/out" || fail "400 without connection: close"

echo "3. oversized head: 431"
{ printf 'GET / HTTP/1.1\r\nHost: cart\r\nx-big: '; head -c 70000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } > "$dir/in"
call 10.96.0.20:80
[ "$(status_lines)" = "HTTP/1.1 431 Request Header Fields Too Large|" ] || fail "oversized: $(status_lines)"

echo "4. allowed, but the endpoint's ztunnel is not there: 503"
printf 'GET /items HTTP/1.1\r\nHost: cart\r\n\r\n' > "$dir/in"
call 10.96.0.20:80
[ "$(status_lines)" = "HTTP/1.1 503 Service Unavailable|" ] || fail "no upstream: $(status_lines)"
grep -q 'status=503 flags=UF' "$dir/wp.err" || fail "503 not logged with UF"

echo "5. CONNECT to what the waypoint does not serve: 503"
: > "$dir/in"
call 10.96.0.99:80
[ "$rc" = 2 ] && grep -q 'status: 503' "$dir/hc.err" || fail "unserved authority: rc $rc $(cat "$dir/hc.err")"
grep -q 'CONNECT 10.96.0.99:80 from spiffe://cluster.local/ns/frontend/sa/client refused with 503' \
	"$dir/wp.err" || fail "refusal not logged"

echo "6. metrics"
m=$(curl -s "127.0.0.1:$mport/metrics")
grep 'istio_requests_total{reporter="waypoint"' <<<"$m" | grep 'response_code="403"' |
	grep -q '} 2$' || fail "403 count: $m"
grep -q 'response_code="400",response_flags="DPE"' <<<"$m" || fail "400 series: $m"
[ "$(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$mport/other")" = 404 ] || fail "404 for other paths"

kill "$wp"
wait "$wp" || fail "sim-waypoint exit status $?"
wp=
echo "sim_waypoint: ok"
