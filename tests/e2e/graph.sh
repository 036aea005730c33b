#!/usr/bin/env bash
# lab graph draws the running lab: its DOT holds both nodes and their ztunnels, meshed and
# unmeshed pods, fake-istiod, the Service with its VIP and endpoints, and a live HBONE
# connection with both identities and its bytes; the SVG renders; bad --out is refused.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}
BIN=$BUILD_DIR/bin
LAB=$ROOT/netns-lab/lab
NAME=g$((RANDOM % 100000))
OUT=$(mktemp -d)
source "$ROOT/netns-lab/lib.sh"
DIE_PREFIX=FAIL
trap '"$LAB" down --name "$NAME" > /dev/null 2>&1 || true; rm -rf "$OUT"' EXIT

"$LAB" up "$ROOT/tests/e2e/data/lab.yaml" --name "$NAME" > /dev/null || fail "lab up"
echo1=$(awk -F'\t' '$1 == "backend" && $2 == "echo-1" {print $4}' "/run/netns-lab/$NAME/pods")
"$LAB" exec frontend/client --name "$NAME" -- "$BIN/sim-workload" client --connect "$echo1:8080" \
	--requests 100000 --size 64 --timeout 30s > /dev/null 2>&1 &
long=$!
live() { "$LAB" graph --name "$NAME" --out "$OUT/lab.dot" > /dev/null && grep -q '1 live' "$OUT/lab.dot"; }
wait_for 10 live || fail "no live connection drawn: $(cat "$OUT/lab.dot")"
d=$OUT/lab.dot
edge=$(grep '"frontend/client" -> "backend/echo-1"' "$d") || fail "no client -> echo-1 edge: $(cat "$d")"
grep -q 'HBONE mTLS: 1 live' <<<"$edge" && grep -q 'cluster.local/ns/frontend/sa/client -> cluster.local/ns/backend/sa/echo' <<<"$edge" &&
	grep -q 'KiB in\|B in' <<<"$edge" || fail "edge: $edge"
grep -q '"zt_node-1" \[shape=box3d, style=filled, fillcolor=palegreen' "$d" && grep -q '"zt_node-2"' "$d" || fail "ztunnels: $(cat "$d")"
grep -q '"backend/legacy" .*not meshed' "$d" && grep -q '"frontend/peer" .*meshed (sa peer)' "$d" || fail "pods: $(cat "$d")"
grep -q 'Service backend/echo\\n10.96.0.10' "$d" && grep -q '"svc_backend/echo" -> "backend/echo-1"' "$d" || fail "service: $(cat "$d")"
grep -q 'fake-istiod' "$d" || fail "no fake-istiod"
kill "$long" 2>/dev/null || true; wait "$long" 2>/dev/null || true
"$LAB" graph --name "$NAME" --out "$OUT/lab.svg" > /dev/null && grep -q '<svg' "$OUT/lab.svg" || fail "svg not written"
rc=0; out=$("$LAB" graph --name "$NAME" --out "$OUT/lab.gif" 2>&1) || rc=$?
[ "$rc" != 0 ] && [ "$out" = "lab graph: --out $OUT/lab.gif: name an .svg, .png or .dot file" ] || fail "bad --out: $rc: $out"
rc=0; out=$("$LAB" graph --name "${NAME}x" 2>&1) || rc=$?
[ "$rc" != 0 ] && [ "$out" = "lab graph: lab ${NAME}x is not up" ] || fail "lab not up: $rc: $out"
echo PASS
