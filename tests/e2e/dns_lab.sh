#!/usr/bin/env bash
# DNS in the lab (spec §13): sim-cni's capture rules send a pod's port-53 traffic to its
# ztunnel DNS proxy, which answers Service names by the pod's search path and forwards the rest
# to the underlay DNS server; a ServiceEntry with resolution DNS reaches the underlay server
# api.example.com (resolved on demand by ztunnel), and a WorkloadEntry puts a VM behind a
# Service. `lab down` runs on any exit; the last step checks it leaves nothing behind.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${BUILD_DIR:-$ROOT/build}/bin" && pwd)
LAB=$ROOT/netns-lab/lab
NAME=d$((RANDOM % 100000))
STATE=/run/netns-lab/$NAME
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}

trap '"$LAB" down --name "$NAME" > /dev/null 2>&1 || true' EXIT
fail() {
	echo "FAIL: $*"
	for c in ztunnel-node-1 cni-node-1 dns; do
		echo "--- $c:"; tail -n 15 "$STATE/logs/$c.log" 2>/dev/null || true
	done
	exit 1
}
log() { echo "[$(date +%T)] $*"; }
px() { local pod=$1; shift; "$LAB" exec "$pod" --name "$NAME" -- "$@"; }
resolve() { px "$1" getent ahostsv4 "$2" | awk 'NR == 1 {print $1}'; }
expect_name() { local got; got=$(resolve "$1" "$2" || true); [ "$got" = "$3" ] || fail "$1 resolving $2: got '$got', want '$3'"; }
client() { local pod=$1; shift; px "$pod" "$BIN/sim-workload" client --timeout 5s "$@"; }
zlog() { cat "$STATE/logs/ztunnel-node-1.log"; }
metric() { ip netns exec "$NAME-n-node-1" curl -s 127.0.0.1:15020/metrics |
	awk -v m="$1" -v l="$2" 'index($0, m "{") == 1 && index($0, l) {s += $NF} END {print s + 0}'; }

log "lab up"
"$LAB" up "$ROOT/tests/e2e/data/dns.yaml" --name "$NAME" > /dev/null || fail "lab up"

log "1. capture: port 53 goes to the pod's DNS proxy (mark 0x539 excluded), not the upstream"
px shop/client iptables-save -t nat | grep -q -- '--dport 53 .*--to-ports 15053' || fail "no DNS REDIRECT rule"
px shop/client iptables-save -t raw | grep -q 'CT --zone 1' || fail "no conntrack zone rule"
out=$(px shop/client dig +time=3 +tries=1 echo.shop.svc.cluster.local)
grep -q "10.96.0.40" <<<"$out" || fail "Service name not answered through the capture: $out"
grep -q "flags: qr aa" <<<"$out" || fail "answer did not come from the proxy (not authoritative): $out"

log "2. search paths: short names in the pod's namespace, name.namespace elsewhere"
expect_name shop/client echo 10.96.0.40
expect_name shop/client echo.other 10.96.0.41
expect_name shop/client echo.other.svc 10.96.0.41
expect_name shop/client erp 10.96.0.42

log "3. names outside the mesh go to the underlay server from inside the pod"
grep -q "status: NXDOMAIN" <<<"$(px shop/client dig +time=3 +tries=1 nope.example.com)" ||
	fail "NXDOMAIN not passed through"
[ "$(metric istio_dns_upstream_requests_total 'request_query_type="a"')" -ge 1 ] || fail "no upstream request counted"
[ "$(metric istio_dns_upstream_failures_total 'request_query_type')" = 0 ] || fail "upstream failures"

log "4. ServiceEntry (resolution DNS): egress to api.example.com through ztunnel"
vip=$(resolve shop/client api.example.com)
[[ $vip == 240.240.* ]] || fail "api.example.com: got '$vip', want an auto-allocated VIP"
out=$(client shop/client --connect "$vip:8080" --bytes 8192) || fail "egress to api.example.com: $out"
zlog | grep 'direction=outbound' | grep -q 'dst.addr=10.76.0.3:8080' || fail "egress not logged to the resolved address"
[ "$(metric istio_on_demand_dns_total 'hostname="api.example.com"')" -ge 1 ] || fail "istio_on_demand_dns_total"

log "5. WorkloadEntry: the VM behind Service erp"
out=$(client shop/client --connect 10.96.0.42:80 --bytes 8192) || fail "to the VM: $out"
zlog | grep 'direction=outbound' | grep 'dst.addr=10.244.1.60:8080' | grep -q 'dst.workload=vm-1' ||
	fail "VM connection not logged with the WorkloadEntry"

log "6. every query counted"
[ "$(metric istio_dns_requests_total 'source_canonical_service="client"')" -ge 6 ] || fail "istio_dns_requests_total"

log "7. lab down leaves nothing behind"
"$LAB" down --name "$NAME" > /dev/null
! ip netns list | grep -q "^$NAME-" || fail "namespaces left"
! ls -d /etc/netns/"$NAME"-* > /dev/null 2>&1 || fail "resolv.conf files left"
trap - EXIT
log "dns_lab: all checks passed"
