#!/usr/bin/env bash
# The mesh as users run it: netns-lab with one ztunnel (in-pod mode) and one sim-cni per node,
# pods handed over by ZDS with the istio-cni redirection rules. Scenarios in the spirit of
# Istio's namespaced tests; each asserts what a user sees. `lab down` runs on any exit and the
# last scenario checks it leaves nothing behind.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${BUILD_DIR:-$ROOT/build}/bin" && pwd)
LAB=$ROOT/netns-lab/lab
NAME=e$((RANDOM % 100000))
STATE=/run/netns-lab/$NAME
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}

source "$ROOT/netns-lab/lib.sh"
DIE_PREFIX=FAIL

trap '"$LAB" down --name "$NAME" > /dev/null 2>&1 || true' EXIT
on_die() {
	for c in ztunnel-node-1 ztunnel-node-2 cni-node-1 cni-node-2 istiod; do
		echo "--- $c:"; tail -n 12 "$STATE/logs/$c.log" 2>/dev/null || true
	done
}
log() { echo "[$(date +%T)] $*"; }
ipof() { awk -v ns="$1" -v p="$2" -F'\t' '$1 == ns && $2 == p {print $4}' "$STATE/pods"; }
client() { local pod=$1; shift; "$LAB" exec "$pod" --name "$NAME" -- "$BIN/sim-workload" client --timeout 5s "$@"; }
ok() { local out; out=$(client "$@") || fail "expected success: $* -> $out"; }
refused() { local out; ! out=$(client "$@") || fail "expected a refusal: $* -> $out"; }
zlog() { cat "$STATE/logs/ztunnel-$1.log"; }
ready() { nsx "$NAME-n-$1" curl -sf 127.0.0.1:15021/healthz/ready; }

root_rules_before=$(iptables-save 2>/dev/null | grep -v '^#' || true)
root_ip_rules_before=$(ip rule)

log "lab up"
"$LAB" up "$ROOT/tests/e2e/data/lab.yaml" --name "$NAME" > /dev/null || fail "lab up"
st=$("$LAB" status --name "$NAME")
[ "$(grep -c " ready$" <<<"$st")" = 2 ] || fail "status: $st"
peer=$(ipof frontend peer) echo1=$(ipof backend echo-1) echo2=$(ipof backend echo-2)
db=$(ipof backend db) legacy=$(ipof backend legacy)

log "1. captured to captured, same node and across nodes (HBONE)"
ok frontend/client --connect "$peer:8080" --bytes 1MiB
ok frontend/client --connect "$echo1:8080" --bytes 1MiB
zlog node-1 | grep 'direction=inbound' | grep -q "src.identity=spiffe://cluster.local/ns/frontend/sa/client" ||
	fail "same-node inbound not seen with the client identity"
zlog node-2 | grep 'direction=inbound' | grep "dst.workload=echo-1" |
	grep -q "src.identity=spiffe://cluster.local/ns/frontend/sa/client" || fail "cross-node inbound not seen"

log "2. captured client to an uncaptured server: passthrough"
ok frontend/client --connect "$legacy:8080" --bytes 4096
zlog node-1 | grep 'direction=outbound' | grep -q "dst.addr=$legacy:8080" || fail "passthrough not logged"

log "3. uncaptured client to captured servers: 15006, policy without identity"
ok backend/legacy --connect "$peer:8080" --bytes 4096
refused backend/legacy --connect "$echo1:8080" --bytes 10
zlog node-2 | grep -q "allow policies exist, but none allowed" || fail "plaintext denial not logged"

log "4. a Service VIP balances across nodes"
ok frontend/client --connect 10.96.0.10:80 --bytes 100 --connections 60 --concurrency 10
n1=$(zlog node-2 | grep 'direction=inbound' | grep -c 'dst.workload=echo-1' || true)
n2=$(zlog node-1 | grep 'direction=inbound' | grep -c 'dst.workload=echo-2' || true)
log "   echo-1 (node-2): $n1, echo-2 (node-1): $n2"
[ "$n1" -ge 10 ] && [ "$n2" -ge 10 ] || fail "VIP did not spread: $n1 / $n2"

log "5. policy by principal, namespace and port, and one added while traffic flows"
refused frontend/peer --connect "$echo1:8080" --bytes 10
refused frontend/client --connect "$db:5432" --bytes 10
refused backend/echo-1 --connect "$db:9090" --bytes 10
zlog node-2 | grep -q "explicitly denied by: backend/db-not-from-frontend" || fail "namespace deny not logged"
zlog node-2 | grep -q "explicitly denied by: backend/db-metrics-port" || fail "port deny not logged"
client frontend/client --connect "$peer:8080" --requests 1000000 --size 64 --timeout 60s \
	> "$STATE/long.out" 2>&1 &
long=$!
sleep 1
kill -0 "$long" || fail "long connection ended early"
cat >> "$STATE/mesh.yaml" <<'EOF'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: peer-lockdown, namespace: frontend}
spec:
  selector: {matchLabels: {app: peer}}
  action: DENY
  rules: [{from: [{source: {principals: ["cluster.local/ns/frontend/sa/client"]}}]}]
EOF
wait_for 20 sh -c "! kill -0 $long 2>/dev/null" || fail "policy added did not close the connection"
zlog node-1 | grep -q "connection closed due to policy change" || fail "policy close not logged"

log "6. recursive calls into ztunnel's own ports are refused"
refused frontend/client --connect "127.0.0.1:15001" --bytes 10
refused frontend/client --connect "127.0.0.1:15006" --bytes 10
refused frontend/client --connect "$(ipof frontend client):15001" --bytes 10
refused frontend/client --connect "10.76.0.11:15000" --bytes 10

log "7. a server-speaks-first protocol passes through unchanged"
out=$(client frontend/client --connect "$peer:7000" --expect-banner --bytes 100 2>&1) &&
	fail "peer lockdown should refuse the client too: $out"
out=$(client backend/echo-2 --connect "$peer:7000" --expect-banner --bytes 100) ||
	fail "banner through the mesh: $out"
[ "$(jq -r .banner <<<"$out")" = "hello from peer" ] || fail "banner changed: $out"

log "7a. HBONE checks: authority-IP mismatch 400, foreign trust domain refused"
tok=$("$BIN/fake-istiod" token --ca-dir "$STATE/ca" --node node-1 --namespace frontend \
	--service-account client)
mkdir -p "$STATE/certs"
ip netns exec "$NAME-istiod" "$(dirname "$BIN")/tests/xds_probe" --addr 10.76.0.2:15012 \
	--roots "$STATE/ca/root-cert.pem" --host istiod.istio-system.svc --token "$tok" csr \
	--identity spiffe://cluster.local/ns/frontend/sa/client --out "$STATE/certs" > /dev/null ||
	fail "client certificate"
hc() { # CERT KEY ARGS...: hbone-client from node-1's namespace, which routes to every pod
	local c=$1 k=$2; shift 2
	echo hi | ip netns exec "$NAME-n-node-1" "$BIN/hbone-client" --cert "$c" --key "$k" \
		--roots "$STATE/ca/root-cert.pem" --timeout 5s \
		--expect spiffe://cluster.local/ns/backend/sa/echo --connect "$echo1:15008" "$@" 2>&1
}
out=$(hc "$STATE/certs/chain.pem" "$STATE/certs/key.pem" --authority "$echo1:8080") ||
	fail "hbone-client to echo-1: $out"
rc=0; out=$(hc "$STATE/certs/chain.pem" "$STATE/certs/key.pem" --authority "$echo2:8080") || rc=$?
[ "$rc" = 2 ] && grep -q "status: 400" <<<"$out" || fail "authority mismatch: rc $rc: $out"
"$ROOT/scripts/certs.sh" root "$STATE/foreign" > /dev/null
"$ROOT/scripts/certs.sh" leaf "$STATE/foreign" evil spiffe://evil.domain/ns/frontend/sa/client > /dev/null
out=$(hc "$STATE/foreign/evil-cert.pem" "$STATE/foreign/evil-key.pem" --authority "$echo1:8080") &&
	fail "a foreign trust domain got through: $out"

log "7b. an application's own TLS passes through unchanged"
"$ROOT/scripts/certs.sh" root "$STATE/apptls" > /dev/null
"$ROOT/scripts/certs.sh" leaf "$STATE/apptls" app spiffe://app.example/ns/x/sa/y > /dev/null
ip netns exec "$NAME-p-frontend-peer" openssl s_server -accept 8443 -quiet -naccept 1 \
	-cert "$STATE/apptls/app-cert.pem" -key "$STATE/apptls/app-key.pem" > "$STATE/apptls/srv.log" 2>&1 &
tlssrv=$!
wait_for 10 sh -c "ip netns exec '$NAME-p-frontend-peer' ss -Hltn 'sport = :8443' | grep -q ." ||
	fail "the application's TLS server did not listen on 8443"
out=$(echo ping | timeout 10 ip netns exec "$NAME-p-backend-echo-2" openssl s_client \
	-connect "$peer:8443" -CAfile "$STATE/apptls/root-cert.pem" -verify_return_error 2>&1) ||
	fail "application TLS through the mesh: $out"
grep -q "Verify return code: 0 (ok)" <<<"$out" || fail "application TLS not verified end to end: $out"
kill "$tlssrv" 2>/dev/null || true
wait "$tlssrv" 2>/dev/null || true

log "7c. a second lab runs beside this one"
"$LAB" up "$ROOT/tests/e2e/data/lab.yaml" --name "${NAME}b" > /dev/null || fail "second lab up"
echo2b=$(awk -F'\t' '$1 == "backend" && $2 == "echo-1" {print $4}' "/run/netns-lab/${NAME}b/pods")
"$LAB" exec frontend/client --name "${NAME}b" -- "$BIN/sim-workload" client --connect "$echo2b:8080" \
	--bytes 4096 --timeout 5s > /dev/null || fail "traffic in the second lab"
"$LAB" down --name "${NAME}b" > /dev/null
ok frontend/client --connect "$echo1:8080" --bytes 4096

log "8. fake-istiod stopped: existing and new connections keep working"
client frontend/client --connect "$echo1:8080" --requests 400 --size 64 --timeout 30s \
	> "$STATE/during.out" 2>&1 &
during=$!
"$LAB" stop istiod --name "$NAME"
ok frontend/client --connect "$echo1:8080" --bytes 65536
wait "$during" || fail "connection across the istiod stop failed: $(cat "$STATE/during.out")"
"$LAB" start istiod --name "$NAME"

log "9. ztunnel restarted: pods come back from the CNI snapshot"
"$LAB" restart ztunnel-node-1 --name "$NAME"
wait_for 30 ready node-1 || fail "ztunnel on node-1 not ready after restart"
ok frontend/client --connect "$echo1:8080" --bytes 65536
refused backend/echo-2 --connect "$echo1:8080" --bytes 10

log "10. pod removal closes its connections"
client frontend/client --connect "$echo1:8080" --requests 1000000 --size 64 --timeout 60s \
	> "$STATE/del.out" 2>&1 &
victim=$!
sleep 1
uid=$(jq -r '.pods[] | select(.namespace == "frontend" and .name == "client") | .uid' "$STATE/inventory.json")
"$BIN/sim-cni" ctl --control "$STATE/node-1/cni.ctl" del "$uid" | grep -q ok || fail "CNI del"
wait_for 20 sh -c "! kill -0 $victim 2>/dev/null" || fail "pod removal left its connection open"

log "11. lab down leaves nothing behind (after a clean stop with no sanitizer reports)"
for c in ztunnel-node-1 ztunnel-node-2 cni-node-1 cni-node-2 istiod; do "$LAB" stop "$c" --name "$NAME"; done
if grep -l 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$STATE"/logs/*.log; then
	fail "sanitizer reports in the logs above"
fi
"$LAB" down --name "$NAME" > /dev/null
[ -z "$(ip netns list | grep "^$NAME-" || true)" ] || fail "namespaces left: $(ip netns list | grep "^$NAME-")"
[ ! -e "$STATE" ] || fail "state directory left"
! pgrep -f "$STATE" > /dev/null || fail "processes left: $(pgrep -af "$STATE")"
[ "$(iptables-save 2>/dev/null | grep -v '^#' || true)" = "$root_rules_before" ] ||
	fail "root namespace iptables changed"
[ "$(ip rule)" = "$root_ip_rules_before" ] || fail "root namespace ip rules changed"
"$LAB" down --name "$NAME" > /dev/null || fail "a second lab down failed"
log PASS
