#!/usr/bin/env bash
# ztunnel's command line as the Helm chart and operators use it: `proxy ztunnel` runs the
# daemon, `version` prints the build info, `help`/--help the variables, anything else exits 2
# with usage; --check-config refuses settings this ztunnel cannot honour and names a bad
# PROXY_CONFIG; at start one warning names the unsupported settings, the open-file limit is
# logged, and SIGTERM ends with the drain line and status 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
zt=$(cd "${BUILD_DIR:-build}/bin" && pwd)/ztunnel
dir=$(mktemp -d)
pid=
cleanup() { [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
rc() { local r=0; "$@" > "$dir/out" 2> "$dir/err" || r=$?; echo "$r"; }
local_env=(env -i PATH="$PATH" XDS_ADDRESS= LOCAL_XDS_PATH=tests/data/local/ztunnel-local.yaml
	FAKE_CA=true PROXY_MODE=dedicated PROXY_WORKLOAD_INFO=default/local/default
	ADMIN_ADDR=127.0.0.1:0 READINESS_ADDR=127.0.0.1:0 STATS_ADDR=127.0.0.1:0)

echo "== version, help, usage"
[ "$(rc "$zt" version)" = 0 ] && grep -q '^version.BuildInfo{Version:"' "$dir/out" || fail "version: $(cat "$dir/out")"
[ "$(rc env ISTIO_META_ISTIO_VERSION=1.99.0 "$zt" version)" = 0 ] && grep -q 'IstioVersion:"1.99.0"' "$dir/out" ||
	fail "version with ISTIO_META_ISTIO_VERSION: $(cat "$dir/out")"
for h in help --help; do
	[ "$(rc "$zt" $h)" = 0 ] || fail "$h exit status"
	grep -q '^ZTUNNEL_WORKER_THREADS  *2 .*worker threads' "$dir/out" || fail "$h does not list ZTUNNEL_WORKER_THREADS"
	grep -q '^PROXY_CONFIG ' "$dir/out" || fail "$h does not list PROXY_CONFIG"
done
[ "$(rc "$zt" proxy ztunnel --bogus)" = 2 ] && grep -q 'unknown argument "--bogus"' "$dir/err" &&
	grep -q '^usage: ztunnel' "$dir/err" || fail "unknown argument: $(cat "$dir/err")"
[ "$(rc "$zt" frobnicate)" = 2 ] || fail "unknown command accepted"

echo "== --check-config"
[ "$(rc "${local_env[@]}" "$zt" proxy ztunnel --check-config)" = 0 ] || fail "check-config: $(cat "$dir/err")"
[ "$(rc "${local_env[@]}" CRL_PATH=/crl.pem "$zt" proxy ztunnel --check-config)" = 2 ] &&
	grep -q 'not supported by this ztunnel: CRL_PATH' "$dir/err" || fail "CRL_PATH accepted: $(cat "$dir/err")"
[ "$(rc "${local_env[@]}" XDS_ON_DEMAND=true "$zt" --check-config)" = 0 ] || fail "XDS_ON_DEMAND refused"
[ "$(rc "${local_env[@]}" 'PROXY_CONFIG=statsPort: [' "$zt" --check-config)" = 2 ] &&
	grep -q 'invalid configuration: PROXY_CONFIG:' "$dir/err" || fail "bad PROXY_CONFIG: $(cat "$dir/err")"
[ "$(rc "${local_env[@]}" CONNECTION_TERMINATION_DEADLINE=soon "$zt" --check-config)" = 2 ] &&
	grep -q 'CONNECTION_TERMINATION_DEADLINE="soon"' "$dir/err" || fail "bad deadline: $(cat "$dir/err")"

echo "== start: one warning, the open-file limit; SIGTERM drains and exits 0"
"${local_env[@]}" XDS_ON_DEMAND=true TLS12_ENABLED=true ZTUNNEL_WORKER_THREADS=4 \
	"$zt" proxy ztunnel > "$dir/run.out" 2> "$dir/run.err" &
pid=$!
for _ in $(seq 50); do grep -q 'proxying default/local' "$dir/run.err" && break; sleep 0.2; done
grep -q 'proxying default/local' "$dir/run.err" || fail "did not start: $(tail -3 "$dir/run.err")"
[ "$(grep -c 'settings not supported' "$dir/run.err")" = 1 ] &&
	grep -q 'settings not supported by this ztunnel, ignored: XDS_ON_DEMAND=true, TLS12_ENABLED=true' "$dir/run.err" ||
	fail "unsupported settings warning: $(grep -i support "$dir/run.err")"
grep -q 'data plane: 4 worker threads' "$dir/run.err" || fail "no worker threads line"
! grep -q 'runs on one thread' "$dir/run.err" || fail "the one-thread warning is still there"
grep -q 'open files limit' "$dir/run.err" || fail "open-file limit not logged"
kill -TERM "$pid"
r=0; wait "$pid" || r=$?; pid=
[ "$r" = 0 ] || fail "exit status $r after SIGTERM"
tail -1 "$dir/run.err" | grep -q 'drained in .* 0 closed at the deadline; exiting' ||
	fail "last line: $(tail -1 "$dir/run.err")"
echo PASS
