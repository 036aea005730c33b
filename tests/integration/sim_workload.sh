#!/usr/bin/env bash
# sim-workload on loopback: echo of 1 MiB over 4 connections checked byte for byte, limited
# concurrency, request mode latencies, IPv6 and dual-stack listeners, sink and banner servers,
# refused connections, a server killed mid-transfer and a stopped server (bounded by
# --timeout), clean exit on SIGTERM/SIGINT, and bad flags (exit 2 naming the flag).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
sw=$build/bin/sim-workload
[ -x "$sw" ] || { echo "FAIL: $sw not built"; exit 1; }
command -v jq > /dev/null || { echo "FAIL: jq not installed"; exit 1; }
dir=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -CONT "$p" 2> /dev/null || true
		kill -KILL "$p" 2> /dev/null || true
	done
	wait 2> /dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }
# forget PID: the process is gone (waited for); cleanup must not signal its number again.
forget() {
	local p keep=()
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}

# start NAME NLISTEN ARGS...: runs `sim-workload serve ARGS` in the background, waits until it
# printed NLISTEN "listening" lines; sets $pid and $addrs (the listening addresses).
start() {
	local name=$1 n=$2
	shift 2
	echo "+ sim-workload serve $*"
	: > "$dir/$name.out"
	"$sw" serve "$@" > "$dir/$name.out" 2> "$dir/$name.err" &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 200); do
		[ "$(grep -c '^listening ' "$dir/$name.out")" -lt "$n" ] || break
		kill -0 "$pid" 2> /dev/null || break
		sleep 0.05
	done
	addrs=($(awk '/^listening / {print $2}' "$dir/$name.out"))
	[ "${#addrs[@]}" -eq "$n" ] || { cat "$dir/$name.err"; fail "server $name did not start"; }
}

# stop PID SIGNAL: sends the signal and checks the server exits 0 promptly.
stop() {
	local p=$1 rc=0
	kill "-$2" "$p"
	for _ in $(seq 200); do
		kill -0 "$p" 2> /dev/null || break
		sleep 0.05
	done
	wait "$p" || rc=$?
	forget "$p"
	[ "$rc" -eq 0 ] || fail "server exited $rc on SIG$2, want 0"
}

# client ARGS...: runs the client; sets $rc and $secs, leaves the JSON in $dir/out.json.
client() {
	local t0
	echo "+ sim-workload client $*"
	t0=$(date +%s%N)
	set +e
	timeout 60 "$sw" client "$@" > "$dir/out.json" 2> "$dir/err"
	rc=$?
	set -e
	secs=$((($(date +%s%N) - t0) / 1000000000))
	sed 's/^/    /' "$dir/out.json" "$dir/err"
}
expect_rc() { [ "$rc" -eq "$1" ] || fail "exit $rc, want $1"; }
# check JQ_EXPR: the client's output is one JSON line for which the expression is true.
check() {
	[ "$(wc -l < "$dir/out.json")" -eq 1 ] || fail "want exactly one line of output"
	jq -e "$1" "$dir/out.json" > /dev/null || fail "JSON fails: $1"
}

echo "== echo server on IPv4 and IPv6 loopback"
start echo 2 --listen 127.0.0.1:0 --listen '[::1]:0' --log debug
echo_pid=$pid
v4=${addrs[0]}
v6=${addrs[1]}
[[ $v4 == 127.0.0.1:* && $v6 == "[::1]:"* ]] || fail "listening on $v4 $v6"

echo "== 1 MiB echoed byte for byte on each of 4 connections"
client --connect "$v4" --bytes 1MiB --connections 4
expect_rc 0
check '.connections == 4 and .ok == 4 and .errors == 0 and .error == null'
check '.bytes_sent == 4194304 and .bytes_received == 4194304 and .requests == 0'
check ".latency_us == null and .banner == null and .sink_received == null and .peer == \"$v4\""
check '(.duration_ms | type) == "number" and .throughput_mbps >= 0'
grep -q "accepted 127.0.0.1:[0-9]* on $v4" "$dir/echo.err" || fail "connection not logged"
grep -q "closed 127.0.0.1:[0-9]*: done, in=1048576 out=1048576" "$dir/echo.err" ||
	fail "connection end not logged"

echo "== 20 connections, 3 at a time, from a given source address"
client --connect "$v4" --bytes 64KiB --connections 20 --concurrency 3 --bind 127.0.0.1
expect_rc 0
check '.connections == 20 and .ok == 20 and .bytes_received == 20 * 65536'

echo "== request mode measures each round trip"
client --connect "$v4" --requests 200 --size 512 --connections 2
expect_rc 0
check '.ok == 2 and .requests == 400 and .bytes_sent == 204800 and .bytes_received == 204800'
check '.latency_us | (.p50 | type) == "number" and .p50 > 0'
check '.latency_us | .p50 <= .p90 and .p90 <= .p99 and .p99 <= .max'

echo "== a request larger than the socket buffers still completes"
client --connect "$v4" --requests 2 --size 4MiB
expect_rc 0
check '.ok == 1 and .requests == 2 and .bytes_received == 8388608'

echo "== IPv6 ::1"
client --connect "$v6" --bytes 256KiB --connections 2 --bind ::1
expect_rc 0
check ".ok == 2 and .bytes_received == 524288 and .peer == \"$v6\""

echo "== a bare port listens dual-stack on [::]"
start dual 1 --listen 0
dual_pid=$pid
[[ ${addrs[0]} == "[::]:"* ]] || fail "listening on ${addrs[0]}, want [::]:PORT"
port=${addrs[0]##*:}
client --connect "127.0.0.1:$port"
expect_rc 0
check '.ok == 1 and .bytes_received == 1024'
client --connect "[::1]:$port"
expect_rc 0
check '.ok == 1 and .bytes_received == 1024'
stop "$dual_pid" INT

echo "== 0.0.0.0:P and [::]:P at once"
start both 2 --listen "0.0.0.0:$port" --listen "[::]:$port"
both_pid=$pid
[ "${addrs[0]}" = "0.0.0.0:$port" ] && [ "${addrs[1]}" = "[::]:$port" ] ||
	fail "listening on ${addrs[*]}"
client --connect "127.0.0.1:$port" --connections 2
expect_rc 0
client --connect "[::1]:$port" --connections 2
expect_rc 0
stop "$both_pid" TERM

echo "== sink counts what it received"
start sink 1 --listen 127.0.0.1:0 --mode sink
sink_pid=$pid
client --connect "${addrs[0]}" --bytes 3MiB --connections 2
expect_rc 0
check '.ok == 2 and .sink_received == 6291456 and .bytes_sent == 6291456'
check '.bytes_received == 34' # "received 3145728\n" twice
client --connect "${addrs[0]}" --bytes 0
expect_rc 0
check '.ok == 1 and .sink_received == 0 and .bytes_received == 11'

echo "== banner: the server speaks first"
start banner 1 --listen 127.0.0.1:0 --banner "hello lab"
banner_pid=$pid
client --connect "${addrs[0]}" --expect-banner --bytes 100KiB --connections 3
expect_rc 0
check '.ok == 3 and .banner == "hello lab" and .bytes_sent == 307200'
check '.bytes_received == 307200 + 3 * 10'
client --connect "${addrs[0]}" --expect-banner --requests 5 --size 100
expect_rc 0
check '.ok == 1 and .requests == 5 and .banner == "hello lab"'
client --connect "${addrs[0]}"
expect_rc 1
check '.errors == 1 and (.error | test("expect-banner"))'
start named 1 --listen 127.0.0.1:0 --mode banner --name pod-a
named_pid=$pid
client --connect "${addrs[0]}" --expect-banner --bytes 0
expect_rc 0
check '.banner == "hello from pod-a"'
client --connect "$v4" --expect-banner --timeout 300ms
expect_rc 1
check '.errors == 1 and (.error | test("banner"))'

echo "== connection refused: errors counted, exit 1"
start gone 1 --listen 127.0.0.1:0
gone=${addrs[0]}
stop "$pid" TERM
grep -q "exiting on" "$dir/gone.err" || fail "no exit message"
client --connect "$gone" --connections 3
expect_rc 1
check '.connections == 3 and .ok == 0 and .errors == 3 and (.error | test("refused"))'

echo "== a server killed mid-transfer: reported at once"
start doomed 1 --listen 127.0.0.1:0 --log debug
doomed_pid=$pid
"$sw" client --connect "${addrs[0]}" --bytes 1000GiB --timeout 20s > "$dir/out.json" \
	2> "$dir/err" &
client_pid=$!
pids+=("$client_pid")
for _ in $(seq 200); do
	grep -q accepted "$dir/doomed.err" && break
	sleep 0.05
done
kill -KILL "$doomed_pid"
t0=$(date +%s)
rc=0
wait "$client_pid" || rc=$?
forget "$client_pid"
wait "$doomed_pid" 2> /dev/null || true
forget "$doomed_pid"
secs=$(($(date +%s) - t0))
cat "$dir/out.json"
expect_rc 1
[ "$secs" -lt 10 ] || fail "client took ${secs}s to notice"
check '.ok == 0 and .errors == 1 and .error != null and .bytes_sent > 0'

echo "== a server that stops answering: bounded by --timeout"
start stopped 1 --listen 127.0.0.1:0
stopped_pid=$pid
kill -STOP "$stopped_pid"
client --connect "${addrs[0]}" --bytes 64MiB --timeout 1s
expect_rc 1
[ "$secs" -lt 10 ] || fail "client took ${secs}s with --timeout 1s"
check '.errors == 1 and (.error | test("timed out"))'

echo "== SIGTERM ends the client with the unfinished connections counted as errors"
"$sw" client --connect "${addrs[0]}" --bytes 64MiB --connections 3 --concurrency 1 \
	--timeout 30s > "$dir/out.json" 2> "$dir/err" &
client_pid=$!
pids+=("$client_pid")
port=${addrs[0]##*:}
for _ in $(seq 200); do
	ss -Htn state established "( dport = :$port )" | grep -q . && break
	sleep 0.05
done
kill -TERM "$client_pid"
rc=0
wait "$client_pid" || rc=$?
forget "$client_pid"
cat "$dir/out.json"
expect_rc 1
check '.connections == 3 and .ok == 0 and .errors == 3 and (.error | test("interrupted"))'
kill -KILL "$stopped_pid"
wait "$stopped_pid" 2> /dev/null || true
forget "$stopped_pid"

echo "== bad flags exit 2 naming the flag"
bad() {
	local want=$1
	shift
	echo "+ sim-workload $*"
	set +e
	"$sw" "$@" > "$dir/out" 2> "$dir/err"
	rc=$?
	set -e
	sed 's/^/    /' "$dir/err" | head -1
	expect_rc 2
	grep -q -- "$want" "$dir/err" || fail "stderr does not name $want"
	[ ! -s "$dir/out" ] || fail "unexpected output on stdout"
}
bad --bytes client --connect "$v4" --bytes 12XB
bad --bytes client --connect "$v4" --bytes -1
bad --bytes client --connect "$v4" --bytes 1 --requests 1
bad --size client --connect "$v4" --size 1
bad --connections client --connect "$v4" --connections 0
bad --connections client --connect "$v4" --connections 12abc
bad --concurrency client --connect "$v4" --connections 2 --concurrency 3
bad --requests client --connect "$v4" --requests 99999999999999999999
bad --size client --connect "$v4" --requests 1 --size 0
bad --timeout client --connect "$v4" --timeout 0
bad --timeout client --connect "$v4" --timeout 10
bad --bind client --connect "$v4" --bind ::1
bad --bind client --connect "$v4" --bind nowhere
bad --connect client --connect 127.0.0.1
bad --connect client --connect ::1:80
bad --connect client --bytes 10
bad --frobnicate client --connect "$v4" --frobnicate
bad --connect client --connect
bad --log client --connect "$v4" --log loud
bad --mode serve --mode mirror
bad --listen serve --listen 70000
bad --listen serve --listen 1.2.3.4
bad --listen serve --listen localhost:80
bad --banner serve --mode sink --banner hi
bad --name serve --name ''
bad "unexpected argument" serve extra
bad subcommand frobnicate
bad subcommand
"$sw" client --help | grep -q -- "--expect-banner" || fail "client --help"
"$sw" serve --help | grep -q -- "--listen" || fail "serve --help"

echo "== servers exit 0 on SIGTERM"
stop "$echo_pid" TERM
stop "$sink_pid" TERM
stop "$banner_pid" INT
stop "$named_pid" TERM
echo "PASS"
