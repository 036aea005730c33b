#!/usr/bin/env bash
# fake-istiod over loopback, driven by the protocol library's gRPC client (xds_probe):
#  CA: an allowed impersonated CSR gives a chain `openssl verify` accepts with the SPIFFE SAN;
#      a pod on another node, an untrusted caller, an expired and a foreign token are refused.
#  ADS: a stream gets every resource `fake-istiod check` lists; editing the manifest pushes only
#      the difference; a reconnect with initial_resource_versions gets only what changed; a
#      broken manifest keeps the last good state; bad flags and manifests give one clear error.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${BUILD_DIR:-build}/bin
probe=${BUILD_DIR:-build}/tests/xds_probe
dir=$(mktemp -d)
pid=
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- server log:"; tail -n 40 "$dir/server.err" || true; exit 1; }

cp tests/data/mesh/sample.yaml "$dir/mesh.yaml"
cp tests/data/mesh/sample.addrs "$dir/mesh.addrs"

echo "== bad invocations are refused with one clear error"
out=$("$bin/fake-istiod" serve --config "$dir/mesh.yaml" 2>&1) && fail "serve without --ca-dir ran"
grep -q "serve needs --ca-dir DIR" <<<"$out" || fail "no --ca-dir message: $out"
out=$("$bin/fake-istiod" serve --bogus 2>&1) && fail "unknown flag accepted"
grep -q "unknown or incomplete option --bogus" <<<"$out" || fail "unknown flag message: $out"
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - ports: [{containerPort: http}]\n' > "$dir/bad.yaml"
out=$("$bin/fake-istiod" check --config "$dir/bad.yaml" 2>&1) && fail "bad manifest accepted"
grep -q "bad.yaml:.*Pod default/x: spec.containers\[0\].ports\[0\].containerPort" <<<"$out" ||
	fail "bad manifest message: $out"

echo "== input bounds are flags, listed by --help, named when exceeded"
help=$("$bin/fake-istiod" --help)
grep -q -- "--max-yaml-bytes SIZE" <<<"$help" && grep -q -- "--max-yaml-nodes N" <<<"$help" ||
	fail "--help does not list the YAML bounds: $help"
out=$("$bin/fake-istiod" check --config "$dir/mesh.yaml" --max-yaml-bytes 10 2>&1) &&
	fail "--max-yaml-bytes 10 accepted"
grep -q -- "--max-yaml-bytes 10: expected a size from 1KiB to 64GiB" <<<"$out" || fail "bytes flag: $out"
out=$("$bin/fake-istiod" check --config "$dir/mesh.yaml" --max-yaml-nodes 12abc 2>&1) &&
	fail "--max-yaml-nodes 12abc accepted"
grep -q -- "--max-yaml-nodes 12abc: expected a number" <<<"$out" || fail "nodes flag: $out"
out=$("$bin/fake-istiod" check --config "$dir/mesh.yaml" --max-yaml-bytes 4KiB 2>&1) &&
	fail "a manifest over --max-yaml-bytes accepted"
grep -q "mesh.yaml: larger than 4096 bytes (raise with --max-yaml-bytes)" <<<"$out" ||
	fail "over --max-yaml-bytes: $out"
out=$("$bin/fake-istiod" check --config "$dir/mesh.yaml" --max-yaml-nodes 40 2>&1) &&
	fail "a document over --max-yaml-nodes accepted"
grep -q "mesh.yaml:[0-9]*:[0-9]*: more than 40 nodes in one document (raise with --max-yaml-nodes)" <<<"$out" ||
	fail "over --max-yaml-nodes: $out"
"$bin/fake-istiod" check --config "$dir/mesh.yaml" --addresses "$dir/mesh.addrs" \
	--max-yaml-bytes 1MiB --max-yaml-nodes 2000 > /dev/null 2>&1 || fail "raised bounds refused"

echo "== check prints what would be served"
"$bin/fake-istiod" check --config "$dir/mesh.yaml" --addresses "$dir/mesh.addrs" --format json \
	> "$dir/check.json" 2>/dev/null
n_addr=$(jq '.addresses | length' "$dir/check.json")
n_authz=$(jq '.authorizations | length' "$dir/check.json")
[ "$n_addr" -ge 5 ] && [ "$n_authz" -ge 2 ] || fail "check listed $n_addr addresses, $n_authz policies"
jq -e '.addresses[] | select(.name == "Kubernetes//Pod/default/sleep") | .resource.workload.node == "node-1"' \
	"$dir/check.json" > /dev/null || fail "sleep workload missing from check output"

echo "== inventory lists nodes and every pod, in the mesh or not"
inv=$("$bin/fake-istiod" inventory --config "$dir/mesh.yaml" --addresses "$dir/mesh.addrs" 2>/dev/null)
jq -e '.nodes == ["node-1", "node-2"]' <<<"$inv" > /dev/null || fail "inventory nodes: $inv"
jq -e '[.pods[] | select(.name == "web-0")][0] | .ips == ["10.244.1.12", "fd00::c"] and
	.inMesh and .node == "node-1" and .serviceAccount == "web"' <<<"$inv" > /dev/null ||
	fail "inventory web-0: $inv"
jq -e '[.pods[] | select(.name == "old")][0].inMesh == false' <<<"$inv" > /dev/null ||
	fail "inventory: a pod outside the mesh shown in it"

echo "== serve"
"$bin/fake-istiod" serve --config "$dir/mesh.yaml" --addresses "$dir/mesh.addrs" \
	--listen 127.0.0.1:0 --ca-dir "$dir/ca" --cert-ttl 2h > "$dir/server.out" 2> "$dir/server.err" &
pid=$!
addr=
for _ in $(seq 100); do
	addr=$(awk '/^listening / {print $2; exit}' "$dir/server.out" 2>/dev/null || true)
	[ -z "$addr" ] || break
	kill -0 "$pid" 2>/dev/null || fail "server exited"
	sleep 0.05
done
[ -n "$addr" ] || fail "server did not start"
[ "$(stat -c %a "$dir/ca/root-key.pem")" = 600 ] || fail "root key mode is not 0600"
conn=(--addr "$addr" --roots "$dir/ca/root-cert.pem" --host istiod.istio-system.svc)
ztoken=$("$bin/fake-istiod" token --ca-dir "$dir/ca" --node node-1 --namespace istio-system \
	--service-account ztunnel)

echo "== CA: impersonated CSR for a pod on the caller's node"
out=$("$probe" "${conn[@]}" --token "$ztoken" csr --identity spiffe://cluster.local/ns/default/sa/sleep \
	--impersonate --ttl 7200 --out "$dir") || fail "CSR refused: $out"
grep -q "status OK elements=2" <<<"$out" || fail "unexpected answer: $out"
openssl x509 -in "$dir/chain.pem" -out "$dir/leaf.pem"
openssl verify -CAfile "$dir/root.pem" "$dir/leaf.pem" | grep -q ": OK" || fail "openssl verify"
openssl x509 -in "$dir/leaf.pem" -noout -ext subjectAltName |
	grep -q "URI:spiffe://cluster.local/ns/default/sa/sleep" || fail "SPIFFE SAN missing"
openssl x509 -in "$dir/leaf.pem" -noout -ext extendedKeyUsage | grep -q "TLS Web Client Authentication" ||
	fail "clientAuth EKU missing"
cmp -s "$dir/root.pem" "$dir/ca/root-cert.pem" || fail "chain does not end with the root"

echo "== CA: refusals"
expect_refused() { # code, message part, probe args...
	local code=$1 part=$2; shift 2
	local out
	out=$("$probe" "${conn[@]}" "$@" --out "$dir" 2>&1) && fail "accepted: $*"
	grep -q "status $code: .*$part" <<<"$out" || fail "expected $code ($part), got: $out"
}
expect_refused PERMISSION_DENIED "no pod of default/echo runs on node node-1" \
	--token "$ztoken" csr --identity spiffe://cluster.local/ns/default/sa/echo --impersonate
sleeptoken=$("$bin/fake-istiod" token --ca-dir "$dir/ca" --node node-1 --namespace default \
	--service-account sleep)
expect_refused PERMISSION_DENIED "not a trusted node account" \
	--token "$sleeptoken" csr --identity spiffe://cluster.local/ns/default/sa/web --impersonate
expired=$("$bin/fake-istiod" token --ca-dir "$dir/ca" --node node-1 --namespace istio-system \
	--service-account ztunnel --ttl 1s)
sleep 2
expect_refused UNAUTHENTICATED "expired" \
	--token "$expired" csr --identity spiffe://cluster.local/ns/default/sa/sleep --impersonate
foreign=$("$bin/fake-istiod" token --ca-dir "$dir/other-ca" --node node-1 --namespace istio-system \
	--service-account ztunnel)
expect_refused UNAUTHENTICATED "signature" \
	--token "$foreign" csr --identity spiffe://cluster.local/ns/default/sa/sleep --impersonate
expect_refused UNAUTHENTICATED "missing authorization" \
	csr --identity spiffe://cluster.local/ns/default/sa/sleep --impersonate
# Its own identity, no impersonation: allowed.
"$probe" "${conn[@]}" --token "$sleeptoken" csr --identity spiffe://cluster.local/ns/default/sa/sleep \
	--out "$dir" | grep -q "status OK" || fail "own-identity CSR refused"

echo "== ADS: initial sync has every resource"
"$probe" "${conn[@]}" --token "$ztoken" ads --responses 2 > "$dir/sync.jsonl" ||
	fail "ADS stream failed"
got_addr=$(jq -s '[.[] | select(.type == "address") | .resources | length] | add' "$dir/sync.jsonl")
got_authz=$(jq -s '[.[] | select(.type == "authorization") | .resources | length] | add' "$dir/sync.jsonl")
[ "$got_addr" = "$n_addr" ] || fail "stream had $got_addr addresses, check lists $n_addr"
[ "$got_authz" = "$n_authz" ] || fail "stream had $got_authz policies, check lists $n_authz"
jq -r -s '.[] | .type as $t | .resources | to_entries[] | "--initial-\($t) \(.key)=\(.value)"' \
	"$dir/sync.jsonl" > "$dir/versions"

echo "== ADS: an edit pushes only the difference"
"$probe" "${conn[@]}" --token "$ztoken" ads --responses 3 --timeout 20 > "$dir/push.jsonl" &
ppid=$!
for _ in $(seq 100); do [ "$(wc -l < "$dir/push.jsonl")" -ge 2 ] && break; sleep 0.05; done
# One atomic edit: relabel one pod (its workload changes) and delete another (removed).
python3 - "$dir/mesh.yaml" "$dir/mesh.new" <<'EOF'
import sys
docs = open(sys.argv[1]).read().split("\n---\n")
docs = [d for d in docs if not ("kind: Pod" in d and "name: web-0" in d)]
docs = [d.replace("    app: sleep\n", "    app: sleep\n    version: v2\n", 1) for d in docs]
open(sys.argv[2], "w").write("\n---\n".join(docs))
EOF
mv "$dir/mesh.new" "$dir/mesh.yaml"
wait "$ppid" || fail "push not received"
push=$(sed -n 3p "$dir/push.jsonl")
echo "push: $push"
[ "$(jq '.resources | length' <<<"$push")" = 1 ] || fail "push carried more than the changed workload"
jq -e '.resources | has("Kubernetes//Pod/default/sleep")' <<<"$push" > /dev/null || fail "sleep not pushed"
jq -e '.removed == ["Kubernetes//Pod/shop/web-0"]' <<<"$push" > /dev/null || fail "web-0 not removed"

echo "== ADS: reconnect with initial_resource_versions gets only what changed"
initial=()
while read -r flag entry; do initial+=("$flag" "$entry"); done < "$dir/versions"
"$probe" "${conn[@]}" --token "$ztoken" "${initial[@]}" ads --responses 2 > "$dir/resume.jsonl" ||
	fail "resume failed"
changed=$(jq -s '[.[] | .resources | length] | add' "$dir/resume.jsonl")
removed=$(jq -s -c '[.[] | .removed[]]' "$dir/resume.jsonl")
[ "$changed" = 1 ] || fail "resume sent $changed resources, expected 1: $(cat "$dir/resume.jsonl")"
[ "$removed" = '["Kubernetes//Pod/shop/web-0"]' ] || fail "resume removed $removed"

echo "== a broken manifest keeps the last good state"
cp "$dir/mesh.yaml" "$dir/good.yaml"
printf 'kind: Pod\nmetadata: [broken\n' >> "$dir/mesh.yaml"
kill -HUP "$pid"
for _ in $(seq 100); do grep -q "still serving the last good config" "$dir/server.err" && break; sleep 0.05; done
grep -q "still serving the last good config" "$dir/server.err" || fail "broken reload not reported"
"$probe" "${conn[@]}" --token "$ztoken" ads --responses 2 > "$dir/after.jsonl" || fail "stream after bad reload"
after=$(jq -s '[.[] | select(.type == "address") | .resources | length] | add' "$dir/after.jsonl")
[ "$after" = $((n_addr - 1)) ] || fail "after a broken reload: $after addresses, expected $((n_addr - 1))"
kill -0 "$pid" || fail "server died"

echo "== a NACK is logged with the client's reason"
"$probe" "${conn[@]}" --token "$ztoken" --nack Kubernetes//Pod/default/sleep ads --responses 2 \
	> /dev/null || fail "nack stream"
for _ in $(seq 50); do grep -q "NACK from node" "$dir/server.err" && break; sleep 0.05; done
grep -q "NACK from node ztunnel~.*Kubernetes//Pod/default/sleep: rejected by the probe" "$dir/server.err" ||
	fail "NACK not logged"

kill -TERM "$pid"
wait "$pid" || fail "server exit status $?"
pid=
echo "PASS"
