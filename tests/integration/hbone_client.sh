#!/usr/bin/env bash
# hbone-client against the CONNECT echo server of h2peer on loopback: 1 MiB of random bytes
# echoed byte for byte (stdin from a file and from a pipe), non-200 answers give exit 2 with
# the status, a server outside --expect gives exit 1 naming its identity, bad flags give a
# usage error naming the flag, a refused TCP connect is reported as such.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
client=$build/bin/hbone-client
peer=$build/tests/h2peer
[ -x "$client" ] && [ -x "$peer" ] || { echo "FAIL: $client or $peer not built"; exit 1; }
dir=$(mktemp -d)
srv_pid=
cleanup() { [ -z "$srv_pid" ] || kill "$srv_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

td=spiffe://cluster.local/ns/default/sa
scripts/certs.sh root "$dir"
scripts/certs.sh leaf "$dir" server "$td/server"
scripts/certs.sh leaf "$dir" client "$td/client"

: > "$dir/server.out"
"$peer" serve 127.0.0.1:0 "$dir" server > "$dir/server.out" 2> "$dir/server.err" &
srv_pid=$!
addr=
for _ in $(seq 200); do
	addr=$(awk '/^listening / {print $2; exit}' "$dir/server.out")
	[ -z "$addr" ] || break
	kill -0 "$srv_pid" 2>/dev/null || break
	sleep 0.05
done
[ -n "$addr" ] || { echo "FAIL: server did not start"; cat "$dir/server.err"; exit 1; }
echo "server on $addr"

creds=(--cert "$dir/client-cert.pem" --key "$dir/client-key.pem" --roots "$dir/root-cert.pem")

# Runs hbone-client with the given arguments, stdin from $in (default /dev/null); sets $rc,
# leaves stdout in $dir/out and stderr in $dir/err.
run() {
	local in=${in:-/dev/null}
	echo "+ hbone-client $*"
	set +e
	timeout 30 "$client" "$@" < "$in" > "$dir/out" 2> "$dir/err"
	rc=$?
	set -e
	sed 's/^/    /' "$dir/err"
}
expect_rc() { [ "$rc" -eq "$1" ] || { echo "FAIL: exit $rc, want $1"; exit 1; }; }
expect_err() { grep -q -- "$1" "$dir/err" || { echo "FAIL: '$1' not on stderr"; exit 1; }; }

echo "== echo of 1 MiB of random bytes"
head -c 1048576 /dev/urandom > "$dir/data"
in=$dir/data run "${creds[@]}" --expect "$td/server" --connect "$addr" --authority "$addr"
expect_rc 0
expect_err "^status: 200$"
expect_err "^peer: $td/server$"
cmp "$dir/data" "$dir/out" || { echo "FAIL: echo differs"; exit 1; }

echo "== the same through pipes, with extra headers and several acceptable identities"
set +e
cat "$dir/data" | timeout 30 "$client" "${creds[@]}" --expect "$td/other,$td/server" \
	--connect "$addr" --authority "$addr" --header x-test=1 --header baggage=k8s.pod.name=p \
	--timeout 5s 2> "$dir/err" | cat > "$dir/out"
rc=${PIPESTATUS[1]}
set -e
expect_rc 0
cmp "$dir/data" "$dir/out" || { echo "FAIL: piped echo differs"; exit 1; }

echo "== an empty stdin half-closes at once and the tunnel still completes"
run "${creds[@]}" --expect "$td/server" --connect "$addr" --authority "$addr"
expect_rc 0
[ ! -s "$dir/out" ] || { echo "FAIL: unexpected output"; exit 1; }

echo "== non-200 answers exit 2 and print the status"
run "${creds[@]}" --expect "$td/server" --connect "$addr" --authority 127.0.0.1:15008
expect_rc 2
expect_err "^status: 503$"
run "${creds[@]}" --expect "$td/server" --connect "$addr" --authority 10.1.2.3:80
expect_rc 2
expect_err "^status: 400$"
grep -q "refused CONNECT: 400 ip mismatch: 10.1.2.3 != 127.0.0.1" "$dir/server.err" ||
	{ echo "FAIL: server did not log the mismatch"; exit 1; }

echo "== a server outside --expect is refused, naming the identity it proved"
run "${creds[@]}" --expect "$td/expected" --connect "$addr" --authority "$addr"
expect_rc 1
expect_err "IDENTITY_ERROR"
expect_err "$td/server"

echo "== nothing listening"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run "${creds[@]}" --expect "$td/server" --connect "127.0.0.1:$port" --authority "$addr"
expect_rc 1
expect_err "CONNECT: connect: Connection refused"

echo "== a listener that never answers the TLS handshake: --timeout applies"
python3 -c 'import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True); time.sleep(60)' > "$dir/silent.out" &
silent_pid=$!
for _ in $(seq 100); do [ -s "$dir/silent.out" ] && break; sleep 0.05; done
run "${creds[@]}" --expect "$td/server" --connect "127.0.0.1:$(cat "$dir/silent.out")" \
	--authority "$addr" --timeout 300ms
kill "$silent_pid"
expect_rc 1
expect_err "TLS_FAILURE: TLS handshake timed out after 300 ms"

echo "== bad flags are named"
run "${creds[@]}" --expect "$td/server" --connect "$addr" --authority "$addr" --bogus
expect_rc 1
expect_err "unknown flag --bogus"
run "${creds[@]}" --expect "$td/server" --connect "$addr"
expect_rc 1
expect_err "missing --authority"
run "${creds[@]}" --expect "$td/server" --connect "$addr" --authority
expect_rc 1
expect_err "flag --authority needs a value"
run "${creds[@]}" --expect "$td/server" --connect "localhost:1" --authority "$addr"
expect_rc 1
expect_err "bad --connect 'localhost:1'"
run "${creds[@]}" --expect "not-spiffe" --connect "$addr" --authority "$addr"
expect_rc 1
expect_err "bad --expect 'not-spiffe'"
run "${creds[@]}" --expect "$td/server" --connect "$addr" --authority "no-port"
expect_rc 1
expect_err "bad --authority 'no-port'"
run "${creds[@]}" --expect "$td/server" --connect "$addr" --authority "$addr" --timeout soon
expect_rc 1
expect_err "bad --timeout 'soon'"
run "${creds[@]}" --expect "$td/server" --connect "$addr" --authority "$addr" --header Bad=1
expect_rc 1
expect_err "bad --header 'Bad=1'"
run --cert "$dir/missing.pem" --key "$dir/client-key.pem" --roots "$dir/root-cert.pem" \
	--expect "$td/server" --connect "$addr" --authority "$addr"
expect_rc 1
expect_err "\-\-cert $dir/missing.pem: No such file or directory"

kill -0 "$srv_pid" || { echo "FAIL: server died"; exit 1; }
echo ok
