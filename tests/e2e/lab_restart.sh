#!/usr/bin/env bash
# netns-lab's `lab restart` and `lab stop`/`lab start` of a ztunnel, repeated: each time the
# PID the lab records is the ztunnel process itself, exactly one ztunnel runs in the node's
# namespace, and it becomes ready again (no "Address already in use" from a survivor).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$ROOT/netns-lab/lab
NAME=r$((RANDOM % 100000))
STATE=/run/netns-lab/$NAME
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}

trap '"$LAB" down --name "$NAME" > /dev/null 2>&1 || true' EXIT
fail() { echo "FAIL: $*"; tail -n 20 "$STATE/logs/ztunnel-node-1.log" 2>/dev/null || true; exit 1; }
wait_for() { local n=$(($1 * 5)); shift; for _ in $(seq "$n"); do "$@" > /dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
ready() { ip netns exec "$NAME-n-node-1" curl -sf 127.0.0.1:15021/healthz/ready; }
recorded() { awk '$2 == "ztunnel-node-1" {p = $1} END {print p}' "$STATE/pids"; }
ztunnels() {
	local n=0 pid
	for pid in $(ip netns pids "$NAME-n-node-1"); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = ztunnel ] && n=$((n + 1))
	done
	echo "$n"
}
check() {
	local what=$1 pid
	wait_for 20 ready || fail "$what: not ready"
	pid=$(recorded)
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = ztunnel ] ||
		fail "$what: recorded PID $pid is $(cat "/proc/$pid/comm" 2>/dev/null || echo gone), not ztunnel"
	[ "$(ztunnels)" = 1 ] || fail "$what: $(ztunnels) ztunnel processes in the node namespace"
	echo "ok: $what (pid $pid)"
}

"$LAB" up "$ROOT/tests/e2e/data/lab.yaml" --name "$NAME" > /dev/null || fail "lab up"
check "after lab up"
for i in 1 2 3; do
	"$LAB" restart ztunnel-node-1 --name "$NAME" > /dev/null || fail "restart $i"
	check "after restart $i"
done
"$LAB" stop ztunnel-node-1 --name "$NAME" > /dev/null || fail "stop"
[ "$(ztunnels)" = 0 ] || fail "stop left $(ztunnels) ztunnel processes"
"$LAB" start ztunnel-node-1 --name "$NAME" > /dev/null || fail "start"
check "after stop and start"
if grep -q 'Address already in use' "$STATE/logs/ztunnel-node-1.log"; then fail "a restart found its port taken"; fi
echo "lab restart: ok"
