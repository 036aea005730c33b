#!/usr/bin/env bash
# The data plane end to end, in network namespaces (root): real ztunnels (one per pod, dedicated
# mode, in-pod REDIRECT rules), fake-istiod, sim-workload apps, Node.js's http2 as an
# independent HBONE peer. Asserts what a user sees: bytes, statuses, access logs, metrics.
source "$(dirname "$0")/lib/harness.sh"

mesh=$ROOT/tests/e2e/data/mesh.yaml
json() { jq -r "$1" <<<"$2"; }

lab_log "topology"
lab_underlay
lab_pod client 10.77.0.11
lab_pod server-1 10.77.0.21
lab_pod server-2 10.77.0.22
lab_pod server-3 10.77.0.23
lab_pod server-4 10.77.0.24
lab_pod intruder 10.77.0.31
lab_pod plain 10.77.0.41
lab_pod nodesrv 10.77.0.51
cp "$mesh" "$WORK/mesh.yaml"
lab_istiod "$WORK/mesh.yaml"
for p in client server-1 server-2 server-3 server-4 intruder; do lab_capture "$p"; done
lab_ztunnel client node-a default client
lab_ztunnel server-1 node-b default server
lab_ztunnel server-2 node-b default server
lab_ztunnel server-3 node-a default server
lab_ztunnel server-4 node-b default server
lab_ztunnel intruder node-a other intruder
for p in server-1 server-2 server-3 server-4 plain; do lab_server "$p" 8080; done
lab_server server-1 9090
for p in client server-1 server-2 server-3 server-4 intruder; do lab_wait_ready "$p"; done

# Node.js HBONE server in pod nodesrv (no ztunnel there), with a certificate for its identity.
mkcert() { # DIR NAME NODE NS SA: a workload certificate from fake-istiod's CA
	local d=$1 name=$2 tok
	mkdir -p "$d"
	tok=$("$BIN/fake-istiod" token --ca-dir "$WORK/ca" --node "$3" --namespace "$4" \
		--service-account "$5")
	nsx ul "$TBIN/xds_probe" --addr "$UL_IP:15012" --roots "$WORK/ca/root-cert.pem" \
		--host istiod.istio-system.svc --token "$tok" csr \
		--identity "spiffe://cluster.local/ns/$4/sa/$5" --out "$d" > /dev/null ||
		fail "certificate for $4/$5"
	cp "$d/root.pem" "$d/root-cert.pem"
	cp "$d/chain.pem" "$d/$name-cert.pem"
	cp "$d/key.pem" "$d/$name-key.pem"
}
mkcert "$WORK/certs" nodesrv node-b default nodesrv
mkcert "$WORK/certs" client node-a default client
node=$(command -v node || command -v nodejs)
bg nodesrv nodesrv env LISTEN=10.77.0.51:15008 "$node" "$ROOT/tests/integration/node/hbone_server.js" \
	"$WORK/certs" nodesrv spiffe://cluster.local/ns/default/sa/client
wait_for 10 grep -q '^listening' "$WORK/nodesrv.out" || fail "Node HBONE server did not start"

lab_log "1. HBONE echo, 1 B to 100 MiB, half-close both ways"
for n in 1 65536 1048576 104857600; do
	out=$(lab_client client --connect 10.77.0.21:8080 --bytes "$n" --timeout 60s) ||
		fail "echo of $n bytes: $out"
	[ "$(json .bytes_received "$out")" = "$n" ] || fail "echo of $n bytes: $out"
done
lab_dump client | jq -e '.workloadProxies' > /dev/null 2>&1 || true

lab_log "2. a Service VIP spreads 300 connections over its three endpoints"
out=$(lab_client client --connect 10.96.0.10:80 --bytes 100 --connections 300 --concurrency 30) ||
	fail "VIP: $out"
for p in server-1 server-2 server-3; do
	n=$(lab_metrics "$p" | awk '/^istio_tcp_connections_opened_total\{reporter="destination"/ &&
		/destination_service="echo.default.svc.cluster.local"/ {s += $NF} END {print s + 0}')
	lab_log "   $p: $n connections"
	[ "$n" -ge 50 ] || fail "$p got $n of 300 connections"
done

lab_log "3. an unknown destination passes through as plain TCP"
out=$(lab_client client --connect 10.77.0.41:8080 --bytes 4096) || fail "passthrough: $out"
grep -q 'dst.addr=10.77.0.41:8080' "$WORK/zt-client.err" || fail "no access log for passthrough"

lab_log "4. policies: DENY by namespace and by port, ALLOW by principal"
out=$(lab_client intruder --connect 10.77.0.21:8080 --bytes 10 --timeout 5s) &&
	fail "intruder was let in: $out"
grep -q 'error=.*explicitly denied by: default/deny-other-namespace' "$WORK/zt-server-1.err" ||
	fail "deny reason not logged"
lab_metrics server-1 | grep '^istio_tcp_connections_failed_total' | grep -q 'response_flags="DENY"' ||
	fail "denied connection not counted"
out=$(lab_client client --connect 10.77.0.21:9090 --bytes 10 --timeout 5s) &&
	fail "port 9090 was let in: $out"
grep -q 'explicitly denied by: default/deny-admin-port' "$WORK/zt-server-1.err" ||
	fail "port deny not logged"
lab_log "   uncaptured client to a captured server: no identity, ALLOW by principal refuses"
out=$(lab_client plain --connect 10.77.0.21:8080 --bytes 10 --timeout 5s) &&
	fail "plaintext client was let in: $out"
grep -q 'allow policies exist, but none allowed' "$WORK/zt-server-1.err" ||
	fail "plaintext denial not logged"

lab_log "5. a policy added while a connection is open closes it"
bg client longconn "$BIN/sim-workload" client --connect 10.77.0.22:8080 --requests 1000000 \
	--size 64 --timeout 60s
long=$LAST_PID
sleep 1
kill -0 "$long" || fail "long connection ended early: $(cat "$WORK/longconn.out")"
# fake-istiod watches its file: an atomic edit drops the client from the ALLOW policy.
sed 's|"cluster.local/ns/default/sa/client", ||' "$mesh" > "$WORK/mesh.new"
mv "$WORK/mesh.new" "$WORK/mesh.yaml"
wait_for 20 sh -c "! kill -0 $long 2>/dev/null" || fail "connection not closed by the policy change"
grep -q 'connection closed due to policy change' "$WORK/zt-server-2.err" || fail "reason not logged"
cp "$mesh" "$WORK/mesh.new"
mv "$WORK/mesh.new" "$WORK/mesh.yaml"
wait_for 20 nsx client "$BIN/sim-workload" client --connect 10.77.0.22:8080 --bytes 10 --timeout 2s ||
	fail "client not allowed again"

lab_log "6. identities: wrong server identity, foreign trust domain, authority mismatch"
hc() { nsx ul "$BIN/hbone-client" --cert "$WORK/certs/client-cert.pem" --key "$WORK/certs/client-key.pem" \
	--roots "$WORK/certs/root-cert.pem" --timeout 5s "$@"; }
out=$(echo hi | hc --expect spiffe://cluster.local/ns/default/sa/server --connect 10.77.0.21:15008 \
	--authority 10.77.0.21:8080 2>&1) || fail "hbone-client to server-1: $out"
grep -q "peer: spiffe://cluster.local/ns/default/sa/server" <<<"$out" || fail "peer not shown: $out"
out=$(echo hi | hc --expect spiffe://cluster.local/ns/default/sa/other --connect 10.77.0.21:15008 \
	--authority 10.77.0.21:8080 2>&1) && fail "wrong server identity accepted"
grep -q "sa/other" <<<"$out" || fail "wrong identity not named: $out"
rc=0
out=$(echo hi | hc --expect spiffe://cluster.local/ns/default/sa/server --connect 10.77.0.21:15008 \
	--authority 10.77.0.22:8080 2>&1) || rc=$?
[ "$rc" = 2 ] && grep -q "status: 400" <<<"$out" || fail "authority mismatch: rc $rc: $out"
"$ROOT/scripts/certs.sh" root "$WORK/foreign" > /dev/null
"$ROOT/scripts/certs.sh" leaf "$WORK/foreign" evil spiffe://evil.domain/ns/default/sa/client > /dev/null
out=$(echo hi | nsx ul "$BIN/hbone-client" --cert "$WORK/foreign/evil-cert.pem" \
	--key "$WORK/foreign/evil-key.pem" --roots "$WORK/certs/root-cert.pem" --timeout 5s \
	--expect spiffe://cluster.local/ns/default/sa/server --connect 10.77.0.21:15008 \
	--authority 10.77.0.21:8080 2>&1) && fail "foreign trust domain accepted"

# Each worker thread has its own pool: at most 2 connections each (100 streams apiece).
workers=${ZTUNNEL_WORKER_THREADS:-2}
lab_log "7. 200 concurrent connections share at most 2 pooled HTTP/2 connections per worker ($workers)"
out=$(lab_client client --connect 10.77.0.24:8080 --connections 200 --concurrency 200 \
	--requests 20 --size 100) || fail "200 connections: $out"
pool=$(lab_dump client | jq -c '[.workloadProxies[0].pool.keys[] |
	select(.destination == "10.77.0.24:15008") | .connections[].streams_total]')
lab_log "   streams per pooled connection: $pool"
jq -e --argjson w "$workers" 'length >= 2 and length <= 2 * $w and add == 200' <<<"$pool" > /dev/null ||
	fail "200 streams should share at most $((2 * workers)) connections: $pool"

lab_log "8. Node.js http2: as HBONE client to our 15008, as the HBONE server our client reaches"
nsx ul env AUTHORITY=10.77.0.21:8080 "$node" "$ROOT/tests/integration/node/hbone_client.js" 10.77.0.21:15008 "$WORK/certs" client \
	spiffe://cluster.local/ns/default/sa/server 1048576 > "$WORK/nodecli.log" 2>&1 ||
	fail "Node client to our server: $(tail -3 "$WORK/nodecli.log")"
out=$(lab_client client --connect 10.77.0.51:8080 --bytes 1048576) || fail "our client to Node server: $out"
grep -q "CONNECT 10.77.0.51:8080 from spiffe://cluster.local/ns/default/sa/client" "$WORK/nodesrv.out" ||
	fail "Node server did not see our CONNECT: $(cat "$WORK/nodesrv.out")"

lab_log "9. access log and metrics of one known flow"
out=$(lab_client client --connect 10.77.0.21:8080 --bytes 12345) || fail "known flow: $out"
sleep 0.5
line=$(grep 'connection complete' "$WORK/zt-client.err" | grep 'dst.hbone_addr=10.77.0.21:8080' |
	grep 'bytes_sent=12345' | tail -1)
[ -n "$line" ] || fail "no outbound access log line for the flow"
for f in 'src.addr=10.77.0.11:' 'src.workload=client' 'src.namespace=default' \
	'src.identity=spiffe://cluster.local/ns/default/sa/client' 'dst.addr=10.77.0.21:15008' \
	'dst.workload=server-1' 'dst.namespace=default' \
	'dst.identity=spiffe://cluster.local/ns/default/sa/server' 'direction=outbound' \
	'bytes_recv=12345'; do
	grep -qF "$f" <<<"$line" || fail "access log lacks $f: $line"
done
m=$(lab_metrics server-1 | grep '^istio_tcp_received_bytes_total{reporter="destination"' |
	grep 'source_principal="spiffe://cluster.local/ns/default/sa/client"' |
	grep 'destination_workload="server-1"' | grep 'connection_security_policy="mutual_tls"')
[ -n "$m" ] || fail "no destination-side byte counter for client -> server-1"

lab_finish
lab_log "PASS"
