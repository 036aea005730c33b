#!/usr/bin/env bash
# Worker threads (ZTUNNEL_WORKER_THREADS): with 2, ztunnel runs 2 data-plane threads whose
# listeners share port 15001 through SO_REUSEPORT, and the kernel spreads 64 connections over
# both (each worker's accept count in /config_dump is above 0, the sum is 64); with 1, one
# worker takes them all. Each run is in a private network namespace (unshare), so the fixed
# ports collide with nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
zt=$(cd "${BUILD_DIR:-build}/bin" && pwd)/ztunnel
fail() { echo "FAIL: $*"; exit 1; }

if [ "${1:-}" != inside ]; then
	if [ "$(id -u)" = 0 ]; then ns=(unshare -n); else ns=(unshare -rn); fi
	"${ns[@]}" true 2>/dev/null || { echo "SKIP: cannot make a network namespace (unshare)"; exit 0; }
	for n in 2 1; do "${ns[@]}" "$0" inside "$n"; done
	echo PASS
	exit 0
fi

n=$2
dir=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
ip link set lo up
env -i PATH="$PATH" XDS_ADDRESS= LOCAL_XDS_PATH=tests/data/local/ztunnel-local.yaml \
	FAKE_CA=true PROXY_MODE=dedicated PROXY_WORKLOAD_INFO=default/local/local \
	ADMIN_ADDR=127.0.0.1:15000 READINESS_ADDR=127.0.0.1:15021 STATS_ADDR=127.0.0.1:15020 \
	ZTUNNEL_WORKER_THREADS="$n" "$zt" proxy ztunnel > "$dir/out" 2> "$dir/err" &
pid=$!
for _ in $(seq 100); do curl -sf 127.0.0.1:15021/healthz/ready > /dev/null && break; sleep 0.1; done
curl -sf 127.0.0.1:15021/healthz/ready > /dev/null || fail "not ready: $(tail -3 "$dir/err")"
grep -q "data plane: $n worker threads" "$dir/err" || fail "no worker line: $(head -5 "$dir/err")"

# Each connection is accepted by one worker, then closed (no original destination here).
for _ in $(seq 64); do
	exec 3<>/dev/tcp/127.0.0.1/15001 && exec 3>&-
done
dump() { curl -sf 127.0.0.1:15000/config_dump | jq -c '.workloadProxies[0].workers | map(.outboundAccepted)'; }
for _ in $(seq 100); do [ "$(dump | jq add)" = 64 ] && break; sleep 0.1; done
counts=$(dump)
echo "ZTUNNEL_WORKER_THREADS=$n: accepted per worker $counts"
jq -e --argjson n "$n" 'length == $n and add == 64 and all(. > 0)' <<<"$counts" > /dev/null ||
	fail "64 connections over $n workers: $counts"
# The summed metrics still render once per family.
[ "$(curl -sf 127.0.0.1:15020/metrics | grep -c '^# TYPE istio_tcp_connections_opened_total ')" = 1 ] ||
	fail "metrics: istio_tcp_connections_opened_total not listed exactly once"
kill -TERM "$pid"
r=0; wait "$pid" || r=$?; pid=
[ "$r" = 0 ] || fail "exit status $r after SIGTERM: $(tail -3 "$dir/err")"
