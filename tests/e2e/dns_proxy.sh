#!/usr/bin/env bash
# The DNS proxy (spec §13) against dig, on loopback inside a private network and mount
# namespace (root): dnsmasq on 127.0.0.1:53 is the upstream of a resolv.conf bind-mounted over
# /etc/resolv.conf there; one ztunnel (dedicated mode, tests/data/dns/local.yaml) answers on
# 127.0.0.1:15053. Checks local answers by short name and search path, ServiceEntry and
# wildcard hosts, forwarding (NXDOMAIN passed through, TCP after a truncated UDP answer),
# truncation towards the client, NODATA, malformed packets, a flood, the TCP connection bound,
# the istio_dns_* metrics and SERVFAIL once the upstream is gone. Nothing outside the private
# namespaces changes but a work directory in /tmp, removed on exit; the namespaces go when the
# processes in them end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${BUILD_DIR:-$ROOT/build}/bin" && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 0; }
command -v dig > /dev/null && command -v dnsmasq > /dev/null || { echo "FAIL: dig and dnsmasq needed (scripts/deps.sh)"; exit 1; }
WORK=$(mktemp -d /tmp/zt-dns.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
printf 'nameserver 127.0.0.1\nsearch default.svc.cluster.local svc.cluster.local cluster.local\n' \
	> "$WORK/resolv.conf"
export ROOT BIN WORK

# Everything below runs in the private namespaces (not exec'd: the trap above removes $WORK).
unshare --net --mount --propagation private bash -euo pipefail -c '
cd "$ROOT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
fail() {
	echo "FAIL: $*"
	echo "--- ztunnel:"; tail -n 20 "$WORK/zt.log" || true
	echo "--- dnsmasq:"; tail -n 5 "$WORK/dnsmasq.log" || true
	exit 1
}
log() { echo "[$(date +%T)] $*"; }
wait_for() { local n=$(($1 * 5)); shift; for _ in $(seq "$n"); do "$@" > /dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
q() { dig @127.0.0.1 -p 15053 +time=3 +tries=1 "$@"; }
short() { q +short "$@" | sort | tr "\n" " " | sed "s/ $//"; }
expect() { local want=$1; shift; local got; got=$(short "$@"); [ "$got" = "$want" ] || fail "dig $*: got \"$got\", want \"$want\""; }
metric() { curl -s 127.0.0.1:15020/metrics | awk -v m="$1" -v l="$2" "index(\$0, m \"{\") == 1 && index(\$0, l) {s += \$NF} END {print s + 0}"; }

ip link set lo up
mount --bind "$WORK/resolv.conf" /etc/resolv.conf
big=$(printf "x%.0s" $(seq 200))
txt=()
for i in 1 2 3 4 5 6 7 8; do txt+=(--txt-record="big.example.com,$i$big"); done
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --user=root --pid-file= \
	--listen-address=127.0.0.1 --bind-interfaces --port=53 --local=/example.com/ \
	--host-record=ext.example.com,192.0.2.5 "${txt[@]}" --log-facility="$WORK/dnsmasq.log" &
pids+=($!)
XDS_ADDRESS= LOCAL_XDS_PATH=tests/data/dns/local.yaml FAKE_CA=true PROXY_MODE=dedicated \
	PROXY_WORKLOAD_INFO=default/client/client RUST_LOG=info,dns=debug \
	"$BIN/ztunnel" > "$WORK/zt.log" 2>&1 &
zt=$!
pids+=($zt)
wait_for 15 curl -sf 127.0.0.1:15021/healthz/ready || fail "ztunnel not ready"
wait_for 10 dig @127.0.0.1 +time=1 +tries=1 ext.example.com || fail "dnsmasq not answering"

log "1. Service names by short name, namespace and search path"
expect 10.96.0.10 echo
expect 10.96.0.10 echo.default
expect 10.96.0.10 echo.default.svc.cluster.local
expect 10.96.1.10 echo.other
expect 10.96.1.10 echo.other.svc
expect 10.96.0.10 +search echo
expect fd00:96::10 AAAA echo
expect 10.0.0.7 db
out=$(q echo.default.svc.cluster.local.default.svc.cluster.local)
grep -q "CNAME[[:space:]]*echo.default.svc.cluster.local." <<<"$out" || fail "no CNAME: $out"
grep -q "flags: qr aa rd ra" <<<"$out" || fail "local answer not authoritative: $out"
grep -Eq "^echo\.\s+30\s+IN\s+A\s+10\.96\.0\.10" <<<"$(q echo)" || fail "TTL 30 owned by the name asked"

log "2. ServiceEntry hosts and wildcards; namespace-visible services stay hidden"
expect 240.240.0.1 api.example.com
expect 240.240.0.2 x.y.wild.example
expect "" private.secret.svc.cluster.local

log "3. NODATA for a family the service lacks"
out=$(q AAAA v4only)
grep -q "status: NOERROR" <<<"$out" && grep -q "ANSWER: 0" <<<"$out" || fail "v4only AAAA: $out"

log "4. forwarded: answers, NXDOMAIN, TCP after truncation, truncation towards the client"
expect 192.0.2.5 ext.example.com
out=$(q ext.example.com)
grep -q "flags: qr rd ra;" <<<"$out" || fail "forwarded answer must not be authoritative: $out"
grep -q "status: NXDOMAIN" <<<"$(q nope.example.com)" || fail "NXDOMAIN not passed through"
n=$(q +bufsize=4096 +short TXT big.example.com | wc -l)
[ "$n" = 8 ] || fail "big TXT over EDNS 4096: $n records (upstream TCP fallback)"
grep -q "flags: qr tc rd ra" <<<"$(q +noedns +ignore TXT big.example.com)" || fail "no TC for a 512-byte client"
n=$(q +tcp +short TXT big.example.com | wc -l)
[ "$n" = 8 ] || fail "big TXT over TCP: $n records"
expect fd00:96::10 +tcp AAAA echo

log "5. malformed packets, a flood and idle TCP connections"
python3 - <<EOF || fail "malformed packets"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
a = ("127.0.0.1", 15053)
s.sendto(b"\x12\x34\x01", a)                                      # short: dropped
s.sendto(b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fxx", a)  # bad name: FORMERR
r, _ = s.recvfrom(4096)
assert r[:2] == b"\xab\xcd" and r[2] & 0x80 and r[3] & 0x0f == 1, r
s.sendto(b"\xab\xce\x10\x00" + b"\x00" * 8, a)                    # opcode STATUS: NOTIMP
r, _ = s.recvfrom(4096)
assert r[:2] == b"\xab\xce" and r[3] & 0x0f == 4, r
for i in range(3000):                                            # a flood of garbage
    s.sendto(struct.pack(">H", i) + b"\x01\x00\x00\x01" + b"\xff" * 40, a)
EOF
conns=$(python3 -c "
import socket
c = []
for i in range(80):
    s = socket.create_connection((\"127.0.0.1\", 15053)); c.append(s)
import time; time.sleep(0.5)
closed = 0
for s in c:
    s.settimeout(0.05)
    try:
        if s.recv(1) == b\"\": closed += 1
    except socket.timeout: pass
    except ConnectionResetError: closed += 1
print(closed)")
[ "$conns" -ge 16 ] || fail "TCP connections over the bound were not closed ($conns)"
kill -0 $zt || fail "ztunnel died"
expect 10.96.0.10 echo

log "6. metrics"
[ "$(metric istio_dns_requests_total request_protocol=\"udp\")" -gt 10 ] || fail "istio_dns_requests_total udp"
[ "$(metric istio_dns_requests_total request_protocol=\"tcp\")" -ge 2 ] || fail "istio_dns_requests_total tcp"
[ "$(metric istio_dns_requests_total source_canonical_service=\"client\")" -gt 10 ] || fail "source label"
up=$(metric istio_dns_upstream_requests_total request_query_type=\"txt\")
[ "$up" -ge 3 ] || fail "istio_dns_upstream_requests_total txt = $up"
[ "$(metric istio_dns_upstream_request_duration_seconds_count request_query_type=\"a\")" -ge 2 ] || fail "duration histogram"
[ "$(metric istio_dns_upstream_failures_total request_query_type)" = 0 ] || fail "failures before the upstream went away"

log "7. upstream gone: SERVFAIL, counted as a failure; local names still answered"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
grep -q "status: SERVFAIL" <<<"$(q ext.example.com)" || fail "no SERVFAIL without upstream"
[ "$(metric istio_dns_upstream_failures_total request_query_type=\"a\")" -ge 1 ] || fail "failure not counted"
expect 10.96.0.10 echo
kill -TERM $zt; rc=0; wait $zt || rc=$?
[ $rc = 0 ] || [ $rc = 143 ] || fail "ztunnel exit $rc"
! grep -q "ERROR: AddressSanitizer\|runtime error:" "$WORK/zt.log" || fail "sanitizer report"
log "dns_proxy: all checks passed"
'
