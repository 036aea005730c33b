#!/usr/bin/env bash
# The data plane's cost, measured in network namespaces (root): the same sim-workload traffic
# once directly between two uncaptured pods (baseline) and once captured by a ztunnel at each
# end and carried over HBONE (mutual TLS, HTTP/2), side by side in one run. Not part of
# `make test`.
#   bench/dataplane.sh [MIB per bulk transfer, default 1024]
# Prints throughput (bulk, one connection), request latency (1 connection, 64-byte round
# trips), connection rate (short connections), and ztunnel's resident memory.
export BUILD_DIR=${BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build}
make --no-print-directory -C "$(dirname "$0")/.." -j2 >/dev/null
source "$(dirname "$0")/../tests/e2e/lib/harness.sh"

mib=${1:-1024}
cp "$ROOT/tests/e2e/data/mesh.yaml" "$WORK/mesh.yaml"
lab_underlay
lab_pod client 10.77.0.11
lab_pod server-4 10.77.0.24
lab_pod raw 10.77.0.61
lab_pod plain 10.77.0.41
lab_istiod "$WORK/mesh.yaml"
lab_capture client
lab_capture server-4
lab_ztunnel client node-a default client RUST_LOG=warn
lab_ztunnel server-4 node-b default server RUST_LOG=warn
lab_server server-4 8080
lab_server plain 8080
lab_wait_ready client
lab_wait_ready server-4

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
run() { # POD TARGET ARGS...: prints the client's JSON
	local pod=$1 target=$2; shift 2
	lab_client "$pod" --connect "$target" --timeout 30s "$@" || fail "client $pod -> $target"
}
row() { printf '%-34s %14s %14s\n' "$@"; }

echo "kernel $(uname -r), $(nproc) CPUs; baseline = direct TCP, mesh = ztunnel -> HBONE -> ztunnel"
rss0=$(rss "$ZT_PID_client")
b=$(run raw 10.77.0.41:8080 --bytes "${mib}MiB")
m=$(run client 10.77.0.24:8080 --bytes "${mib}MiB")
row "" baseline mesh
row "bulk ${mib} MiB echo, MB/s (both ways)" "$(jq .throughput_mbps <<<"$b")" "$(jq .throughput_mbps <<<"$m")"
b=$(run raw 10.77.0.41:8080 --requests 20000 --size 64)
m=$(run client 10.77.0.24:8080 --requests 20000 --size 64)
for p in p50 p99; do
	row "64 B round trip $p, us" "$(jq ".latency_us.$p" <<<"$b")" "$(jq ".latency_us.$p" <<<"$m")"
done
b=$(run raw 10.77.0.41:8080 --connections 2000 --concurrency 50 --bytes 64)
m=$(run client 10.77.0.24:8080 --connections 2000 --concurrency 50 --bytes 64)
rate() { jq '(.connections / (.duration_ms / 1000)) | floor' <<<"$1"; }
row "2000 short connections, conn/s" "$(rate "$b")" "$(rate "$m")"
row "ztunnel RSS idle / after, KiB" "-" "$rss0 / $(rss "$ZT_PID_client")"
lab_finish
