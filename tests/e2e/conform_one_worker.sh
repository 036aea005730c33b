#!/usr/bin/env bash
# Every conformance scenario against this build's ztunnel with ZTUNNEL_WORKER_THREADS=1 (the
# lab passes it through; conform.sh runs them with the default, 2). config-dump checks that
# every pod's proxy really runs on one worker. The same by hand:
#   ZTUNNEL_WORKER_THREADS=1 netns-lab/lab conform
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}
NAME=w$((RANDOM % 100000))
OUT=$(mktemp -d)
source "$ROOT/netns-lab/lib.sh"
DIE_PREFIX=FAIL
trap '"$ROOT/netns-lab/lab" down --name "$NAME" > /dev/null 2>&1 || true; rm -rf "$OUT"' EXIT

ZTUNNEL_WORKER_THREADS=1 "$ROOT/netns-lab/lab" conform --name "$NAME" \
	--json "$OUT/conform.json" | tee "$OUT/table" || fail "lab conform with one worker failed (table above)"
n=$(ls "$ROOT"/netns-lab/conform/scenarios/[0-9]*.sh | wc -l)
[ "$(jq '.scenarios | map(select(.result == "pass")) | length' "$OUT/conform.json")" = "$n" ] ||
	fail "expected $n scenarios passed: $(jq -c . "$OUT/conform.json")"
[ -z "$(ip netns list | grep "^$NAME-" || true)" ] || fail "namespaces left: $(ip netns list | grep "^$NAME-")"
echo PASS
