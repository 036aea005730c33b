#!/usr/bin/env bash
# The demo: brings up topologies/demo.yaml as a lab, drives traffic between its pods and prints
# one row per flow: path taken, the identity each side saw, the verdict and the bytes. Then
# tears the lab down (KEEP=1 leaves it up and says how to explore it). ZTUNNEL_IMAGE=IMAGE
# runs each node's ztunnel from a container image (make image).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB=$HERE/lab
NAME=${NAME:-demo}
BIN=$(cd "${BUILD_DIR:-$HERE/../build}/bin" && pwd)
logdir=/run/netns-lab/$NAME/logs

cleanup() { [ -n "${KEEP:-}" ] || "$LAB" down --name "$NAME" > /dev/null 2>&1 || true; }
trap cleanup EXIT
"$LAB" down --name "$NAME" > /dev/null 2>&1 || true
# ZTUNNEL_IMAGE=IMAGE: each node's ztunnel from that image, as deploy/'s DaemonSet runs it.
"$LAB" up "$HERE/topologies/demo.yaml" --name "$NAME" ${ZTUNNEL_IMAGE:+--ztunnel-image "$ZTUNNEL_IMAGE"}

ip_of() { awk -v ns="$1" -v p="$2" -F'\t' '$1 == ns && $2 == p {print $4}' "/run/netns-lab/$NAME/pods"; }
# field KEY LINE: a key=value of an access-log line (quoted values may hold spaces).
field() { sed -n "s/.*[[:space:]]$1=\(\"[^\"]*\"\|[^ ]*\).*/\1/p" <<<"$2" | head -1 | tr -d '"'; }

rows=()
unexpected=0
# flow SRC_NS/SRC_POD TARGET LABEL EXPECTED: one client run, then what each ztunnel logged.
flow() {
	local src=$1 target=$2 label=$3 want=$4 n1 n2 out ok bytes path cid sid verdict reason
	n1=$(wc -l < "$logdir/ztunnel-node-1.log")
	n2=$(wc -l < "$logdir/ztunnel-node-2.log")
	out=$("$LAB" exec "$src" --name "$NAME" -- "$BIN/sim-workload" client --connect "$target" \
		--bytes 65536 --connections 4 --timeout 5s 2>/dev/null || true)
	sleep 0.3
	local o i
	o=$(tail -n +$((n1 + 1)) "$logdir/ztunnel-node-1.log" | grep 'access' | grep 'direction=outbound' | tail -1 || true)
	i=$(tail -n +$((n2 + 1)) "$logdir/ztunnel-node-2.log" | grep 'access' | grep 'direction=inbound' | tail -1 || true)
	ok=$(jq -r '.ok // 0' <<<"$out" 2>/dev/null || echo 0)
	bytes=$(jq -r '"\(.bytes_sent // 0) / \(.bytes_received // 0)"' <<<"$out" 2>/dev/null || echo "0 / 0")
	if [ -n "$o" ] && [ "$(field dst.addr "$o" | sed 's/.*://')" = 15008 ]; then
		path="HBONE (mTLS :15008)"
	elif [ -n "$o" ] && [ -n "$(field dst.workload "$o")" ]; then
		path="plain TCP to $(field dst.addr "$o")"
	elif [ -n "$o" ]; then
		path="passthrough (plain TCP)"
	elif [ -n "$i" ]; then
		path="plaintext inbound (:15006)"
	else
		path="direct (no ztunnel)"
	fi
	cid=$(field dst.identity "$o"); cid=${cid:-"-"}
	sid=$(field src.identity "$i")
	[ -n "$sid" ] || { [ -n "$i" ] && sid="(none: plaintext)" || sid="-"; }
	if [ "$ok" -gt 0 ]; then verdict=ALLOW; else verdict=DENY; fi
	reason=$(field error "$i"); reason=${reason:-$(field error "$o")}
	reason=${reason#connection closed due to policy rejection: }
	# A DENY stands only when a ztunnel logged it as a policy decision: a connection that
	# failed for any other reason (a TLS handshake, a timeout) is not the policy's verdict.
	if [ "$verdict" = DENY ] && ! grep -qE 'explicitly denied by|allow policies exist, but none allowed' <<<"$reason"; then
		verdict="FAILED, not by policy"
	fi
	[ "$verdict" = "$want" ] || { unexpected=$((unexpected + 1)); verdict="$verdict (expected $want!)"; }
	rows+=("$label|$path|${cid#spiffe://}|${sid#spiffe://}|$verdict${reason:+ ($reason)}|$bytes")
}

# http_flow SRC_NS/SRC_POD METHOD URL LABEL CODE: one curl through a waypoint; the path, the
# identities and the verdict come from the client's ztunnel, the waypoint and the server's
# ztunnel logs.
http_flow() {
	local src=$1 method=$2 url=$3 label=$4 want=$5 n1 n2 out code size w wl a o i d path cid sid
	local verdict reason from
	n1=$(wc -l < "$logdir/ztunnel-node-1.log")
	n2=$(wc -l < "$logdir/ztunnel-node-2.log")
	declare -A nw
	while IFS=$'\t' read -r w _ wp _ _; do
		nw[$w/$wp]=$(wc -l < "$logdir/waypoint-$w-$wp.log")
	done < "/run/netns-lab/$NAME/waypoints"
	local data=()
	[ "$method" = GET ] || data=(--data-binary 'item=1')
	out=$("$LAB" exec "$src" --name "$NAME" -- curl -s -m 5 -X "$method" "${data[@]}" -o /dev/null \
		-w '%{http_code} %{size_upload} %{size_download}' "$url" 2>/dev/null || true)
	read -r code up size <<<"${out:-000 0 0}"
	# The waypoint logs each request once it has answered it.
	a="" wl=""
	for _ in $(seq 25); do
		for w in "${!nw[@]}"; do
			from=${nw[$w]}
			a=$(tail -n +$((from + 1)) "$logdir/waypoint-${w/\//-}.log" | grep 'session.*access' | tail -1 || true)
			[ -n "$a" ] && { wl=$w; break 2; }
		done
		sleep 0.2
	done
	sleep 0.2
	o=$(tail -n +$((n1 + 1)) "$logdir/ztunnel-node-1.log" | grep 'access' | grep 'direction=outbound' | tail -1 || true)
	i=$(tail -n +$((n2 + 1)) "$logdir/ztunnel-node-2.log" | grep 'access' | grep 'direction=inbound' | tail -1 || true)
	if [ -n "$wl" ]; then
		path="HBONE via waypoint $(awk -v w="$wl" -F'\t' '$1 "/" $3 == w {print $1 "/" $2}' \
			"/run/netns-lab/$NAME/waypoints")"
	else
		path="(no waypoint saw it)"
	fi
	cid=$(field dst.identity "$o"); cid=${cid:-"-"}
	sid=$(field src.identity "$i"); sid=${sid:-"- (stopped at the waypoint)"}
	if [ "${code:0:1}" = 2 ]; then verdict=ALLOW; else verdict=DENY; fi
	reason=""
	if [ "$code" = 403 ] && [ -n "$wl" ]; then
		from=${nw[$wl]}
		d=$(tail -n +$((from + 1)) "$logdir/waypoint-${wl/\//-}.log" | grep $'session\tdenied ' | tail -1 || true)
		reason=$(field reason "$d")
	fi
	[ "$code" = "$want" ] || { unexpected=$((unexpected + 1)); verdict="$verdict (expected $want!)"; }
	rows+=("$label|$path|${cid#spiffe://}|${sid#spiffe://}|$verdict ($code${reason:+, $reason})|${up:-0} / ${size:-0}")
}

# resolve NS/POD NAME: the pod's own resolver (its resolv.conf search path; port 53 is captured
# to ztunnel's DNS proxy), first IPv4 address or "unresolved".
resolve() {
	local a
	a=$("$LAB" exec "$1" --name "$NAME" -- getent ahostsv4 "$2" 2>/dev/null | awk 'NR == 1 {print $1}')
	echo "${a:-unresolved}"
}

echo
echo "driving traffic..."
flow frontend/client 10.96.0.10:80 "frontend/client -> echo VIP 10.96.0.10:80" ALLOW
flow frontend/client "$(ip_of backend echo-2):8080" "frontend/client -> backend/echo-2 pod IP" ALLOW
flow frontend/client "$(ip_of backend db):5432" "frontend/client -> backend/db" DENY
flow frontend/client "$(ip_of backend legacy):8080" "frontend/client -> backend/legacy (no mesh)" ALLOW
flow backend/legacy "$(ip_of backend echo-1):8080" "backend/legacy (no mesh) -> backend/echo-1" DENY
http_flow frontend/client GET http://10.96.0.20/items/1 "frontend/client GET cart.shop /items/1" 200
http_flow frontend/client POST http://10.96.0.20/items/1 "frontend/client POST cart.shop /items/1" 403
http_flow frontend/client GET http://10.96.0.20/admin "frontend/client GET cart.shop /admin" 403
a=$(resolve frontend/client echo.backend)
flow frontend/client "$a:80" "frontend/client -> echo.backend (DNS: $a)" ALLOW
a=$(resolve frontend/client erp)
flow frontend/client "$a:80" "frontend/client -> erp, a VM's WorkloadEntry (DNS: $a)" ALLOW
a=$(resolve frontend/client api.example.com)
flow frontend/client "$a:8080" "frontend/client -> api.example.com, a ServiceEntry (DNS: $a)" ALLOW

echo
{
	echo "FLOW|PATH|SERVER IDENTITY (CLIENT SIDE SAW)|CLIENT IDENTITY (SERVER SIDE SAW)|VERDICT|BYTES SENT / RECEIVED"
	printf '%s\n' "${rows[@]}"
} | column -t -s '|'
echo
# The picture of the lab as the flows left it (lab graph; graphviz).
picture=${DEMO_GRAPH:-$(dirname "$BIN")/demo-lab.svg}
if command -v dot > /dev/null; then
	"$LAB" graph --name "$NAME" --out "$picture" > /dev/null && echo "picture of the lab: $picture"
else
	echo "no picture of the lab: graphviz is missing (scripts/deps.sh installs it)"
fi
if [ "$unexpected" -gt 0 ]; then
	echo "demo: $unexpected flow(s) did not get the expected verdict" >&2
	exit 1
fi
echo "every flow got the expected verdict"
if [ -n "${KEEP:-}" ]; then
	cat <<EOF
The lab stays up. Explore it with:
  $LAB status --name $NAME
  $LAB exec frontend/client --name $NAME -- $BIN/sim-workload client --connect 10.96.0.10:80
  $LAB exec frontend/client --name $NAME -- curl -s http://10.96.0.20/items/1
  $LAB logs waypoint-shop-waypoint --name $NAME
  $LAB logs ztunnel-node-1 --name $NAME
  ip netns exec $NAME-n-node-1 curl -s localhost:15000/config_dump | jq .workloadState
  $LAB down --name $NAME
EOF
fi
