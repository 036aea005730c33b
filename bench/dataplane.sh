#!/usr/bin/env bash
# The data plane's cost against the tools a user would pick instead, in one veth lab and one
# run (root): direct TCP between two uncaptured pods (baseline), a stunnel pair and an HAProxy
# pair (TCP mode, TLS 1.3, client certificate required and verified both ways; one proxy in
# the client pod, one in the server pod), and the ztunnel pair (ztunnel -> HBONE -> ztunnel).
#   bench/dataplane.sh [--quick|--smoke] [--mib N] [--out DIR] [--no-scaling] [--no-idle]
# Prints the paths table (bulk echo MB/s, proxy CPU s per GiB, 64 B round trip p50/p99 and
# the latency added to direct TCP, short connections/s) with ztunnel / best peer, then the
# scaling table (ZTUNNEL_WORKER_THREADS 1, 2, 4 x 1, 4, 16 parallel bulk connections), 1,000
# concurrent request/response tunnels, and RSS per idle tunneled connection at 10,000. Writes
# DIR/dataplane.json and, with gnuplot, DIR/dataplane-*.png (DIR: build/bench). The peers come
# from `scripts/deps.sh --bench`; without them their columns say so. Not part of `make test`
# (tests/e2e/bench_smoke.sh runs --smoke).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export BUILD_DIR=${BUILD_DIR:-$(cd "$here/.." && pwd)/build}

quick= scaling=1 idle=1 out=$BUILD_DIR/bench mib=256 mib_set=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--smoke) quick=smoke ;;
	--mib) mib=$2; mib_set=$2; shift ;;
	--out) out=$2; shift ;;
	--no-scaling) scaling= ;;
	--no-idle) idle= ;;
	-h | --help) sed -n '2,13p' "$0"; exit 0 ;;
	*) echo "dataplane.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" -eq 0 ] || { echo "dataplane.sh: needs root (network namespaces)" >&2; exit 2; }
if [ "$quick" = smoke ]; then # every step once, smallest sizes (tests/e2e/bench_smoke.sh)
	mib=2 reqs=50 shorts=20 many=10 many_reqs=2 idle_n=20 threads=(1) pars=(1 2)
elif [ -n "$quick" ]; then
	mib=${mib_set:-8} reqs=300 shorts=100 many=50 many_reqs=5 idle_n=200 threads=(1 2) pars=(1 4 16)
else
	reqs=5000 shorts=500 many=1000 many_reqs=20 idle_n=10000 threads=(1 2 4) pars=(1 4 16)
fi
[ -n "${SKIP_BUILD:-}" ] || make --no-print-directory -C "$here/.." -j2 >/dev/null
ulimit -n "$(ulimit -Hn)" # 10,000 idle connections need ~10,100 descriptors per process
mkdir -p "$out"
source "$here/../tests/e2e/lib/harness.sh"
RES=$WORK/results.jsonl
: > "$RES"
note() { jq -cn --arg k "$1" --arg v "$2" '{note: $k, text: $v}' >> "$RES"; }
# rec SECTION PATH KEY=JSON...: one result line.
rec() {
	local sec=$1 path=$2 args=() kv; shift 2
	for kv in "$@"; do args+=(--argjson "${kv%%=*}" "${kv#*=}"); done
	jq -cn --arg section "$sec" --arg path "$path" "${args[@]}" '$ARGS.named' >> "$RES"
}
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
threads_of() { awk '/^Threads/ {print $2}' "/proc/$1/status"; }
client() { # POD TARGET ARGS...: the client's JSON line (on failure, why goes to stderr)
	local pod=$1 target=$2 j try; shift 2
	# stunnel does not carry a half-close: on the client's FIN it may end the TLS session
	# before the last echoed bytes came back. A peer run that loses them is run again.
	for try in 1 2 3; do
		j=$(lab_client "$pod" --connect "$target" --timeout 60s "$@") && { echo "$j"; return; }
		case $target in 127.0.0.1:900[12]) echo "retrying $target $* ($j)" >&2 ;; *) break ;; esac
	done
	fail "client $pod -> $target $*: $j" >&2
}

# ---- the lab: the e2e mesh (tests/e2e/data/mesh.yaml) with four pods in use ----------------
cp "$ROOT/tests/e2e/data/mesh.yaml" "$WORK/mesh.yaml"
lab_underlay
lab_pod client 10.77.0.11   # ztunnel path, captured
lab_pod server-4 10.77.0.24 # ztunnel path, captured
lab_pod raw 10.77.0.61      # direct and peer paths: client side
lab_pod plain 10.77.0.41    # direct and peer paths: server side
lab_istiod "$WORK/mesh.yaml"
lab_capture client
lab_capture server-4
zt_start() { # WORKER_THREADS
	lab_ztunnel client node-a default client RUST_LOG=warn ZTUNNEL_WORKER_THREADS="$1"
	lab_ztunnel server-4 node-b default server RUST_LOG=warn ZTUNNEL_WORKER_THREADS="$1"
	lab_wait_ready client
	lab_wait_ready server-4
}
zt_stop() {
	local p
	for p in "$ZT_PID_client" "$ZT_PID_server_4"; do kill -TERM "$p"; wait "$p" 2>/dev/null || true; done
}
zt_start 2
lab_server server-4 8080
lab_server plain 8080

# ---- the peers: certificates from one test root, each side verifying the other ------------
peers=()
"$ROOT/scripts/certs.sh" root "$WORK/pki" "Bench Root"
"$ROOT/scripts/certs.sh" leaf "$WORK/pki" client spiffe://cluster.local/ns/default/sa/raw 2
"$ROOT/scripts/certs.sh" leaf "$WORK/pki" server spiffe://cluster.local/ns/default/sa/plain 2
for n in client server; do cat "$WORK/pki/$n-cert.pem" "$WORK/pki/$n-key.pem" > "$WORK/pki/$n.pem"; done
if command -v stunnel4 > /dev/null; then
	for side in client server; do
		{
			echo "foreground = yes"; echo "pid ="; echo "debug = 3"
			echo "[bench]"
			if [ $side = client ]; then
				echo "client = yes"; echo "accept = 127.0.0.1:9001"; echo "connect = 10.77.0.41:9443"
			else
				echo "accept = 10.77.0.41:9443"; echo "connect = 127.0.0.1:8080"
			fi
			echo "cert = $WORK/pki/$side-cert.pem"; echo "key = $WORK/pki/$side-key.pem"
			echo "CAfile = $WORK/pki/root-cert.pem"; echo "verifyChain = yes"; echo "requireCert = yes"
			echo "sslVersionMin = TLSv1.3"
		} > "$WORK/stunnel-$side.conf"
	done
	bg plain stunnel-s stunnel4 "$WORK/stunnel-server.conf"; STUNNEL_S=$LAST_PID
	bg raw stunnel-c stunnel4 "$WORK/stunnel-client.conf"; STUNNEL_C=$LAST_PID
	peers+=(stunnel)
else
	note stunnel "stunnel4 not installed (scripts/deps.sh --bench)"
fi
if command -v haproxy > /dev/null; then
	hacommon="global
	log stdout format raw local0 err
defaults
	mode tcp
	timeout connect 10s
	timeout client 120s
	timeout server 120s"
	printf '%s\nfrontend in\n\tbind 10.77.0.41:9444 ssl crt %s ca-file %s verify required ssl-min-ver TLSv1.3\n\tdefault_backend echo\nbackend echo\n\tserver s 127.0.0.1:8080\n' \
		"$hacommon" "$WORK/pki/server.pem" "$WORK/pki/root-cert.pem" > "$WORK/haproxy-server.cfg"
	printf '%s\nfrontend in\n\tbind 127.0.0.1:9002\n\tdefault_backend up\nbackend up\n\tserver s 10.77.0.41:9444 ssl crt %s ca-file %s verify required ssl-min-ver TLSv1.3\n' \
		"$hacommon" "$WORK/pki/client.pem" "$WORK/pki/root-cert.pem" > "$WORK/haproxy-client.cfg"
	bg plain haproxy-s haproxy -db -f "$WORK/haproxy-server.cfg"; HAPROXY_S=$LAST_PID
	bg raw haproxy-c haproxy -db -f "$WORK/haproxy-client.cfg"; HAPROXY_C=$LAST_PID
	peers+=(haproxy)
else
	note haproxy "haproxy not installed (scripts/deps.sh --bench)"
fi
# Each peer path must carry an echo before it is measured (and the TLS handshake succeed).
for p in "${peers[@]}"; do
	port=$([ "$p" = stunnel ] && echo 9001 || echo 9002)
	wait_for 20 lab_client raw --connect "127.0.0.1:$port" --bytes 1KiB ||
		fail "$p pair does not carry traffic: $(lab_client raw --connect "127.0.0.1:$port" --bytes 1KiB 2>&1 | tail -1)"
done
# The handshake must fail without a client certificate (requireCert / verify required).
# s_client PORT [ARGS]: a TLS 1.3 client straight to the server-side proxy; prints what came back.
s_client() {
	local port=$1; shift
	nsx raw sh -c "(echo ping; sleep 1) | timeout 3 openssl s_client -quiet -tls1_3 \
		-connect 10.77.0.41:$port -CAfile $WORK/pki/root-cert.pem $* 2>/dev/null" || true
}
for p in "${peers[@]}"; do
	port=$([ "$p" = stunnel ] && echo 9443 || echo 9444)
	s_client "$port" -cert "$WORK/pki/client-cert.pem" -key "$WORK/pki/client-key.pem" |
		grep -q '^ping$' || fail "$p server refused a client with a valid certificate"
	! s_client "$port" | grep -q '^ping$' || fail "$p server accepted a client without a certificate"
done

echo "kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); bulk ${mib} MiB," \
	"$reqs round trips, $shorts short connections${quick:+ (quick mode)}"
rec meta run "load=[$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)]" "cpus=$(nproc)" "mib=$mib" \
	"requests=$reqs" "short_connections=$shorts" "quick=$([ -n "$quick" ] && echo true || echo false)"

# ---- RSS per idle tunneled connection (first, before other traffic grows the heaps) -----------
if [ -n "$idle" ]; then
	r0c=$(rss "$ZT_PID_client") r0s=$(rss "$ZT_PID_server_4")
	mkfifo "$WORK/hold.in"
	nsx client python3 "$here/lib/hold.py" 10.77.0.24:8080 "$idle_n" < "$WORK/hold.in" > "$WORK/hold.out" 2> "$WORK/hold.err" &
	hold=$!
	exec 9> "$WORK/hold.in"
	wait_for 300 grep -q '^holding' "$WORK/hold.out" || fail "idle connections: $(cat "$WORK/hold.err")"
	sleep 1
	r1c=$(rss "$ZT_PID_client") r1s=$(rss "$ZT_PID_server_4")
	exec 9>&-
	wait "$hold" || fail "idle holder: $(cat "$WORK/hold.err")"
	rec idle ztunnel "connections=$idle_n" "client_rss_kib=[$r0c,$r1c]" "server_rss_kib=[$r0s,$r1s]"
fi

# ---- paths: direct, stunnel, haproxy, ztunnel ------------------------------------------------
measure() { # PATH CLIENT_POD TARGET PID...
	local path=$1 pod=$2 target=$3 c0 c1 j; shift 3
	c0=$(cpu_ticks "$@")
	j=$(client "$pod" "$target" --bytes "${mib}MiB")
	c1=$(cpu_ticks "$@")
	rec paths "$path" "bulk=$j" "cpu_ticks=$((c1 - c0))" "hz=$(getconf CLK_TCK)"
	j=$(client "$pod" "$target" --requests "$reqs" --size 64)
	rec paths "$path" "rr=$j"
	j=$(client "$pod" "$target" --connections "$shorts" --concurrency $((shorts < 50 ? shorts : 50)) --bytes 64)
	rec paths "$path" "short=$j"
}
measure direct raw 10.77.0.41:8080
for p in "${peers[@]}"; do
	if [ "$p" = stunnel ]; then measure stunnel raw 127.0.0.1:9001 "$STUNNEL_C" "$STUNNEL_S"
	else measure haproxy raw 127.0.0.1:9002 "$HAPROXY_C" "$HAPROXY_S"; fi
done
measure ztunnel client 10.77.0.24:8080 "$ZT_PID_client" "$ZT_PID_server_4"

# ---- 1,000 concurrent tunnels doing request/response -----------------------------------------
j=$(client raw 10.77.0.41:8080 --connections "$many" --requests "$many_reqs" --size 64)
rec many direct "rr=$j"
j=$(client client 10.77.0.24:8080 --connections "$many" --requests "$many_reqs" --size 64)
rec many ztunnel "rr=$j"

# ---- scaling: worker threads x parallel bulk connections ----------------------------------------
if [ -n "$scaling" ]; then
	for t in "${threads[@]}"; do
		zt_stop
		zt_start "$t"
		for c in "${pars[@]}"; do
			c0=$(cpu_ticks "$ZT_PID_client" "$ZT_PID_server_4")
			j=$(client client 10.77.0.24:8080 --connections "$c" --bytes "$((mib / c > 0 ? mib / c : 1))MiB")
			c1=$(cpu_ticks "$ZT_PID_client" "$ZT_PID_server_4")
			rec scaling ztunnel "workers=$t" "parallel=$c" "bulk=$j" "cpu_ticks=$((c1 - c0))" \
				"hz=$(getconf CLK_TCK)" "threads_seen=$(threads_of "$ZT_PID_client")"
		done
	done
fi

lab_finish
python3 "$here/lib/dataplane_report.py" "$RES" "$out"
