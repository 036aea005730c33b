#!/usr/bin/env bash
# The conformance suite (netns-lab/lab conform) against this build's ztunnel: every scenario
# must pass, its JSON and JUnit reports must agree, and the lab must leave nothing behind
# (namespaces, state, processes, root-namespace iptables and ip rules). Then the suite's bad
# input: an unknown scenario, a missing ztunnel, a ztunnel that never becomes ready.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}
LAB=$ROOT/netns-lab/lab
NAME=k$((RANDOM % 100000))
OUT=$(mktemp -d)
source "$ROOT/netns-lab/lib.sh"
DIE_PREFIX=FAIL
trap '"$LAB" down --name "$NAME" > /dev/null 2>&1 || true; rm -rf "$OUT"' EXIT

root_rules_before=$(iptables-save 2>/dev/null | grep -v '^#' || true)
root_ip_rules_before=$(ip rule)
gone() { # the lab NAME left nothing behind
	[ -z "$(ip netns list | grep "^$1-" || true)" ] || fail "namespaces left: $(ip netns list | grep "^$1-")"
	[ ! -e "/run/netns-lab/$1" ] || fail "state directory of $1 left"
	! pgrep -f "/run/netns-lab/$1/" > /dev/null || fail "processes left: $(pgrep -af "/run/netns-lab/$1/")"
}

"$LAB" conform --name "$NAME" --junit "$OUT/junit.xml" --json "$OUT/conform.json" | tee "$OUT/table" ||
	fail "lab conform failed (table above)"
n=$(ls "$ROOT"/netns-lab/conform/scenarios/[0-9]*.sh | wc -l)
[ "$(jq '.scenarios | map(select(.result == "pass")) | length' "$OUT/conform.json")" = "$n" ] ||
	fail "expected $n scenarios passed in the JSON: $(jq -c . "$OUT/conform.json")"
[ "$(grep -c '<testcase ' "$OUT/junit.xml")" = "$n" ] && grep -q 'failures="0"' "$OUT/junit.xml" ||
	fail "JUnit report: $(cat "$OUT/junit.xml")"
gone "$NAME"
[ "$(iptables-save 2>/dev/null | grep -v '^#' || true)" = "$root_rules_before" ] ||
	fail "root namespace iptables changed"
[ "$(ip rule)" = "$root_ip_rules_before" ] || fail "root namespace ip rules changed"

# Another ztunnel binary (a copy of ours, so not ours by path): the scenarios marked OURS_ONLY
# are skipped with their reason, the others run.
cp "$BUILD_DIR/bin/ztunnel" "$OUT/other-ztunnel"
"$LAB" conform --name "$NAME" --ztunnel "$OUT/other-ztunnel" --only hbone-same-node,config-dump \
	--json "$OUT/other.json" > "$OUT/other.table" || fail "other ztunnel: $(cat "$OUT/other.table")"
[ "$(jq -r '.scenarios | map("\(.scenario)=\(.result)") | join(" ")' "$OUT/other.json")" = \
	"hbone-same-node=pass config-dump=skip" ] || fail "other ztunnel: $(jq -c . "$OUT/other.json")"
jq -r '.scenarios[1].evidence' "$OUT/other.json" | grep -q "^needs this project's ztunnel: " ||
	fail "skip reason: $(jq -c . "$OUT/other.json")"
gone "$NAME"

# Bad input: one clear line, non-zero exit, nothing left.
rc=0; out=$("$LAB" conform --name "$NAME" --only nosuch 2>&1) || rc=$?
[ "$rc" != 0 ] && [ "$out" = "lab conform: unknown scenario nosuch (lab conform --list names them)" ] ||
	fail "unknown scenario: rc $rc: $out"
rc=0; out=$("$LAB" conform --name "$NAME" --ztunnel /nonexistent/ztunnel 2>&1) || rc=$?
[ "$rc" != 0 ] && [ "$out" = "lab conform: --ztunnel /nonexistent/ztunnel: no such executable file" ] ||
	fail "missing ztunnel: rc $rc: $out"
# A "ztunnel" that answers its readiness probe with 503 and a text, never ready.
cat > "$OUT/notready" <<'SH'
#!/bin/sh
exec python3 -c '
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503); self.end_headers(); self.wfile.write(b"not ready: no certificate yet")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", 15021), H).serve_forever()'
SH
chmod +x "$OUT/notready"
rc=0; out=$(LAB_READY_WAIT=3 "$LAB" conform --name "$NAME" --ztunnel "$OUT/notready" --only passthrough 2>&1) || rc=$?
[ "$rc" != 0 ] && grep -qx "lab conform: ztunnel did not become ready: not ready: no certificate yet" <<<"$out" ||
	fail "never-ready ztunnel: rc $rc: $out"
gone "$NAME"
echo PASS
