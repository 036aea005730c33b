# Helpers for conformance scenarios (sourced by conform/run in the subshell of one scenario).
# A scenario defines DESC, optionally OURS_ONLY (why only this project's ztunnel can pass it;
# others skip it) and run(). Invariant: a scenario leaves the lab as it found it; whatever it
# changes it undoes through on_exit, which runs however the scenario ends. fail records the
# evidence (first line: expected vs seen) with the ztunnel log lines written meanwhile.
#   Exported by the runner: NAME STATE LAB BIN ROOT SCN EVID OURS

source "$ROOT/netns-lab/lib.sh"
ZT_NODES=$(awk -F'\t' '{print $3}' "$STATE/pods" | sort -u)

ipof() { awk -v ns="$1" -v p="$2" -F'\t' '$1 == ns && $2 == p {print $4}' "$STATE/pods"; }
zlog_file() { echo "$STATE/logs/ztunnel-$1.log"; }

# scn_mark: remembers where each ztunnel log stands; newlog NODE prints what came since.
scn_mark() {
	local n
	for n in $ZT_NODES; do stat -c %s "$(zlog_file "$n")" > "$STATE/.mark-$SCN-$n"; done
}
newlog() { tail -c +$(($(cat "$STATE/.mark-$SCN-$1" 2>/dev/null || echo 0) + 1)) "$(zlog_file "$1")"; }

CLEANUPS=()
on_exit() { CLEANUPS+=("$*"); }
scn_cleanup() {
	local rc=$? i
	set +e
	for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[$i]}" > /dev/null 2>&1; done
	for j in $(jobs -p); do kill "$j" 2> /dev/null; wait "$j" 2> /dev/null; done
	rm -f "$STATE"/.mark-"$SCN"-*
	exit "$rc"
}

# fail MSG: the scenario fails with MSG ("expected ..., seen ...") and the log lines meanwhile.
fail() {
	local n
	{
		echo "$*" | head -c 600 | tr '\n' ' '; echo
		for n in $ZT_NODES; do
			newlog "$n" | grep -E 'error|warn|denied|direction=' | tail -n 4 | cut -c1-300 | sed "s/^/ztunnel-$n: /"
		done
	} > "$EVID"
	exit 1
}
skip() { echo "$*" > "$EVID"; exit 77; }

client() { local pod=$1; shift; "$LAB" exec "$pod" --name "$NAME" -- "$BIN/sim-workload" client --timeout 5s "$@"; }
ok() { local out; out=$(client "$@" 2>&1) || fail "expected success: $*; seen: $out"; }
refused() { local out; ! out=$(client "$@" 2>&1) || fail "expected a refusal: $*; seen success: $out"; }

# logged NODE PATTERN...: waits (5 s) for a line of NODE's ztunnel log, written during this
# scenario, holding every PATTERN (fixed strings).
has_line() {
	local node=$1 lines; shift
	lines=$(newlog "$node")
	for p in "$@"; do lines=$(grep -F -- "$p" <<<"$lines") || return 1; done
}
logged() {
	local node=$1; shift
	wait_for 5 has_line "$node" "$@" || fail "expected a ztunnel-$node log line with: $*; seen none"
}

# denied_by_policy NODE PATTERN...: a denial stands only when NODE's ztunnel logged it as a
# policy decision (the reason naming the policy, or that no ALLOW matched), never because the
# connection failed for another reason.
denied_by_policy() {
	local node=$1; shift
	logged "$node" "direction=inbound" "$@"
}
ready() { nsx "$NAME-n-$1" curl -sf "127.0.0.1:$(cat "$STATE/$1/ready-port" 2>/dev/null || echo 15021)/healthz/ready"; }
