#!/usr/bin/env bash
# lab graph [--name NAME] [--out FILE.svg|FILE.png|FILE.dot]: draws a running lab with
# graphviz: nodes, pods (meshed or not), ztunnels, waypoints, fake-istiod, Service VIPs and the
# HBONE connections (live ones bold) with their identities and bytes. Reads the lab's state and,
# per node, its ztunnel's /config_dump (admin, localhost:15000) and /metrics (15020) from inside
# the node's namespace; graph.py turns them into DOT. Invariant: read-only, the lab is unchanged.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
DIE_PREFIX="lab graph"
NAME=lab out=
while [ $# -gt 0 ]; do
	case $1 in
	--name | --out) [ $# -ge 2 ] || die "$1 needs a value"
		if [ "$1" = --name ]; then NAME=$2; else out=$2; fi; shift 2 ;;
	*) die "unknown argument $1 (usage: lab graph [--name NAME] [--out FILE.svg|.png|.dot])" ;;
	esac
done
out=${out:-lab-$NAME.svg}
case $out in
*.svg) fmt=svg ;; *.png) fmt=png ;; *.dot) fmt=dot ;;
*) die "--out $out: name an .svg, .png or .dot file" ;;
esac
command -v dot > /dev/null || die "needs graphviz (dot): run scripts/deps.sh"
STATE=/run/netns-lab/$NAME
[ -f "$STATE/inventory.json" ] || die "lab $NAME is not up"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in $(jq -r '(.nodes + [.pods[].node // "node-1"]) | unique | .[]' "$STATE/inventory.json"); do
	# After lab upgrade the current ztunnel answers on the second port set (+100).
	off=$(($(cat "$STATE/$n/ready-port" 2>/dev/null || echo 15021) - 15021))
	ip netns exec "$NAME-n-$n" curl -sf --max-time 3 "127.0.0.1:$((15000 + off))/config_dump" \
		> "$tmp/$n.config.json" 2>/dev/null || rm -f "$tmp/$n.config.json"
	ip netns exec "$NAME-n-$n" curl -sf --max-time 3 "127.0.0.1:$((15020 + off))/metrics" \
		> "$tmp/$n.metrics" 2>/dev/null || rm -f "$tmp/$n.metrics"
done
python3 "$HERE/graph.py" "$STATE" "$tmp" > "$tmp/lab.dot"
if [ "$fmt" = dot ]; then cp "$tmp/lab.dot" "$out"; else dot -T"$fmt" -o "$out" "$tmp/lab.dot"; fi
echo "$out"
