#!/usr/bin/env bash
# A malicious delta-xDS server against ztunnel (root, one network namespace): ztunnel
# (dedicated mode, local CA) takes its xDS from tests/hostile/xdsattack.py on 127.0.0.1 with a
# server certificate made here. Each case states the reaction expected; after each, ztunnel
# must still run and take a good response from a well-behaved server (ACK, the workload in
# /config_dump, ready), within RSS and fd bounds. About 30 s.
# HOSTILE_REPORT=1 prints every case's outcome without failing (to compare two builds).
source "$(dirname "$0")/../e2e/lib/harness.sh"

PY=/usr/bin/python3
# RSS_BOUND: growth allowed at any check; RSS_SETTLE: after a spike of 20000 workloads is
# removed (the heap is trimmed). Sanitizer builds keep freed memory in quarantine.
RSS_BOUND=65536 RSS_SETTLE=16384
if grep -qE "__asan_init|__tsan_init" "$BIN/ztunnel" 2>/dev/null; then RSS_BOUND=524288 RSS_SETTLE=524288; fi

lab_log "certificates"
c=$WORK/xds
mkdir -p "$c"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj /O=hostile-xds-root -keyout "$c/root-key.pem" -out "$c/root.pem" 2> /dev/null ||
	fail "root certificate"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /O=hostile-xds \
	-keyout "$c/key.pem" -out "$c/csr.pem" 2> /dev/null || fail "server key"
printf 'subjectAltName=IP:127.0.0.1\n' > "$c/ext"
openssl x509 -req -in "$c/csr.pem" -CA "$c/root.pem" -CAkey "$c/root-key.pem" -CAcreateserial \
	-days 1 -extfile "$c/ext" -out "$c/cert.pem" 2> /dev/null || fail "server certificate"

lab_log "ztunnel against the hostile server"
ns_add zt
echo token > "$WORK/token"
bg zt ztunnel env XDS_ADDRESS=https://127.0.0.1:15010 XDS_ROOT_CA="$c/root.pem" FAKE_CA=true \
	AUTH_TOKEN="$WORK/token" NODE_NAME=node-x PROXY_MODE=dedicated \
	PROXY_WORKLOAD_INFO=hostile/pod/default ENABLE_ORIG_SRC=false \
	ADMIN_ADDR=127.0.0.1:15000 READINESS_ADDR=127.0.0.1:15021 STATS_ADDR=127.0.0.1:15020 \
	RUST_LOG="${ZT_LOG:-info}" "$BIN/ztunnel"
ZT=$LAST_PID
args=(--listen 127.0.0.1:15010 --cert "$c/cert.pem" --key "$c/key.pem" --pid "$ZT"
	--admin 127.0.0.1:15000 --ready 127.0.0.1:15021 --rss-bound "$RSS_BOUND"
	--rss-settle "$RSS_SETTLE")
[ -z "${HOSTILE_REPORT:-}" ] || args+=(--report)
[ -z "${HOSTILE_ONLY:-}" ] || args+=(--only "$HOSTILE_ONLY")
rc=0
nsx zt timeout 300 "$PY" "$ROOT/tests/hostile/xdsattack.py" "${args[@]}" || rc=$?
kill -0 "$ZT" 2>/dev/null || fail "ztunnel died"
lab_log "ztunnel log: $(grep -c 'NACK' "$WORK/ztunnel.err" || true) NACK lines, $(wc -l < "$WORK/ztunnel.err") lines"
[ $rc = 0 ] || fail "hostile xds: cases not as expected"
lab_finish
echo "hostile xds: ok"
