#!/usr/bin/env bash
# fake-istiod keeps serving while it reloads a large mesh: with the sample mesh served, the
# manifest is replaced by a generated 20,000-pod mesh; while the reload thread parses and
# converts it, CA requests and ADS streams are answered (each finished while the reload was
# still running), and afterwards the new mesh is served.
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
fail() { echo "FAIL: $*"; echo "--- server log:"; tail -n 20 "$dir/server.err" || true; exit 1; }
reloading() { [ "$(ls "/proc/$pid/task" | wc -l)" -ge 2 ]; } # the reload thread is alive
# "reloaded after" is logged once the new mesh is in: an answer that completed before it
# was served while the reload ran.
reloaded() { grep -c "reloaded after" "$dir/server.err" || true; }

cp tests/data/mesh/sample.yaml "$dir/mesh.yaml"
"$bin/fake-istiod" generate --pods 20000 --out "$dir/big.yaml" 2> /dev/null || fail "generate"
"$bin/fake-istiod" serve --config "$dir/mesh.yaml" --listen 127.0.0.1:0 --ca-dir "$dir/ca" \
	> "$dir/server.out" 2> "$dir/server.err" &
pid=$!
addr=
for _ in $(seq 200); do
	addr=$(awk '/^listening / {print $2; exit}' "$dir/server.out" 2>/dev/null || true)
	[ -z "$addr" ] || break
	kill -0 "$pid" 2>/dev/null || fail "server exited"
	sleep 0.05
done
[ -n "$addr" ] || fail "server did not start"
conn=(--addr "$addr" --roots "$dir/ca/root-cert.pem" --host istiod.istio-system.svc --timeout 20)
ztoken=$("$bin/fake-istiod" token --ca-dir "$dir/ca" --node node-1 --namespace istio-system \
	--service-account ztunnel)
csr() {
	"$probe" "${conn[@]}" --token "$ztoken" csr --identity spiffe://cluster.local/ns/default/sa/sleep \
		--impersonate --out "$dir" | grep -q "status OK"
}
ads() { "$probe" "${conn[@]}" --token "$ztoken" ads --responses 2 > "$dir/ads.jsonl"; }
csr || fail "CSR before the reload"

echo "== the manifest becomes a 20,000-pod mesh"
mv "$dir/big.yaml" "$dir/mesh.yaml"
# The reload starts 200 ms after the change (editors write in steps): its thread shows up.
for _ in $(seq 50); do reloading && break; sleep 0.02; done
served=0 tries=0
while [ "$(reloaded)" = 0 ] && [ $tries -lt 50 ]; do
	tries=$((tries + 1))
	during=0
	reloading && during=1
	t0=$(date +%s%N)
	# The new mesh has no pod default/sleep: once it is in, the CSR is refused.
	ok=1
	csr && ads || ok=0
	[ $ok = 1 ] || [ "$(reloaded)" != 0 ] || fail "CSR or ADS stream refused during the reload"
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	# Counted when both requests started while the reload thread ran and were answered
	# before the new mesh was in.
	if [ $ok = 1 ] && [ $during = 1 ] && [ "$(reloaded)" = 0 ]; then
		served=$((served + 1))
		echo "   CSR and ADS answered in $ms ms during the reload"
	fi
done
[ $served -ge 1 ] || fail "no CA and ADS answer completed while the reload ran"
for _ in $(seq 600); do [ "$(reloaded)" != 0 ] && break; sleep 0.1; done
[ "$(reloaded)" != 0 ] || fail "the reload did not finish"
ads || fail "ADS stream after the reload"
n=$(jq -s '[.[] | select(.type == "address") | .resources | length] | add' "$dir/ads.jsonl")
[ "$n" -ge 20000 ] || fail "after the reload: $n addresses, expected the 20,000 pods and more"
echo "   after the reload: $n addresses served"
kill -TERM "$pid"
wait "$pid" || fail "server exit status $?"
pid=
echo "PASS"
