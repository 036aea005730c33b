#!/usr/bin/env bash
# Zero-downtime upgrade (spec §15) in the lab: `lab upgrade NODE` starts a new ztunnel beside
# the old one (sim-cni hands it every pod; it opens its own SO_REUSEPORT listeners in each),
# then the old one drains. A bounded loop of short connections from frontend/client runs
# through the upgrade and must see 0 failed connections; a long-lived tunnel opened before
# keeps transferring until the old instance's deadline. Both nodes are upgraded in turn (the
# client's, then the server's). For comparison the same loop runs through a plain
# `lab restart` (stop, then start) and its failure count is printed, not judged.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# wait_for (and the defaults of die/fail/nsx, which this script overrides below).
source "$ROOT/netns-lab/lib.sh"
BIN=$(cd "${BUILD_DIR:-$ROOT/build}/bin" && pwd)
LAB=$ROOT/netns-lab/lab
PACED=$ROOT/tests/e2e/lib/paced.py
NAME=u$((RANDOM % 100000))
STATE=/run/netns-lab/$NAME
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}
export CONNECTION_TERMINATION_DEADLINE=5s
DEADLINE=5
bgpids=()

cleanup() {
	local p
	for p in "${bgpids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	"$LAB" down --name "$NAME" > /dev/null 2>&1 || true
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	for c in ztunnel-node-1 ztunnel-node-2 cni-node-1 cni-node-2; do
		echo "--- $c:"; tail -n 15 "$STATE/logs/$c.log" 2>/dev/null || true
	done
	exit 1
}
log() { echo "[$(date +%T)] $*"; }
ipof() { awk -v ns="$1" -v p="$2" -F'\t' '$1 == ns && $2 == p {print $4}' "$STATE/pods"; }
count() { awk '$1 == "alive" || $1 == "end" {n = $3} END {print n + 0}' "$1"; }
# at FILE T: round trips the tunnel had made by wall-clock time T.
at() { awk -v t="$2" '($1 == "alive" || $1 == "end") && $2 <= t {n = $3} END {print n + 0}' "$1"; }
# drain_started NODE: wall-clock time of the last "draining on" line of NODE's ztunnel log.
drain_started() {
	local ts
	ts=$(grep "draining on SIGTERM" "$STATE/logs/ztunnel-$1.log" | tail -1 | cut -f1)
	date -d "$ts" +%s.%N
}

# loop_start OUT ADDR: short connections (10 per client run, 2 at a time, 64 bytes echoed)
# from frontend/client until OUT.stop exists, at most 2000 runs.
loop_start() {
	local out=$1 addr=$2
	rm -f "$out" "$out.stop"
	"$LAB" exec frontend/client --name "$NAME" -- bash -c '
		for _ in $(seq 2000); do
			[ -e "$1.stop" ] && break
			"$2" client --connect "$3" --connections 10 --concurrency 2 --bytes 64 --timeout 5s
		done' loop "$out" "$BIN/sim-workload" "$addr" > "$out" 2>&1 &
	LOOP=$!
	bgpids+=($LOOP)
	wait_for 10 test -s "$out" || fail "the client loop did not start"
}
# loop_stop OUT: stops the loop and prints "CONNECTIONS FAILED".
loop_stop() {
	touch "$1.stop"
	wait "$LOOP" || true
	jq -rs '"\(map(.connections) | add) \(map(.errors) | add)"' < <(grep '^{' "$1")
}

log "lab up (old instances drain for ${DEADLINE}s)"
"$LAB" up "$ROOT/tests/e2e/data/lifecycle.yaml" --name "$NAME" > /dev/null || fail "lab up"
echo_ip=$(ipof backend echo)
W=$STATE/upgrade; mkdir -p "$W"

results=()
for node in node-1 node-2; do
	log "upgrade $node with a tunnel open and the client loop running"
	"$LAB" exec frontend/client --name "$NAME" -- python3 "$PACED" "$echo_ip:8080" --seconds 60 \
		> "$W/tunnel-$node" 2>&1 &
	bgpids+=($!)
	wait_for 10 grep -q '^alive' "$W/tunnel-$node" || fail "tunnel did not start"
	loop_start "$W/loop-$node" "$echo_ip:8080"
	sleep 1
	"$LAB" upgrade "$node" --name "$NAME" > "$W/upgrade-$node.out" 2>&1 ||
		fail "lab upgrade $node: $(cat "$W/upgrade-$node.out")"
	sed 's/^/   /' "$W/upgrade-$node.out"
	sleep 1
	read -r total failed < <(loop_stop "$W/loop-$node")
	log "   client loop through the upgrade of $node: $total connections, $failed failed"
	results+=("upgrade $node: $total connections, $failed failed")
	[ "$total" -ge 20 ] || fail "the loop made only $total connections"
	[ "$failed" = 0 ] || fail "$failed connections failed during the upgrade: $(grep -h '"error":"' "$W/loop-$node" | head -3)"
	# The long tunnel lived on the old instances: it relays until the old one's deadline.
	wait_for 10 grep -q '^end' "$W/tunnel-$node" || fail "the tunnel outlived the old instance"
	t0=$(drain_started "$node")
	end=$(awk '$1 == "end" {print $2}' "$W/tunnel-$node")
	before=$(at "$W/tunnel-$node" "$t0")
	late=$(at "$W/tunnel-$node" "$(python3 -c "print($t0 + $DEADLINE - 1)")")
	cut=$(python3 -c "print('%.2f' % ($end - $t0))")
	log "   tunnel: $before round trips at SIGTERM, $late one second before the deadline, cut $cut s after SIGTERM"
	[ "$late" -gt "$before" ] || fail "the tunnel stopped transferring during the old instance's drain"
	python3 -c "import sys; sys.exit(0 if $DEADLINE - 1 <= $cut <= $DEADLINE + 3 else 1)" ||
		fail "tunnel cut $cut s after SIGTERM, expected about $DEADLINE s"
	st=$("$LAB" status --name "$NAME")
	grep -q "^$node *ready" <<<"$st" || fail "$node not ready after the upgrade: $st"
done

log "for comparison: lab restart ztunnel-node-1 with the client loop running"
loop_start "$W/loop-restart" "$echo_ip:8080"
sleep 1
"$LAB" restart ztunnel-node-1 --name "$NAME" > /dev/null 2>&1 || fail "lab restart"
port=$(cat "$STATE/node-1/ready-port" 2>/dev/null || echo 15021)
wait_for 30 ip netns exec "$NAME-n-node-1" curl -sf "127.0.0.1:$port/healthz/ready" ||
	fail "node-1 not ready after the restart"
sleep 1
read -r total failed < <(loop_stop "$W/loop-restart")
log "   client loop through the restart: $total connections, $failed failed"
results+=("restart node-1: $total connections, $failed failed")

printf 'RESULT %s\n' "${results[@]}"
"$LAB" down --name "$NAME" > /dev/null
echo PASS
