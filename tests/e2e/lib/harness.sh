# Network-namespace harness for the end-to-end tests (sourced, root only). Everything lives in
# namespaces named "$LAB-*": an underlay namespace with a bridge and fake-istiod, one namespace
# per pod wired to the bridge by a veth pair created from inside the underlay (the root network
# namespace is never touched). Each meshed pod runs its own ztunnel (PROXY_MODE=dedicated)
# with the in-pod REDIRECT rules of spec §1.3 in its namespace. lab_cleanup kills every process
# started here and deletes every namespace, also when a test fails (it is the EXIT trap).
# fail, nsx (traced to $WORK/nsx.trace), wait_for and ns_add come from netns-lab/lib.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BIN=$(cd "${BUILD_DIR:-$ROOT/build}/bin" && pwd)
TBIN=$(cd "${BUILD_DIR:-$ROOT/build}/tests" && pwd)
LAB=${LAB:-zte$$}
WORK=$(mktemp -d "/tmp/$LAB.XXXXXX")
UL=$LAB-ul
UL_IP=10.77.0.254
PIDS=()

source "$ROOT/netns-lab/lib.sh"
NSX_PREFIX=$LAB-
NSX_TRACE=$WORK/nsx.trace
DIE_PREFIX=FAIL

lab_log() { echo "[$(date +%T)] $*"; }
# on_die: what a failing test shows besides its message (run by die/fail).
on_die() {
	local f
	for f in "$WORK"/*.err; do
		[ -e "$f" ] || continue
		echo "--- $(basename "$f"):"; tail -n 15 "$f"
	done
	echo "--- last commands run in namespaces:"; tail -n 5 "$NSX_TRACE" 2> /dev/null || true
}

# lab_finish: stops every process still running with SIGTERM and fails if one then exits with
# an error, or a sanitizer reported anything (the end of a passing test). Processes that ended
# earlier on their own were the test's to check.
lab_finish() {
	local p rc bad= running=()
	for p in "${PIDS[@]}"; do
		if kill -0 "$p" 2>/dev/null; then running+=("$p"); else wait "$p" 2>/dev/null || true; fi
	done
	for p in "${running[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${running[@]}"; do
		rc=0; wait "$p" 2>/dev/null || rc=$?
		[ "$rc" = 0 ] || [ "$rc" = 143 ] || bad="$bad $p:$rc"
	done
	PIDS=()
	if grep -l 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$WORK"/*.err 2>/dev/null; then
		fail "sanitizer reports above"
	fi
	[ -z "$bad" ] || fail "processes exited with errors (pid:status):$bad"
}

lab_cleanup() {
	local p ns
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	for ns in "${LIB_NSES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
	[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap lab_cleanup EXIT

# bg NS NAME CMD...: starts CMD in namespace NS in the background, output in $WORK/NAME.{out,err}.
bg() {
	local ns=$1 name=$2; shift 2
	: > "$WORK/$name.out"
	nsx_trace "$LAB-$ns" "$@"
	ip netns exec "$LAB-$ns" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
	PIDS+=($!)
	LAST_PID=$!
}

lab_underlay() {
	ns_add ul
	nsx ul ip link add br0 type bridge
	nsx ul ip addr add "$UL_IP/24" dev br0
	nsx ul ip link set br0 up
	nsx ul sysctl -qw net.ipv4.ip_forward=1
}

# lab_pod NAME IP: a pod namespace on the bridge with eth0 = IP/24 and a default route.
lab_pod() {
	local name=$1 ip=$2
	ns_add "$name"
	veth_into ul "v-$name" "$name"
	nsx ul ip link set "v-$name" master br0
	nsx "$name" ip addr add "$ip/24" dev eth0
	nsx "$name" ip link set eth0 up
	nsx "$name" ip route add default via "$UL_IP"
}

# lab_capture NAME: the in-pod redirection of spec §1.3 (REDIRECT form) in pod NAME.
lab_capture() {
	local n=$1
	nsx "$n" iptables -t nat -N ISTIO_PRERT
	nsx "$n" iptables -t nat -N ISTIO_OUTPUT
	nsx "$n" iptables -t nat -A PREROUTING -j ISTIO_PRERT
	nsx "$n" iptables -t nat -A OUTPUT -j ISTIO_OUTPUT
	nsx "$n" iptables -t nat -A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp ! --dport 15008 \
		-m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006
	nsx "$n" iptables -t nat -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT
	# This harness runs each pod's ztunnel inside the pod: its control-plane connections
	# (which in-pod mode makes from ztunnel's own namespace) are not captured.
	nsx "$n" iptables -t nat -A ISTIO_OUTPUT -d "$UL_IP" -p tcp --dport 15012 -j ACCEPT
	nsx "$n" iptables -t nat -A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp \
		-m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001
}

# lab_istiod MESH.yaml [ADDRS]: fake-istiod in the underlay on $UL_IP:15012.
lab_istiod() {
	local args=(serve --config "$1" --listen "$UL_IP:15012" --ca-dir "$WORK/ca" --cert-ttl 1h)
	[ -z "${2:-}" ] || args+=(--addresses "$2")
	bg ul istiod "$BIN/fake-istiod" "${args[@]}"
	ISTIOD_PID=$LAST_PID
	wait_for 10 grep -q '^listening' "$WORK/istiod.out" || fail "fake-istiod did not start"
}

# lab_ztunnel POD NODE NS SA [ENV=VALUE...]: a dedicated-mode ztunnel inside pod POD.
lab_ztunnel() {
	local pod=$1 node=$2 ns=$3 sa=$4; shift 4
	"$BIN/fake-istiod" token --ca-dir "$WORK/ca" --node "$node" --namespace "$ns" \
		--service-account "$sa" > "$WORK/$pod.token"
	bg "$pod" "zt-$pod" env XDS_ADDRESS="https://$UL_IP:15012" CA_ADDRESS="https://$UL_IP:15012" \
		XDS_ROOT_CA="$WORK/ca/root-cert.pem" CA_ROOT_CA="$WORK/ca/root-cert.pem" \
		AUTH_TOKEN="$WORK/$pod.token" NODE_NAME="$node" PROXY_MODE=dedicated \
		PROXY_WORKLOAD_INFO="$ns/$pod/$sa" PACKET_MARK=1337 ENABLE_ORIG_SRC=false \
		ADMIN_ADDR=127.0.0.1:15000 READINESS_ADDR=127.0.0.1:15021 STATS_ADDR=127.0.0.1:15020 \
		RUST_LOG="${ZT_LOG:-info}" "$@" "$BIN/ztunnel"
	eval "ZT_PID_${pod//-/_}=$LAST_PID"
}

lab_ready() { nsx "$1" curl -sf "127.0.0.1:15021/healthz/ready" > /dev/null; }
lab_wait_ready() {
	wait_for 20 lab_ready "$1" ||
		fail "ztunnel nsx $1 not ready: $(nsx "$1" curl -s 127.0.0.1:15021/healthz/ready || true)"
}
lab_dump() { nsx "$1" curl -sf "127.0.0.1:15000/config_dump"; }
lab_metrics() { nsx "$1" curl -sf "127.0.0.1:15020/metrics"; }

# lab_server POD PORT [MODE]: a sim-workload server in pod POD.
lab_server() {
	bg "$1" "srv-$1-$2" "$BIN/sim-workload" serve --listen "$2" --mode "${3:-echo}" --name "$1"
	wait_for 10 grep -q '^listening' "$WORK/srv-$1-$2.out" || fail "server $1:$2 did not start"
}

# lab_client POD ARGS...: one sim-workload client run in pod POD; prints its JSON line.
lab_client() { local pod=$1; shift; nsx "$pod" "$BIN/sim-workload" client "$@"; }
