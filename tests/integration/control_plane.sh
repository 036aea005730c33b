#!/usr/bin/env bash
# ztunnel's control plane against fake-istiod over loopback:
#  readiness 500 while istiod and the node agent are away, 200 once xDS synced, local
#  certificates arrived and a stand-in node agent sent its (empty) ZDS snapshot;
#  /config_dump matches what fake-istiod serves; an update and a removal arrive; a restart of
#  fake-istiod resumes with initial_resource_versions; a bad resource is NACKed while the rest
#  applies; 20 s certificates rotate at about 10 s; with the CA gone the valid certificate
#  keeps serving while retries back off.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(cd "${BUILD_DIR:-build}/bin" && pwd)
dir=$(mktemp -d)
istiod= zt= cni=
cleanup() {
	for p in $istiod $zt $cni; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	echo "--- ztunnel:"; tail -n 30 "$dir/zt.err" 2>/dev/null || true
	echo "--- fake-istiod:"; tail -n 20 "$dir/istiod.err" 2>/dev/null || true
	exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_for SECONDS COMMAND...: polls every 0.2 s.
wait_for() {
	local n=$(($1 * 5)); shift
	for _ in $(seq "$n"); do "$@" > /dev/null 2>&1 && return 0; sleep 0.2; done
	return 1
}

cp tests/data/mesh/sample.yaml "$dir/mesh.yaml"
cp tests/data/mesh/sample.addrs "$dir/mesh.addrs"
xport=$(free_port) admin=$(free_port) ready=$(free_port) stats=$(free_port)
start_istiod() {
	"$bin/fake-istiod" serve --config "$dir/mesh.yaml" --addresses "$dir/mesh.addrs" \
		--listen "127.0.0.1:$xport" --ca-dir "$dir/ca" --cert-ttl 1h --min-cert-ttl 10s "$@" \
		> "$dir/istiod.out" 2>> "$dir/istiod.err" &
	istiod=$!
	wait_for 10 grep -q '^listening' "$dir/istiod.out" || fail "fake-istiod did not start"
}
stop_istiod() { kill "$istiod"; wait "$istiod" 2>/dev/null || true; istiod=; }
# A node agent with no pods (spec §5): reports ztunnel's hello, sends SnapshotSent, reports
# the Ack, then holds each connection until ztunnel closes it.
start_cni() {
	python3 - "$dir/zds.sock" > "$dir/cni.out" 2>&1 <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1])
s.listen(5)
while True:
    c, _ = s.accept()
    hello = c.recv(1024)
    c.send(b"\x1a\x00")  # WorkloadRequest{snapshot_sent: {}}
    ack = c.recv(1024)
    print("hello", hello.hex(), "ack", ack.hex(), flush=True)
    while c.recv(1024):
        pass
    c.close()
EOF
	cni=$!
}
dump() { curl -sf "127.0.0.1:$admin/config_dump"; }
readiness() { curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$ready/healthz/ready"; }
is_ready() { [ "$(readiness)" = 200 ]; }
cert_of() { dump | jq -r --arg id "$1" '.certificateManager[] | select(.identity == $id)'; }

# The CA root must exist before ztunnel reads XDS_ROOT_CA: start once, then stop.
start_istiod
stop_istiod
"$bin/fake-istiod" token --ca-dir "$dir/ca" --node node-1 --namespace istio-system \
	--service-account ztunnel > "$dir/token"

echo "== ztunnel starts with istiod away: not ready"
(cd "$dir" && exec env XDS_ADDRESS="https://127.0.0.1:$xport" CA_ADDRESS="https://127.0.0.1:$xport" \
	XDS_ROOT_CA="$dir/ca/root-cert.pem" CA_ROOT_CA="$dir/ca/root-cert.pem" \
	AUTH_TOKEN="$dir/token" NODE_NAME=node-1 POD_NAME=ztunnel-node-1 \
	POD_NAMESPACE=istio-system SERVICE_ACCOUNT=ztunnel SECRET_TTL=20s \
	ADMIN_ADDR="127.0.0.1:$admin" READINESS_ADDR="127.0.0.1:$ready" \
	STATS_ADDR="127.0.0.1:$stats" INPOD_UDS="$dir/zds.sock" RUST_LOG=info,cert=debug \
	"$bin/ztunnel" > "$dir/zt.out" 2> "$dir/zt.err") &
zt=$!
wait_for 10 curl -sf "127.0.0.1:$admin/config_dump" || fail "admin did not come up"
[ "$(readiness)" = 500 ] || fail "ready without istiod"
curl -s "127.0.0.1:$ready/healthz/ready" | grep -q "pending: state manager" ||
	fail "readiness does not name the state manager"
curl -s "127.0.0.1:$ready/healthz/ready" | grep -q "workload proxy manager" ||
	fail "readiness does not name the workload proxy manager"

echo "== the node agent comes up: hello V1, empty snapshot acknowledged"
start_cni
wait_for 10 grep -q "^hello" "$dir/cni.out" || fail "no ZDS exchange: $(cat "$dir/cni.out")"
grep -q "^hello 0801 ack 0a00$" "$dir/cni.out" || fail "ZDS exchange: $(cat "$dir/cni.out")"
dump | jq -e '.zds.state == "connected" and .zds.snapshotReceived and .workloadState == {}' \
	> /dev/null || fail "ZDS state: $(dump | jq -c .zds)"

echo "== istiod comes up: synced, certificates fetched, ready"
start_istiod
wait_for 15 is_ready || fail "never became ready: $(curl -s "127.0.0.1:$ready/healthz/ready")"
"$bin/fake-istiod" check --config "$dir/mesh.yaml" --addresses "$dir/mesh.addrs" --format json \
	> "$dir/check.json" 2>/dev/null
want_w=$(jq -c '[.addresses[] | select(.resource.workload) | .name] | sort' "$dir/check.json")
want_s=$(jq -c '[.addresses[] | select(.resource.service) | .name] | sort' "$dir/check.json")
want_p=$(jq -c '[.authorizations[].name] | sort' "$dir/check.json")
dump > "$dir/dump.json"
got_w=$(jq -c '[.workloads[].uid] | sort' "$dir/dump.json")
got_s=$(jq -c '[.services[] | "\(.namespace)/\(.hostname)"] | sort' "$dir/dump.json")
got_p=$(jq -c '[.policies[] | "\(.namespace)/\(.name)"] | sort' "$dir/dump.json")
[ "$got_w" = "$want_w" ] || fail "workloads differ: $got_w vs $want_w"
[ "$got_s" = "$want_s" ] || fail "services differ: $got_s vs $want_s"
[ "$got_p" = "$want_p" ] || fail "policies differ: $got_p vs $want_p"
jq -e '[.certificateManager[] | select(.state == "available") | .identity] | sort ==
	["spiffe://cluster.local/ns/default/sa/sleep", "spiffe://cluster.local/ns/shop/sa/web"]' \
	"$dir/dump.json" > /dev/null || fail "local certificates: $(jq -c .certificateManager "$dir/dump.json")"
# The reference's shape (spec §17): sorted by identity, PEM as base64, decimal serials.
jq -e '[.certificates[].identity] == ["spiffe://cluster.local/ns/default/sa/sleep",
	"spiffe://cluster.local/ns/shop/sa/web"] and
	([.certificates[] | .state] | unique) == ["Available"] and
	([.certificates[] | (.certChain | length) >= 1 and (.rootCerts | length) >= 1] | all) and
	(.certificates[0].certChain[0] | (.serialNumber | test("^[0-9]+$")) and
	 (.validFrom | test("^[0-9-]+T[0-9:]+Z$")) and (.expirationTime | test("Z$")))' \
	"$dir/dump.json" > /dev/null || fail "certificates shape: $(jq -c '.certificates[0]' "$dir/dump.json")"
jq -r '.certificates[0].certChain[0].pem' "$dir/dump.json" | base64 -d | openssl x509 -noout -text |
	grep -q 'URI:spiffe://cluster.local/ns/default/sa/sleep' || fail "certChain pem is not the leaf"
[ "$(jq -r '.certificates[0].certChain[0].serialNumber' "$dir/dump.json")" = \
	"$(jq -r '.certificates[0].certChain[0].pem' "$dir/dump.json" | base64 -d | openssl x509 -noout -serial |
		sed 's/serial=//' | python3 -c 'import sys; print(int(sys.stdin.read().strip(), 16))')" ] ||
	fail "serialNumber is not the decimal serial"

echo "== an update and a removal arrive"
python3 - "$dir/mesh.yaml" "$dir/mesh.new" <<'EOF'
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
docs = [d for d in docs if not ("kind: Pod" in d and "name: web-0" in d)]
docs = [d.replace("    app: sleep\n", "    app: sleep\n    version: v2\n", 1) for d in docs]
open(sys.argv[2], "w").write("\n---\n".join(docs))
EOF
mv "$dir/mesh.new" "$dir/mesh.yaml"
updated() {
	dump | jq -e '([.workloads[] | select(.uid == "Kubernetes//Pod/default/sleep") |
		.canonicalRevision] == ["v2"]) and
		([.workloads[] | select(.uid == "Kubernetes//Pod/shop/web-0")] == [])'
}
wait_for 10 updated || fail "update/removal not applied"
# web-0 was the last local workload of shop/web: its certificate is forgotten.
wait_for 5 sh -c "! curl -sf 127.0.0.1:$admin/config_dump | grep -q 'ns/shop/sa/web'" ||
	fail "certificate of a removed identity still held"

echo "== fake-istiod restarts: ztunnel resumes with initial_resource_versions"
stop_istiod
sleep 0.5
start_istiod
wait_for 15 grep -q "Address, holding [1-9][0-9]* resources" "$dir/istiod.err" ||
	fail "reconnect did not send initial_resource_versions"
wait_for 10 sh -c "curl -sf 127.0.0.1:$admin/config_dump | jq -e '.xds.connects >= 2'" ||
	fail "xDS client did not reconnect: $(dump | jq -c .xds)"
is_ready || fail "not ready after the restart"

echo "== a bad resource is NACKed while the rest applies"
stop_istiod
start_istiod --fault bad-resource=bogus
wait_for 15 grep -q "NACK from node ztunnel~.*bogus" "$dir/istiod.err" || fail "no NACK for bogus"
"$bin/fake-istiod" check --config "$dir/mesh.yaml" --addresses "$dir/mesh.addrs" --format json \
	2>/dev/null | jq -c '[.addresses[] | select(.resource.workload) | .name] | sort' > "$dir/want"
[ "$(dump | jq -c '[.workloads[].uid] | sort')" = "$(cat "$dir/want")" ] ||
	fail "workloads after NACK: $(dump | jq -c '[.workloads[].uid]')"
dump | jq -e '.xds.nacks >= 1' > /dev/null || fail "NACK not counted"
dump | jq -e '[.workloads[].uid] | index("bogus") == null' > /dev/null || fail "bogus applied"

echo "== 20 s certificates rotate at about half-life without losing readiness"
id=spiffe://cluster.local/ns/default/sa/sleep
s1=$(cert_of "$id" | jq -r .serial)
b1=$(date -d "$(cert_of "$id" | jq -r .notBefore)" +%s)
rotated() { [ "$(cert_of "$id" | jq -r .serial)" != "$s1" ]; }
for _ in $(seq 100); do rotated && break; is_ready || fail "readiness lost before rotation"; sleep 0.2; done
rotated || fail "certificate did not rotate within 20 s"
b2=$(date -d "$(cert_of "$id" | jq -r .notBefore)" +%s)
gap=$((b2 - b1))
echo "rotation after $gap s"
[ "$gap" -ge 7 ] && [ "$gap" -le 13 ] || fail "rotated after $gap s, expected about 10"
is_ready || fail "not ready after rotation"

echo "== CA stopped: the valid certificate keeps serving, retries back off"
stop_istiod
s2=$(cert_of "$id" | jq -r .serial)
wait_for 15 sh -c "curl -sf 127.0.0.1:$admin/config_dump | jq -e '.certificateManager[] |
	select(.identity == \"$id\" and .state == \"failed-retrying\" and .failures >= 3)'" ||
	fail "no retries: $(cert_of "$id")"
[ "$(cert_of "$id" | jq -r .serial)" = "$s2" ] || fail "serial changed without a CA"
[ "$(date -d "$(cert_of "$id" | jq -r .notAfter)" +%s)" -gt "$(date +%s)" ] ||
	fail "certificate already expired"
is_ready || fail "readiness lost while the certificate is still valid"
grep "$id: certificate request failed" "$dir/zt.err" | sed -n 's/.*retrying in \([0-9]*\) ms.*/\1/p' \
	> "$dir/delays"
echo "retry delays (ms): $(tr '\n' ' ' < "$dir/delays")"
first=$(head -1 "$dir/delays") last=$(tail -1 "$dir/delays")
[ "$(wc -l < "$dir/delays")" -ge 3 ] && [ "$last" -gt $((first * 2)) ] ||
	fail "backoff did not grow"

kill -TERM "$zt"
wait "$zt" || fail "ztunnel exit status $?"
zt=
echo PASS
