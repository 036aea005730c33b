#!/usr/bin/env bash
# sim-workload serve --mode http on loopback: HTTP/1.1 keep-alive answers naming what each
# request carried, h2c with prior knowledge on the same port, and bad input: a malformed head
# gets 400 and a close, an oversized head 431.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(cd "${BUILD_DIR:-build}/bin" && pwd)
dir=$(mktemp -d)
srv=
cleanup() {
	[ -z "$srv" ] || kill "$srv" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -n 5 "$dir/srv.err" 2>/dev/null || true; exit 1; }
wait_for() {
	local n=$(($1 * 5)); shift
	for _ in $(seq "$n"); do "$@" > /dev/null 2>&1 && return 0; sleep 0.2; done
	return 1
}

"$bin/sim-workload" serve --listen 127.0.0.1:0 --mode http --name web > "$dir/srv.out" 2> "$dir/srv.err" &
srv=$!
wait_for 10 grep -q listening "$dir/srv.out" || fail "no listener"
addr=$(sed -n 's/^listening //p' "$dir/srv.out")

echo "1. HTTP/1.1: what the request carried, two requests on one connection"
out=$(curl -s -H 'X-User: alice' "http://$addr/items/1?x=2" "http://$addr/two" -w 'n=%{num_connects}\n')
grep -q '^hello from web$' <<<"$out" || fail "banner: $out"
grep -q '^method=GET$' <<<"$out" && grep -q '^path=/items/1?x=2$' <<<"$out" || fail "request line: $out"
grep -q '^header x-user: alice$' <<<"$out" || fail "headers: $out"
grep -q '^source=127.0.0.1:' <<<"$out" || fail "source: $out"
[ "$(grep -c '^n=' <<<"$out")" = 2 ] && [ "$(grep -c '^n=1' <<<"$out")" = 1 ] || fail "keep-alive: $out"

echo "2. h2c with prior knowledge"
out=$(curl -s --http2-prior-knowledge -X POST -d 'x' "http://$addr/h2")
grep -q '^protocol=HTTP/2$' <<<"$out" && grep -q '^method=POST$' <<<"$out" &&
	grep -q '^path=/h2$' <<<"$out" || fail "h2c: $out"

echo "3. malformed head: 400 and close"
out=$(python3 - "$addr" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\nGET /again HTTP/1.1\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
print(data.decode(errors="replace").replace("\r", ""))
PY
)
[ "$(grep -c '^HTTP/1.1' <<<"$out")" = 1 ] && grep -q '^HTTP/1.1 400 Bad Request' <<<"$out" ||
	fail "malformed: $out"

echo "4. oversized head: 431"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-big: $(head -c 70000 /dev/zero | tr '\0' a)" "http://$addr/")
[ "$code" = 431 ] || fail "oversized: $code"

kill "$srv"
wait "$srv" || fail "exit status $?"
srv=
echo "sim_workload_http: ok"
