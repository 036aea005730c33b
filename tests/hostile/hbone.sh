#!/usr/bin/env bash
# An attacker against ztunnel's HBONE port (root, network namespaces): pod server-1 runs a
# ztunnel (dedicated mode) in front of an echo server; pod client holds a mesh certificate of
# default/client and runs tests/hostile/h2attack.py, one attack per case. Each case states
# the reaction expected; after each, ztunnel must still run and serve a good client, and at
# the end its RSS and open fds must be back within bounds.
# HOSTILE_REPORT=1 prints every case's outcome without failing (to compare two builds).
source "$(dirname "$0")/../e2e/lib/harness.sh"

ATTACK=$ROOT/tests/hostile/h2attack.py
PY=/usr/bin/python3
REPORT=${HOSTILE_REPORT:-}
SRV=10.77.0.21
bad=()
# Sanitizer builds (ASan, TSan) keep shadow memory and freed memory in quarantine: the bounds
# are wider there, not absent.
RSS_BOUND=32768
if grep -qE "__asan_init|__tsan_init" "$BIN/ztunnel" 2>/dev/null; then RSS_BOUND=524288; fi

lab_log "topology"
lab_underlay
lab_pod client 10.77.0.11
lab_pod server-1 $SRV
cp "$ROOT/tests/e2e/data/mesh.yaml" "$WORK/mesh.yaml"
lab_istiod "$WORK/mesh.yaml"
lab_ztunnel server-1 node-b default server
lab_server server-1 8080
lab_wait_ready server-1
ZT=$ZT_PID_server_1
tok=$("$BIN/fake-istiod" token --ca-dir "$WORK/ca" --node node-a --namespace default \
	--service-account client)
mkdir -p "$WORK/certs"
nsx ul "$TBIN/xds_probe" --addr "$UL_IP:15012" --roots "$WORK/ca/root-cert.pem" \
	--host istiod.istio-system.svc --token "$tok" csr \
	--identity spiffe://cluster.local/ns/default/sa/client --out "$WORK/certs" > /dev/null ||
	fail "client certificate"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$ZT/status"; }
fds() { ls "/proc/$ZT/fd" | wc -l; }
attack() { # CASE [ARGS...]: runs one attack from pod client
	local c=$1; shift
	nsx client timeout 60 "$PY" "$ATTACK" "$c" --addr "$SRV:15008" --authority "$SRV:8080" \
		--cert "$WORK/certs/chain.pem" --key "$WORK/certs/key.pem" --pid "$ZT" \
		--rss-bound "$RSS_BOUND" "$@" 2>&1
}
# check CASE EXPECTED [ARGS...]: one case, its expectation, then ztunnel alive + a good client.
check() {
	local c=$1 want=$2 out rc=0 good; shift 2
	local lines0; lines0=$(wc -l < "$WORK/zt-server-1.err")
	out=$(attack "$c" "$@") || rc=$?
	kill -0 "$ZT" 2>/dev/null || fail "$c: ztunnel died: $out"
	good=$(attack good) || fail "$c: a good client is not served afterwards: $good"
	local logged=$(( $(wc -l < "$WORK/zt-server-1.err") - lines0 ))
	if [ $rc = 0 ]; then
		printf 'PASS  %-20s expected: %s\n      observed: %s (%d log lines)\n' "$c" "$want" "${out#*: }" "$logged"
	else
		printf 'FAIL  %-20s expected: %s\n      observed: %s (%d log lines)\n' "$c" "$want" "${out#*: }" "$logged"
		bad+=("$c")
	fi
}

rss0=$(rss) fds0=$(fds)
lab_log "baseline: ztunnel RSS $rss0 KiB, $fds0 fds"
out=$(attack good) || fail "a good client is not served: $out"

# Memory figures first, while the heap is fresh.
check idle-tunnels      "500 idle tunnels: RSS per tunnel" --n 500
sleep 3 # a heap trim (every 2 s) between the two figures
check hello-flood       "1000 half-open ClientHellos: bounded memory, others served" --n 1000
check garbage           "bytes that are not TLS: connection closed"
check no-client-cert    "no client certificate: handshake refused or connection closed"
check bad-preface       "HTTP/1.1 instead of the HTTP/2 preface: connection closed"
check malformed-frames  "DATA on stream 0: GOAWAY PROTOCOL_ERROR"
check header-bomb       "200 KB of headers over CONTINUATION: 431, RST_STREAM or GOAWAY"
check continuation-flood "endless CONTINUATION: connection closed"
check settings-flood    "100k SETTINGS, not reading: GOAWAY ENHANCE_YOUR_CALM or close"
check ping-flood        "100k PINGs, not reading: GOAWAY ENHANCE_YOUR_CALM or close"
check slowloris         "200 connections stalled in the preface: others still served" --n 200
check stop-reading      "a tunnel whose client never reads: ztunnel memory stays bounded"
check silent-flood      "4200 silent TCP connections: authenticated peers still served" --n 4200
check rapid-reset       "2000 CONNECT+RST_STREAM: GOAWAY ENHANCE_YOUR_CALM, few log lines" --n 2000
check early-data        "DATA before the CONNECT response: buffered and echoed"
check stream-limit      "one stream over the limit: REFUSED_STREAM for it, the others live"

# Everything the attacks opened is closed by now or soon: fds and RSS come back down.
wait_for 20 sh -c "[ \$(ls /proc/$ZT/fd | wc -l) -le $((fds0 + 16)) ]" ||
	{ bad+=("fd-growth"); echo "FAIL  fds: $fds0 at start, $(fds) at the end"; }
wait_for 10 sh -c "[ \$(awk '/^VmRSS:/ {print \$2}' /proc/$ZT/status) -le $((rss0 + RSS_BOUND + 8192)) ]" ||
	{ bad+=("rss-growth"); echo "FAIL  RSS: $rss0 KiB at start, $(rss) KiB at the end"; }
lab_log "end: ztunnel RSS $(rss) KiB (start $rss0), $(fds) fds (start $fds0)"
[ -z "$REPORT" ] || { echo "report mode: ${#bad[@]} case(s) not as expected: ${bad[*]:-none}"; exit 0; }
[ ${#bad[@]} = 0 ] || fail "cases not as expected: ${bad[*]}"
lab_finish
echo "hostile hbone: ok"
