#!/usr/bin/env bash
# Graceful drain (spec §14) in the lab, with CONNECTION_TERMINATION_DEADLINE=4s:
#  A. SIGTERM on the client's node: from the first moment new connections are refused and
#     the admin and readiness ports are closed, while a tunnel opened before keeps
#     transferring until the deadline (judged by the client's own timestamps); then it is cut, counted in the last log line, exit 0.
#  B. SIGTERM on the server's node: the peer's pooled HBONE connection gets GOAWAY, so a new
#     connection is refused while the open tunnel relays on until the deadline.
#  C. /quitquitquit with a same-node tunnel (outbound and inbound on this ztunnel) that ends
#     on its own: the process exits when it ends,
#     before the deadline; a second /quitquitquit finds the port closed.
#  D. A second SIGINT exits at once (status 0) with a tunnel still open.
# Each ztunnel is run by this script (in place of the lab's) so its exit status is known.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# wait_for (and the defaults of die/fail/nsx, which this script overrides below).
source "$ROOT/netns-lab/lib.sh"
BIN=$(cd "${BUILD_DIR:-$ROOT/build}/bin" && pwd)
LAB=$ROOT/netns-lab/lab
PACED=$ROOT/tests/e2e/lib/paced.py
NAME=d$((RANDOM % 100000))
STATE=/run/netns-lab/$NAME
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}
export CONNECTION_TERMINATION_DEADLINE=4s
DEADLINE=4
declare -A zpid=()
bgpids=()

cleanup() {
	local p
	for p in "${zpid[@]}" "${bgpids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
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
now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$@"; }
le() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$@"; }
ipof() { awk -v ns="$1" -v p="$2" -F'\t' '$1 == ns && $2 == p {print $4}' "$STATE/pods"; }
nsx() { ip netns exec "$NAME-n-$1" "${@:2}"; }
ready() { nsx "$1" curl -sf --max-time 2 127.0.0.1:15021/healthz/ready; }
client() { "$LAB" exec frontend/client --name "$NAME" -- "$BIN/sim-workload" client --timeout 3s "$@"; }
# paced OUT ADDR SECONDS: a long-lived tunnel from frontend/client, in the background.
paced() {
	"$LAB" exec frontend/client --name "$NAME" -- python3 "$PACED" "$2" --seconds "$3" > "$1" 2>&1 &
	bgpids+=($!)
	wait_for 10 grep -q '^alive' "$1" || fail "tunnel to $2 did not start: $(cat "$1")"
}
# late FILE T0: by the client's own clock (its "alive T N" lines, one a second), the tunnel
# made round trips between DEADLINE-2 s and DEADLINE-0.3 s after T0, i.e. late in the drain.
# Judged afterwards from the client's timestamps, so a slow machine delaying this script
# cannot make a working tunnel look stalled.
late() {
	local r
	r=$(awk -v a="$(python3 -c "print($2 + $DEADLINE - 2)")" -v b="$(python3 -c "print($2 + $DEADLINE - 0.3)")" '
		$1 == "alive" && $2 <= a {n1 = $3} $1 == "alive" && $2 <= b {n2 = $3}
		END {print n1 + 0, n2 + 0}' "$1")
	log "   round trips $((DEADLINE - 2)) s and $DEADLINE s after SIGTERM (client clock): $r"
	[ "${r#* }" -gt "${r% *}" ]
}
# own NODE: replaces the lab's ztunnel of NODE by one started here (same command and log).
own() {
	local n=$1 p
	p=$(awk -v c="ztunnel-$n" '$2 == c {p = $1} END {print p}' "$STATE/pids")
	if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
		kill "$p"; wait_for 10 sh -c "! kill -0 $p" || fail "lab ztunnel-$n did not stop"
	fi
	# exec: the recorded pid is ztunnel's own (ip netns exec and env exec too).
	(eval "exec $(cat "$STATE/cmd/ztunnel-$n")") >> "$STATE/logs/ztunnel-$n.log" 2>&1 &
	zpid[$n]=$!
	wait_for 30 ready "$n" || fail "ztunnel on $n not ready"
}
# finish NODE T0 MAX: waits for the ztunnel of NODE, checks status 0 and the exit time.
finish() {
	local n=$1 t0=$2 max=$3 rc=0 took
	wait "${zpid[$n]}" || rc=$?
	took=$(since "$t0" "$(now)")
	unset "zpid[$n]"
	log "   ztunnel on $n exited with status $rc after $took s"
	[ "$rc" = 0 ] || fail "exit status $rc"
	le "$took" "$max" || fail "exited after $took s, expected by $max s"
}

log "lab up (deadline ${DEADLINE}s)"
"$LAB" up "$ROOT/tests/e2e/data/lifecycle.yaml" --name "$NAME" > /dev/null || fail "lab up"
echo_ip=$(ipof backend echo) local_ip=$(ipof backend local)
own node-1
own node-2
client --connect "$echo_ip:8080" --bytes 1KiB > /dev/null || fail "mesh not working"

log "A. SIGTERM on the client's node"
W=$STATE/drain; mkdir -p "$W"
paced "$W/a" "$echo_ip:8080" 30
# While it is open: the operator surfaces in the reference's shapes (spec §17, §8.1).
nsx node-1 curl -s 127.0.0.1:15000/config_dump | jq -e --arg e "$echo_ip" '.workloadState | to_entries |
	map(select(.value.info.name == "client"))[0].value | .state == "Up" and
	(.connections.outbound | map(select(.protocol == "HBONE" and .originalDst == "\($e):8080" and
	 .actualDst == "\($e):15008")) | length == 1)' > /dev/null ||
	fail "workloadState on node-1: $(nsx node-1 curl -s 127.0.0.1:15000/config_dump | jq -c .workloadState)"
nsx node-2 curl -s 127.0.0.1:15000/config_dump | jq -e --arg e "$echo_ip" '.workloadState | to_entries |
	map(select(.value.info.name == "echo"))[0].value.connections.inbound |
	map(select(.protocol == "HBONE" and .actualDst == "\($e):8080")) | length == 1' > /dev/null ||
	fail "workloadState on node-2: $(nsx node-2 curl -s 127.0.0.1:15000/config_dump | jq -c .workloadState)"
nsx node-1 curl -s 127.0.0.1:15020/metrics | grep -q '^istio_xds_message_total{url="type.googleapis.com/istio.workload.Address"} [1-9]' ||
	fail "no istio_xds_message_total"
t0=$(now)
kill -TERM "${zpid[node-1]}"
client --connect "$echo_ip:8080" --bytes 10 > "$W/a.new" 2>&1 && fail "a new connection was accepted while draining"
took=$(since "$t0" "$(now)")
log "   new connection refused $took s after SIGTERM"
le "$took" 2 || fail "refusal took $took s"
nsx node-1 curl -s --max-time 2 127.0.0.1:15000/config_dump > /dev/null && fail "admin still accepting"
nsx node-1 curl -s --max-time 2 127.0.0.1:15021/healthz/ready > /dev/null && fail "readiness still accepting"
nsx node-1 curl -s --max-time 2 127.0.0.1:15020/metrics > /dev/null && fail "metrics still accepting"
finish node-1 "$t0" $((DEADLINE + 3))
late "$W/a" "$t0" || fail "the open tunnel stopped transferring during the drain: $(tail -3 "$W/a")"
wait_for 5 grep -q '^end' "$W/a" || fail "tunnel not cut at the deadline"
end=$(awk '$1 == "end" {print $2}' "$W/a")
cut=$(since "$t0" "$end")
log "   tunnel cut $cut s after SIGTERM: $(grep '^end' "$W/a")"
le $((DEADLINE - 1)) "$cut" && le "$cut" $((DEADLINE + 3)) || fail "tunnel cut after $cut s"
grep "drained in" "$STATE/logs/ztunnel-node-1.log" | tail -1 | grep -q "1 closed at the deadline" ||
	fail "last log line: $(tail -1 "$STATE/logs/ztunnel-node-1.log")"

log "B. SIGTERM on the server's node: GOAWAY to the peer"
own node-1
paced "$W/b" "$echo_ip:8080" 30
t0=$(now)
kill -TERM "${zpid[node-2]}"
client --connect "$echo_ip:8080" --bytes 10 > "$W/b.new" 2>&1 && fail "a new connection reached the draining node"
client --connect "$local_ip:8080" --bytes 10 > /dev/null || fail "the client's own node stopped working"
finish node-2 "$t0" $((DEADLINE + 3))
wait_for 5 grep -q '^end' "$W/b" || fail "tunnel not cut at the server's deadline"
late "$W/b" "$t0" || fail "the open tunnel stopped during the server's drain: $(tail -3 "$W/b")"
grep "drained in" "$STATE/logs/ztunnel-node-2.log" | tail -1 | grep -q "1 closed at the deadline" ||
	fail "last log line on node-2: $(grep 'drained in' "$STATE/logs/ztunnel-node-2.log" | tail -1)"
own node-2

log "C. /quitquitquit with a tunnel that ends on its own"
paced "$W/c" "$local_ip:8080" 2
t0=$(now)
[ "$(nsx node-1 curl -s -X POST 127.0.0.1:15000/quitquitquit)" = "shutdown now" ] ||
	fail "/quitquitquit reply"
nsx node-1 curl -s --max-time 2 -X POST 127.0.0.1:15000/quitquitquit && fail "second /quitquitquit accepted"
finish node-1 "$t0" $((DEADLINE - 1))
grep -q "done" "$W/c" || fail "tunnel did not finish: $(cat "$W/c")"
grep "drained in" "$STATE/logs/ztunnel-node-1.log" | tail -1 | grep -q "2 of 2 connections ended on their own, 0 closed" ||
	fail "last log line: $(grep 'drained in' "$STATE/logs/ztunnel-node-1.log" | tail -1)"

log "D. a second SIGINT exits at once"
own node-1
paced "$W/d" "$echo_ip:8080" 30
t0=$(now)
kill -INT "${zpid[node-1]}"
wait_for 5 grep -q "draining on SIGINT" "$STATE/logs/ztunnel-node-1.log" || fail "no drain on SIGINT"
kill -INT "${zpid[node-1]}"
finish node-1 "$t0" 2
grep -q "second SIGINT: exiting at once with 1 connections open" "$STATE/logs/ztunnel-node-1.log" ||
	fail "no log of the immediate exit"

log "the ztunnels left stop cleanly"
for n in "${!zpid[@]}"; do
	t0=$(now); kill -TERM "${zpid[$n]}"; finish "$n" "$t0" $((DEADLINE + 3))
done
"$LAB" down --name "$NAME" > /dev/null
echo PASS
