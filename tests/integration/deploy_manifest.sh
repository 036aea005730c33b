#!/usr/bin/env bash
# deploy/'s DaemonSet against the ztunnel binary (deploy/manifest.py check): the manifests as
# shipped pass; modified copies fail with one line naming what is wrong (an unknown variable,
# a readiness probe or metrics port the binary does not serve, a socket or token path it does
# not use, an argument or value it rejects); a port moved on both sides passes.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
zt=$build/bin/ztunnel
[ -x "$zt" ] || { echo "FAIL: $zt not built"; exit 1; }
check() { deploy/manifest.py check --ztunnel "$zt" "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

out=$(check deploy/*.yaml 2>&1) || fail "shipped manifests rejected: $out"
echo "$out"

# bad NAME SED-EXPRESSION EXPECTED-TEXT: a modified copy must fail with exactly one line.
bad() {
	local name=$1 expr=$2 want=$3 out rc=0
	sed "$expr" deploy/ztunnel.yaml > "$work/$name.yaml"
	cmp -s deploy/ztunnel.yaml "$work/$name.yaml" && fail "$name: the edit changed nothing"
	out=$(check "$work/$name.yaml" 2>&1) || rc=$?
	[ "$rc" = 1 ] || fail "$name: exit $rc, expected 1: $out"
	[ "$(wc -l <<<"$out")" = 1 ] || fail "$name: expected one line: $out"
	grep -qF -- "$want" <<<"$out" || fail "$name: expected '$want' in: $out"
	echo "ok $name: $out"
}
bad unknown-variable 's/name: RUST_LOG$/name: XDS_ADRESS/' \
	"env XDS_ADRESS is not a variable ztunnel knows: fix or remove it"
bad unknown-prefix 's/name: ISTIO_META_ENABLE_HBONE/name: ISTIO_METADATA_HBONE/' \
	"env ISTIO_METADATA_HBONE is not a variable ztunnel knows"
bad readiness-port 's/port: 15021/port: 15022/' "readinessProbe is 15022/healthz/ready, ztunnel serves readiness on 15021/healthz/ready"
bad readiness-path 's|path: /healthz/ready|path: /ready|' "ztunnel serves readiness on 15021/healthz/ready"
bad metrics-port 's/prometheus.io\/port: "15020"/prometheus.io\/port: "9090"/' "ztunnel serves metrics on 15020"
bad stats-container-port 's/containerPort: 15020/containerPort: 15090/' "containerPort ztunnel-stats is 15090"
bad zds-socket 's|path: /var/run/ztunnel|path: /var/run/zds|; s|mountPath: /var/run/ztunnel|mountPath: /var/run/zds|' \
	"ZDS socket /var/run/ztunnel/ztunnel.sock"
bad token-audience 's/audience: istio-ca/audience: kubernetes/' "AUTH_TOKEN ./var/run/secrets/tokens/istio-token"
bad root-ca 's/name: istio-ca-root-cert/name: kube-root-ca.crt/' "XDS_ROOT_CA and CA_ROOT_CA ./var/run/secrets/istio/root-cert.pem"
bad capabilities '/- SYS_ADMIN/d' "capabilities lack SYS_ADMIN"
bad argument 's/- ztunnel$/- ztunel/' 'rejects the container: ztunnel: unknown argument "ztunel"'
bad value 's/value: "30"/value: "thirty"/' 'TERMINATION_GRACE_PERIOD_SECONDS="thirty"'

# The check follows the binary's effective value: readiness moved by env and probe together.
sed 's/port: 15021/port: 15031/; s/^          env:$/          env:\n            - name: READINESS_ADDR\n              value: "[::]:15031"/' \
	deploy/ztunnel.yaml > "$work/moved.yaml"
out=$(check "$work/moved.yaml" 2>&1) || fail "readiness moved on both sides rejected: $out"
echo "ok moved readiness port"

rc=0; out=$(deploy/manifest.py check --ztunnel "$work/none" deploy/ztunnel.yaml 2>&1) || rc=$?
[ "$rc" = 1 ] && grep -q "run make first" <<<"$out" || fail "missing binary: exit $rc: $out"
echo PASS
