#!/usr/bin/env bash
# The conformance scenarios that exercise each data-plane path, policy re-evaluation and pod
# removal, against this build's ztunnel with ZTUNNEL_WORKER_THREADS=1 (the lab passes it
# through; conform.sh runs every scenario with the default, 2). config-dump checks that every
# pod's proxy really runs on one worker. The full suite with one worker:
#   ZTUNNEL_WORKER_THREADS=1 netns-lab/lab conform
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}
NAME=w$((RANDOM % 100000))
OUT=$(mktemp -d)
source "$ROOT/netns-lab/lib.sh"
DIE_PREFIX=FAIL
trap '"$ROOT/netns-lab/lab" down --name "$NAME" > /dev/null 2>&1 || true; rm -rf "$OUT"' EXIT

only=hbone-same-node,hbone-cross-node,plaintext-inbound,vip-balance,deny-principal,policy-change,pod-removal,config-dump
ZTUNNEL_WORKER_THREADS=1 "$ROOT/netns-lab/lab" conform --name "$NAME" --only "$only" \
	--json "$OUT/conform.json" | tee "$OUT/table" || fail "lab conform with one worker failed (table above)"
n=$(tr ',' '\n' <<<"$only" | wc -l)
[ "$(jq '.scenarios | map(select(.result == "pass")) | length' "$OUT/conform.json")" = "$n" ] ||
	fail "expected $n scenarios passed: $(jq -c . "$OUT/conform.json")"
[ -z "$(ip netns list | grep "^$NAME-" || true)" ] || fail "namespaces left: $(ip netns list | grep "^$NAME-")"
echo PASS
