#!/usr/bin/env bash
# sim-cni in two fresh network namespaces (root only; prints a skip note otherwise) against
# the scripted ZDS peer zds_peer: add installs the in-pod redirection of spec §1.3 (iptables
# REDIRECT/connmark rules, fwmark rule and table-100 local route; IPv6 only where the pod has
# it) and sends AddWorkload with the pod's netns fd (same inode as /run/netns/NAME) to the
# newest connection only; del reaches every connection and removes everything again; a new
# connection gets the snapshot (Adds in order, then SnapshotSent); NACKs, a missing Ack
# (5 s deadline) and protocol violations are reported; bad control input gets "error:"
# lines; SIGTERM keeps the pods' rules unless --cleanup-on-exit; the root namespace's
# iptables and policy routing are the same before and after.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: sim_cni needs root (it creates network namespaces)"
	exit 0
fi
build=${BUILD_DIR:-build}
cni=$build/bin/sim-cni
peer=$build/tests/zds_peer
[ -x "$cni" ] && [ -x "$peer" ] || { echo "FAIL: $cni or $peer not built"; exit 1; }
command -v jq > /dev/null || { echo "FAIL: jq not installed"; exit 1; }

P=zcni$$
A=$P-a
B=$P-b
dir=$(mktemp -d "/tmp/$P.XXXXXX")
sock=$dir/zds.sock
pids=()
nses=()
cleanup() {
	local p ns
	for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
	for ns in "${nses[@]}"; do ip netns del "$ns" 2> /dev/null || true; done
	rm -rf "$dir"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	for f in "$dir"/*.err "$dir"/*.out; do
		[ -s "$f" ] || continue
		echo "--- $(basename "$f"):"
		tail -n 25 "$f"
	done
	exit 1
}
step() { echo "== $*"; }
# nsx NS CMD...: runs CMD inside namespace NS, printing it first.
nsx() {
	local ns=$1
	shift
	echo "+ [$ns] $*" >&2
	ip netns exec "$ns" "$@"
}
forget() {
	local p keep=()
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}

# The root namespace's packet filtering and policy routing (counters and dates dropped).
root_state() {
	{ iptables-save; ip6tables-save; } 2>&1 | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
	ip rule
	ip -6 rule
	ip route show table 100 2>&1 || true
	ip -6 route show table 100 2>&1 || true
}

# ctl EXPECT ARGS...: runs `sim-cni ctl` and checks its reply starts with EXPECT ("ok",
# "error", "{"); the reply is left in $reply.
ctl() {
	local want=$1 rc=0
	shift
	echo "+ ctl $*"
	reply=$("$cni" ctl --socket "$sock" "$@") || rc=$?
	echo "  -> $reply"
	case $want in
	ok) [ "$rc" = 0 ] && [ "$reply" = ok ] || fail "expected ok for '$*', got ($rc) $reply" ;;
	error) [ "$rc" = 1 ] && [[ $reply == error:* ]] ||
		fail "expected an error for '$*', got ($rc) $reply" ;;
	*) [ "$rc" = 0 ] && [[ $reply == "$want"* ]] || fail "expected '$want' for '$*', got $reply" ;;
	esac
}
# ctl_err PATTERN ARGS...: an error reply containing PATTERN.
ctl_err() {
	local pat=$1
	shift
	ctl error "$@"
	[[ $reply == *"$pat"* ]] || fail "reply to '$*' lacks '$pat': $reply"
}

# wait_for SECONDS CMD...: polls every 0.1 s.
wait_for() {
	local n=$(($1 * 10))
	shift
	for _ in $(seq "$n"); do
		"$@" > /dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
# count NAME FILTER: lines of peer NAME's output matching the jq FILTER.
count() { jq -c "select($2)" "$dir/$1.out" | wc -l; }
has() { [ "$(count "$1" "$2")" -ge "${3:-1}" ]; }
wait_msg() { wait_for 10 has "$@" || fail "peer $1 never saw $2"; }

# start_peer NAME ARGS...: a zds_peer in the background; sets $peer_pid.
start_peer() {
	local name=$1
	shift
	: > "$dir/$name.out"
	"$peer" --socket "$sock" "$@" > "$dir/$name.out" 2> "$dir/$name.err" &
	peer_pid=$!
	pids+=("$peer_pid")
	eval "pid_$name=$peer_pid"
}
stop_peer() {
	local p
	p=$(eval echo "\$pid_$1")
	kill "$p" 2> /dev/null || true
	wait "$p" 2> /dev/null || true
	forget "$p"
}

start_cni() {
	: > "$dir/cni.out"
	"$cni" serve --socket "$sock" --log debug "$@" > "$dir/cni.out" 2>> "$dir/cni.err" &
	cni_pid=$!
	pids+=("$cni_pid")
	wait_for 10 grep -q '^listening' "$dir/cni.out" || fail "sim-cni did not start"
}
stop_cni() {
	local rc=0
	kill -TERM "$cni_pid"
	wait "$cni_pid" || rc=$?
	forget "$cni_pid"
	[ "$rc" = 0 ] || fail "sim-cni exited with $rc on SIGTERM"
	[ ! -e "$sock" ] && [ ! -e "$sock.ctl" ] || fail "socket files left behind"
}

# Redirection checks inside a pod namespace.
ipt() { nsx "$1" iptables-save | grep -v '^#'; }
ip6t() { nsx "$1" ip6tables-save | grep -v '^#'; }
expect_v4_rules() {
	local s
	s=$(ipt "$1")
	for line in \
		'-A PREROUTING -j ISTIO_PRERT' \
		'-A OUTPUT -j ISTIO_OUTPUT' \
		'-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff' \
		'-A ISTIO_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff' \
		'-A ISTIO_PRERT -s 169.254.7.127/32 -p tcp -m tcp -j ACCEPT' \
		'-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006' \
		'-A ISTIO_OUTPUT -d 169.254.7.127/32 -p tcp -m tcp -j ACCEPT' \
		'-A ISTIO_OUTPUT -p tcp -m mark --mark 0x111/0xfff -j ACCEPT' \
		'-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT' \
		'-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001' \
		'-A ISTIO_OUTPUT ! -o lo -p udp -m mark ! --mark 0x539/0xfff -m udp --dport 53 -j REDIRECT --to-ports 15053' \
		'-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m tcp --dport 53 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15053' \
		'-A ISTIO_OUTPUT -p udp -m mark --mark 0x539/0xfff -m udp --dport 53 -j CT --zone 1' \
		'-A ISTIO_PRERT -p udp -m mark ! --mark 0x539/0xfff -m udp --sport 53 -j CT --zone 1'; do
		grep -qxF -- "$line" <<< "$s" || fail "$1: missing rule: $line"
	done
	# The DNS REDIRECT comes before the 0x111 ACCEPT and the 15001 REDIRECT (spec §13.5).
	grep -n -- '-A ISTIO_OUTPUT' <<< "$s" | grep -E '15053|0x111/0xfff -j ACCEPT|15001' | head -1 |
		grep -q 15053 || fail "$1: DNS rules not before the outbound capture"
	# One jump per table (mangle, nat and raw) and chain, however often it was installed.
	[ "$(grep -cxF -- '-A PREROUTING -j ISTIO_PRERT' <<< "$s")" = 3 ] || fail "$1: PREROUTING jumps"
	[ "$(grep -cxF -- '-A OUTPUT -j ISTIO_OUTPUT' <<< "$s")" = 3 ] || fail "$1: OUTPUT jumps"
	grep -q '^32764:.*from all fwmark 0x111/0xfff lookup 100' <<< "$(nsx "$1" ip rule)" ||
		fail "$1: no fwmark rule"
	grep -q '^local default dev lo' <<< "$(nsx "$1" ip route show table 100)" ||
		fail "$1: no local route in table 100"
}
expect_v6_rules() {
	local s
	s=$(ip6t "$1")
	grep -qxF -- '-A ISTIO_OUTPUT ! -d ::1/128 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001' <<< "$s" ||
		fail "$1: no IPv6 outbound REDIRECT"
	grep -qxF -- '-A ISTIO_PRERT -s fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128 -p tcp -m tcp -j ACCEPT' <<< "$s" ||
		fail "$1: no IPv6 probe ACCEPT"
	grep -q '^32764:.*fwmark 0x111/0xfff lookup 100' <<< "$(nsx "$1" ip -6 rule)" ||
		fail "$1: no v6 rule"
	grep -q '^local default dev lo' <<< "$(nsx "$1" ip -6 route show table 100)" ||
		fail "$1: no v6 local route"
}
expect_clean() {
	! grep -q ISTIO <<< "$(ipt "$1")" || fail "$1: ISTIO rules left: $(ipt "$1")"
	! grep -q ISTIO <<< "$(ip6t "$1")" || fail "$1: ISTIO IPv6 rules left"
	! grep -q fwmark <<< "$(nsx "$1" ip rule)" || fail "$1: fwmark rule left"
	! grep -q fwmark <<< "$(nsx "$1" ip -6 rule)" || fail "$1: v6 fwmark rule left"
	[ -z "$(nsx "$1" ip route show table 100 2> /dev/null)" ] || fail "$1: table 100 not empty"
}

before=$(root_state)

step "two pod namespaces: $A (IPv4 and IPv6), $B (IPv4 only)"
ip netns add "$A"
nses+=("$A")
ip netns add "$B"
nses+=("$B")
nsx "$A" ip link set lo up
nsx "$B" sysctl -qw net.ipv6.conf.lo.disable_ipv6=1
nsx "$B" ip link set lo up
ino_a=$(stat -L -c %i "/run/netns/$A")
ino_b=$(stat -L -c %i "/run/netns/$B")

step "serve refuses to replace a file that is not a socket"
: > "$dir/plain"
rc=0
"$cni" serve --socket "$dir/plain" 2> "$dir/refuse.log" || rc=$?
[ "$rc" = 1 ] && [ -f "$dir/plain" ] || fail "sim-cni took over a regular file (exit $rc)"
rc=0
"$cni" serve 2> /dev/null || rc=$?
[ "$rc" = 2 ] || fail "serve without --socket: exit $rc, want 2"

start_cni

step "bad control input gets error lines"
ctl_err 'unknown command "bogus"' bogus
ctl_err 'usage: add UID NETNS_PATH' add u1 "/run/netns/$A"
ctl_err 'usage: del UID' del
ctl_err 'must be an absolute path' add u1 relative/ns ns pod sa
ctl_err 'cannot open /nonexistent' add u1 /nonexistent ns pod sa
ctl_err 'is not a network namespace' add u1 /etc/hostname ns pod sa
ctl_err "agent's own network namespace" add u1 /proc/self/ns/net ns pod sa
ctl_err 'NAMESPACE longer than 63 bytes' add u1 "/run/netns/$A" "$(printf 'n%.0s' {1..64})" pod sa
ctl_err 'no pod nope' del nope
ctl '{"pods":[]' list
out=$(printf 'list\nfrobnicate\n\n' | "$cni" ctl --socket "$sock" --raw) && fail "raw errors gave exit 0"
[ "$(wc -l <<< "$out")" = 3 ] || fail "want 3 reply lines, got: $out"
jq -e '.pods == [] and .ztunnel_connections == 0' <<< "$(sed -n 1p <<< "$out")" > /dev/null ||
	fail "list JSON: $out"
[[ $(sed -n 2p <<< "$out") == 'error: unknown command "frobnicate"'* ]] || fail "pipelined: $out"
[[ $(sed -n 3p <<< "$out") == 'error: empty command'* ]] || fail "empty line: $out"
out=$(head -c 3000 /dev/zero | tr '\0' x | "$cni" ctl --socket "$sock" --raw) || true
[ "$out" = "error: line longer than 1024 bytes" ] || fail "long line: $out"
out=$(printf 'add u1 /run/netns/x \001 pod sa\n' | "$cni" ctl --socket "$sock" --raw) || true
[[ $out == *"not printable ASCII"* ]] || fail "control byte: $out"

step "first ztunnel connection gets an empty snapshot"
start_peer p1
wait_msg p1 '.type == "snapshot_sent"'
[ "$(count p1 '.type == "add"')" = 0 ] || fail "p1 got Adds before any pod"

step "add u1 in $A: rules, routes, Add with the netns fd"
ctl ok add u1 "/run/netns/$A" default pod-a sa-a
wait_msg p1 '.type == "add" and .uid == "u1"'
jq -e --argjson ino "$ino_a" 'select(.type == "add" and .uid == "u1") |
	.fds == 1 and .netns == true and .inode == $ino and .name == "pod-a" and
	.namespace == "default" and .sa == "sa-a"' "$dir/p1.out" > /dev/null ||
	fail "Add u1 wrong: $(grep u1 "$dir/p1.out")"
expect_v4_rules "$A"
expect_v6_rules "$A"

step "add u2 in $B (no IPv6 there)"
ctl ok add u2 "/run/netns/$B" prod pod-b sa-b
wait_msg p1 '.type == "add" and .uid == "u2"'
jq -e --argjson ino "$ino_b" 'select(.uid == "u2") | .inode == $ino' "$dir/p1.out" > /dev/null ||
	fail "Add u2 carries the wrong netns"
expect_v4_rules "$B"
! grep -q ISTIO <<< "$(ip6t "$B")" || fail "$B: IPv6 rules without IPv6"
! grep -q fwmark <<< "$(nsx "$B" ip -6 rule)" || fail "$B: IPv6 fwmark rule without IPv6"

step "conflicts: same UID, same netns"
ctl_err 'pod u1 already exists' add u1 "/run/netns/$A" default pod-a sa-a
ctl_err "already the network namespace of pod u1" add u3 "/run/netns/$A" default pod-c sa-c
ctl '{' list
jq -e '.ztunnel_connections == 1 and ([.pods[].uid] == ["u1","u2"]) and
	all(.pods[]; .state == "active" and .redirection == true)' <<< "$reply" > /dev/null ||
	fail "list: $reply"

step "a second connection gets the snapshot in order; Adds go to the newest only"
start_peer p2
wait_msg p2 '.type == "snapshot_sent"'
got=$(jq -r 'select(.type != "connected") | "\(.type) \(.uid) \(.fds) \(.inode // 0)"' "$dir/p2.out")
want=$(printf 'add u1 1 %s\nadd u2 1 %s\nsnapshot_sent  0 0' "$ino_a" "$ino_b")
[ "$got" = "$want" ] || fail "snapshot: got [$got] want [$want]"
ctl '{"pods"' list
jq -e '.ztunnel_connections == 2' <<< "$reply" > /dev/null || fail "list: $reply"

step "del u2: every connection gets Del, the rules leave $B"
ctl ok del u2
wait_msg p1 '.type == "del" and .uid == "u2" and .fds == 0'
wait_msg p2 '.type == "del" and .uid == "u2" and .fds == 0'
expect_clean "$B"
expect_v4_rules "$A"

step "a failed install (lo down) is reported and leaves nothing behind"
nsx "$B" ip link set lo down
ctl_err "installing the redirection in /run/netns/$B: lo is down" add u9 "/run/netns/$B" x y z
nsx "$B" ip link set lo up
ctl '{' list
jq -e '[.pods[].uid] == ["u1"]' <<< "$reply" > /dev/null || fail "failed pod kept: $reply"
[ "$(count p2 '.uid == "u9"')" = 0 ] || fail "ztunnel heard of a pod without redirection"
expect_clean "$B"

step "re-add u2: only the newest connection hears of it"
ctl ok add u2 "/run/netns/$B" prod pod-b sa-b
wait_msg p2 '.type == "add" and .uid == "u2"' 2
sleep 0.3
[ "$(count p1 '.type == "add" and .uid == "u2"')" = 1 ] || fail "the older connection got the Add"

step "NACKs: in a snapshot (logged, shown by list) and on add (error reply)"
stop_peer p1
stop_peer p2
start_peer p3 --nack u2
wait_msg p3 '.type == "snapshot_sent"'
has p3 '.type == "add" and .uid == "u2" and .reply == "nack"' || fail "p3 did not NACK u2"
wait_for 5 grep -q 'pod u2: snapshot Add NACKed: test NACK for u2' "$dir/cni.err" ||
	fail "snapshot NACK not logged"
ctl '{' list
jq -e '.pods[] | select(.uid == "u2") | .ztunnel_error == "NACK: test NACK for u2"' \
	<<< "$reply" > /dev/null || fail "list does not show the NACK: $reply"
ctl ok del u2
expect_clean "$B"
ctl_err 'ztunnel NACK on Add: test NACK for u2' add u2 "/run/netns/$B" prod pod-b sa-b
# The pod stays known with its rules (ztunnel retries it) until it is deleted.
ctl '{' list
jq -e '.pods[] | select(.uid == "u2") | .state == "active"' <<< "$reply" > /dev/null ||
	fail "NACKed pod not kept: $reply"
expect_v4_rules "$B"
ctl ok del u2
expect_clean "$B"

step "no Ack within 5 s: error reply, connection dropped"
stop_peer p3
start_peer p4 --silent u2
wait_msg p4 '.type == "snapshot_sent"'
"$cni" ctl --socket "$sock" add u2 "/run/netns/$B" prod pod-b sa-b > "$dir/slow.reply" &
slow=$!
pids+=("$slow")
wait_msg p4 '.type == "add" and .uid == "u2"'
ctl_err 'pod u2 is busy (adding)' del u2
rc=0
wait "$slow" || rc=$?
forget "$slow"
reply=$(cat "$dir/slow.reply")
[ "$rc" = 1 ] && [ "$reply" = 'error: no Ack for Add: no Ack within 5 s' ] ||
	fail "add without Ack: ($rc) $reply"
wait_msg p4 '.type == "eof"'
grep -q 'ztunnel connection [0-9]* dropped: no Ack within 5 s' "$dir/cni.err" ||
	fail "Ack timeout not logged"
ctl ok del u2
expect_clean "$B"

step "protocol violations close the connection with a log line"
start_peer p5 --garbage ack
wait_msg p5 '.type == "eof"'
grep -q 'dropped: protocol violation: Ack with no request in flight' "$dir/cni.err" ||
	fail "unsolicited Ack not logged"
start_peer p5b --garbage big
wait_msg p5b '.type == "eof"'
grep -q 'dropped: protocol violation: datagram over 1024 bytes' "$dir/cni.err" ||
	fail "oversized datagram not logged"
start_peer p5c --garbage fd
wait_msg p5c '.type == "eof"'
grep -q 'dropped: protocol violation: file descriptor sent to the CNI' "$dir/cni.err" ||
	fail "descriptor from ztunnel not logged"
start_peer p6 --version 2
wait_msg p6 '.type == "eof"'
grep -q 'dropped: protocol violation: unsupported ZDS version 2' "$dir/cni.err" ||
	fail "bad version not logged"
[ "$(count p6 '.type == "add"')" = 0 ] || fail "a connection without a valid hello got Adds"
start_peer p7 --no-hello
wait_for 8 has p7 '.type == "eof"' || fail "silent connection not dropped"
grep -q 'dropped: no ZdsHello within 5 s' "$dir/cni.err" || fail "hello deadline not logged"

step "SIGTERM keeps the pods' rules; a restarted agent re-adds idempotently"
start_peer p8
wait_msg p8 '.type == "snapshot_sent"'
stop_cni
wait_msg p8 '.type == "eof"'
expect_v4_rules "$A"
start_cni --cleanup-on-exit
ctl ok add u1 "/run/netns/$A" default pod-a sa-a
expect_v4_rules "$A"
expect_v6_rules "$A"
step "--cleanup-on-exit removes them"
stop_cni
expect_clean "$A"
expect_clean "$B"

step "the root namespace is unchanged"
after=$(root_state)
[ "$before" = "$after" ] || fail "root namespace changed: $(diff <(echo "$before") <(echo "$after"))"
if grep -q 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$dir"/*.err; then
	fail "sanitizer reports"
fi
echo "PASS"
