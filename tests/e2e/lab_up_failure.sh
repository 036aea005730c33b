#!/usr/bin/env bash
# A failed `lab up` leaves nothing behind: a lab whose ztunnel cannot start (a log level it
# refuses), and a topology fake-istiod cannot read, each make `lab up` fail with a message
# naming the cause, and afterwards no namespace, process or state file of that lab is left.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$ROOT/netns-lab/lab
NAME=f$((RANDOM % 100000))
STATE=/run/netns-lab/$NAME
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}
source "$ROOT/netns-lab/lib.sh"
DIE_PREFIX=FAIL
WORK=$(mktemp -d)
trap '"$LAB" down --name "$NAME" > /dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

# Processes whose command line or environment mentions the lab's state directory.
lab_procs() {
	local p
	for p in /proc/[0-9]*; do
		[ "$p" = "/proc/$$" ] && continue
		if grep -qaF "$STATE/" "$p/cmdline" "$p/environ" 2>/dev/null; then echo "${p#/proc/}"; fi
	done
}

# nothing_left WHAT: fails naming whatever the failed `lab up` left behind.
nothing_left() {
	local left
	left=$(ip netns list | awk '{print $1}' | grep "^$NAME-" || true)
	[ -z "$left" ] || fail "$1: namespaces left: $left"
	[ ! -e "$STATE" ] || fail "$1: state directory $STATE left"
	left=$(lab_procs)
	[ -z "$left" ] || fail "$1: processes left: $(for p in $left; do tr '\0' ' ' < "/proc/$p/cmdline"; echo; done)"
}

echo "ztunnel that cannot start"
rc=0
ZTUNNEL_LOG=bogus=nolevel timeout 120 "$LAB" up "$ROOT/tests/e2e/data/one-pod.yaml" --name "$NAME" \
	> "$WORK/up.out" 2>&1 || rc=$?
cat "$WORK/up.out"
[ "$rc" != 0 ] || fail "lab up succeeded with a ztunnel that cannot start"
[ "$rc" != 124 ] || fail "lab up hung instead of failing"
grep -q "ztunnel on node-1 exited" "$WORK/up.out" || fail "the failure does not name ztunnel"
grep -q "RUST_LOG" "$WORK/up.out" || fail "the failure does not show ztunnel's reason"
nothing_left "ztunnel cannot start"

echo "topology fake-istiod cannot read"
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: [}\n' > "$WORK/bad.yaml"
rc=0
timeout 60 "$LAB" up "$WORK/bad.yaml" --name "$NAME" > "$WORK/up.out" 2>&1 || rc=$?
cat "$WORK/up.out"
[ "$rc" != 0 ] || fail "lab up succeeded with an unreadable topology"
grep -q "cannot read" "$WORK/up.out" || fail "the failure does not name the topology"
nothing_left "unreadable topology"
echo "ok"
