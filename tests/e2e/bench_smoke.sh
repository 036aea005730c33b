#!/usr/bin/env bash
# bench/dataplane.sh --smoke: every step of the data plane benchmark at the smallest sizes
# (direct TCP, the stunnel and HAProxy pairs when installed, the ztunnel pair, concurrent
# tunnels, idle connections, a worker-thread restart), then its JSON must hold a figure for
# each: the script keeps working without making `make test` slow.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
SKIP_BUILD=1 bench/dataplane.sh --smoke --out "$out"
jq -e '(.paths.direct.bulk_mbps > 0) and (.paths.ztunnel.bulk_mbps > 0) and
	(.paths.ztunnel.cpu_s_per_gib != null) and (.paths.ztunnel.short_conn_per_s > 0) and
	(.many.ztunnel.ok == .many.ztunnel.connections) and (.idle.connections == 20) and
	([.scaling[].bulk_mbps] | length == 2 and all(. > 0))' "$out/dataplane.json" > /dev/null ||
	{ echo "FAIL: incomplete results: $(jq -c . "$out/dataplane.json")"; exit 1; }
for p in stunnel haproxy; do
	if command -v "${p/stunnel/stunnel4}" > /dev/null; then
		jq -e --arg p "$p" '.paths[$p].bulk_mbps > 0' "$out/dataplane.json" > /dev/null ||
			{ echo "FAIL: no $p figures"; exit 1; }
	fi
done
echo ok
