#!/usr/bin/env bash
# The demo mesh with each node's ztunnel run from the container image as deploy/'s DaemonSet
# describes it (netns-lab/lab up --ztunnel-image): the image is built (or reused when its
# inputs are unchanged), every demo flow gets its expected verdict, the containers carry the
# manifest's env, user, capabilities, read-only root and mounts, the manifest's readiness probe
# and prometheus port answer from the container; bad input (a missing image, a manifest naming
# an unknown variable) stops lab up with one line; lab down leaves no container, namespace or
# process, and ztunnel's logs carry no sanitizer report.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# wait_for (and the defaults of die/fail/nsx, which this script overrides below).
source "$ROOT/netns-lab/lib.sh"
export BUILD_DIR=${BUILD_DIR:-$ROOT/build}
LAB=$ROOT/netns-lab/lab
NAME=i$((RANDOM % 100000))
STATE=/run/netns-lab/$NAME
work=$(mktemp -d)
trap '"$LAB" down --name "$NAME" > /dev/null 2>&1 || true; rm -rf "$work"' EXIT
log() { echo "[$(date +%T)] $*"; }
fail() {
	echo "FAIL: $*"
	for c in ztunnel-node-1 ztunnel-node-2; do
		echo "--- $c:"; tail -n 12 "$STATE/logs/$c.log" 2>/dev/null || true
	done
	exit 1
}

log "image (built, or reused when its inputs are unchanged)"
img=$("$ROOT/scripts/image.sh" ztunnel) || fail "scripts/image.sh"
podman image exists "$img" || fail "image $img not there after the build"
commit=$("$BUILD_DIR/bin/ztunnel" version | sed -n 's/.*GitRevision:"\([^"]*\)".*/\1/p')
[ "$(podman image inspect --format '{{index .Labels "org.opencontainers.image.revision"}}' "$img")" = "$commit" ] ||
	fail "image label revision is not $commit"
out=$(podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=64:64 --network none \
	"$img" version) || fail "ztunnel version in the image: $out"
grep -q "GitRevision:\"$commit\"" <<<"$out" || fail "the image's binary is not this build: $out"

log "the toolkit image: each program runs in it, as the non-root user"
tk=$("$ROOT/scripts/image.sh" toolkit) || fail "scripts/image.sh toolkit"
trun() { podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=64:64 --network none \
	-v "$ROOT/tests/data/mesh:/mesh:ro" "$tk" "$@"; }
for b in fake-istiod sim-workload sim-cni hbone-client; do trun "$b" --help > /dev/null 2>&1 || fail "$b --help in $tk"; done
[ "$(podman image inspect --format '{{.User}}' "$tk")" = 65532:65532 ] ||
	fail "toolkit user is not 65532"
out=$(trun fake-istiod check --config /mesh/sample.yaml 2>&1) || fail "fake-istiod check in $tk: $out"
grep -q 'Kubernetes//Pod/default/sleep' <<<"$out" || fail "fake-istiod check in $tk: $out"

log "bad input: a missing image, a manifest naming an unknown variable"
rc=0; out=$("$LAB" up "$ROOT/netns-lab/topologies/demo.yaml" --name "$NAME" \
	--ztunnel-image localhost/ztunnel:no-such-tag 2>&1) || rc=$?
# One line from the lab (iproute2 may add its own notes while other namespaces come and go).
[ "$rc" != 0 ] && [ "$(grep -c '^lab: ' <<<"$out")" = 1 ] && grep -q "^lab: image .* not found: build it with make image" <<<"$out" ||
	fail "missing image: exit $rc: $out"
sed 's/name: RUST_BACKTRACE/name: RUST_BACKTRAC/' "$ROOT/deploy/ztunnel.yaml" > "$work/bad.yaml"
rc=0; out=$(ZTUNNEL_MANIFEST=$work/bad.yaml "$LAB" up "$ROOT/netns-lab/topologies/demo.yaml" \
	--name "$NAME" --ztunnel-image "$img" 2>&1) || rc=$?
[ "$rc" != 0 ] && [ "$(grep -c '^lab: ' <<<"$out")" = 1 ] && grep -q "^lab: .*env RUST_BACKTRAC is not a variable ztunnel knows" <<<"$out" ||
	fail "unknown variable: exit $rc: $out"
[ -z "$(ip netns list | grep "^$NAME-" || true)" ] || fail "a refused lab up left namespaces"

log "the demo with ztunnel from $img"
out=$(NAME=$NAME KEEP=1 ZTUNNEL_IMAGE=$img "$ROOT/netns-lab/demo.sh" 2>&1) || fail "demo: $out"
echo "$out" | sed -n '/^FLOW/,/expected verdict/p'
grep -q "every flow got the expected verdict" <<<"$out" || fail "demo verdicts: $out"
[ "$(grep -c 'HBONE (mTLS :15008)' <<<"$out")" -ge 2 ] || fail "no HBONE flows: $out"

log "each node's ztunnel is the manifest's container, in the node's namespace"
probe=$("$ROOT/deploy/manifest.py" probe "$ROOT/deploy/ztunnel.yaml")
read -r probe_port probe_path <<<"$(sed -n 1p <<<"$probe")"
stats_port=$(sed -n 2p <<<"$probe")
for n in node-1 node-2; do
	c=$NAME-zt-$n
	[ "$(podman inspect --format '{{.State.Running}} {{.ImageName}}' "$c")" = "true $img" ] ||
		fail "$c is not running from $img"
	pid=$(podman inspect --format '{{.State.Pid}}' "$c")
	[ "$(readlink "/proc/$pid/ns/net")" = "$(ip netns exec "$NAME-n-$n" readlink /proc/self/ns/net)" ] ||
		fail "$c is not in $NAME-n-$n"
	[ "$(readlink "/proc/$pid/exe")" = /usr/local/bin/ztunnel ] || fail "$c runs $(readlink "/proc/$pid/exe")"
	env=$(tr '\0' '\n' < "/proc/$pid/environ")
	for kv in NODE_NAME=$n POD_NAME=ztunnel-$n POD_NAMESPACE=istio-system SERVICE_ACCOUNT=ztunnel \
		XDS_ADDRESS=istiod.istio-system.svc:15012 ISTIO_META_ENABLE_HBONE=true; do
		grep -qxF "$kv" <<<"$env" || fail "$c lacks $kv in its environment"
	done
	[ "$(awk '/^Uid:/ {print $2} /^Gid:/ {print $2}' "/proc/$pid/status" | paste -sd:)" = 0:1337 ] ||
		fail "$c does not run as 0:1337"
	# CapEff: NET_ADMIN (12), NET_RAW (13), SYS_ADMIN (21) and nothing else.
	[ "$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")" = 0000000000203000 ] ||
		fail "$c capabilities: $(grep Cap "/proc/$pid/status")"
	[ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$c")" = true ] || fail "$c root is writable"
	mounts=$(podman inspect --format '{{range .Mounts}}{{.Destination}} {{end}}' "$c")
	for m in /var/run/secrets/istio /var/run/secrets/tokens/istio-token /var/run/ztunnel; do
		grep -qw -- "$m" <<<"$mounts" || fail "$c lacks the mount $m: $mounts"
	done
	code=$(ip netns exec "$NAME-n-$n" curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$probe_port$probe_path")
	[ "$code" = 200 ] || fail "$c readiness probe $probe_port$probe_path: $code"
	metrics=$(ip netns exec "$NAME-n-$n" curl -sf "127.0.0.1:$stats_port/metrics") || fail "$c metrics on $stats_port"
	grep -q '^istio_tcp_connections_opened_total' <<<"$metrics" || fail "$c metrics on $stats_port: no TCP counters"
done

rc=0; out=$("$LAB" upgrade node-1 --name "$NAME" 2>&1) || rc=$?
[ "$rc" != 0 ] && grep -q "^lab: lab upgrade of a ztunnel from an image" <<<"$out" || fail "lab upgrade: exit $rc: $out"

log "lab down leaves no container, namespace or process (after a clean stop)"
for n in node-1 node-2; do "$LAB" stop "ztunnel-$n" --name "$NAME"; done
wait_for 20 sh -c "[ -z \"\$(podman ps -q --filter label=netns-lab=$NAME)\" ]" ||
	fail "containers still running after lab stop"
for n in node-1 node-2; do
	grep -q "draining on SIGTERM" "$STATE/logs/ztunnel-$n.log" || fail "ztunnel on $n did not get SIGTERM through podman"
done
if grep -l 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$STATE"/logs/ztunnel-*.log; then
	fail "sanitizer reports in the logs above"
fi
"$LAB" down --name "$NAME" > /dev/null
[ -z "$(podman ps -aq --filter "label=netns-lab=$NAME")" ] || fail "containers left: $(podman ps -a)"
[ -z "$(ip netns list | grep "^$NAME-" || true)" ] || fail "namespaces left: $(ip netns list | grep "^$NAME-")"
[ ! -e "$STATE" ] || fail "state directory left"
none_left() { ! pgrep -f "$NAME-zt-|$STATE" > /dev/null; }
wait_for 10 none_left || fail "processes left: $(pgrep -af "$NAME-zt-|$STATE")"
log PASS
