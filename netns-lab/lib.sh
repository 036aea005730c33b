# Shell helpers shared by netns-lab/lab, netns-lab/demo.sh and the end-to-end tests (sourced,
# bash). One way to fail, to run a command inside a namespace (echoing it), to wait for a
# condition and to make a namespace. Invariant: nothing here changes the root network
# namespace, and die/fail only exit: the caller's `trap ... EXIT` does the cleaning, so it
# runs on every way out, the failures of `set -e` included.
#
#   DIE_PREFIX   what die prints before the message (default: the script's name)
#   on_die       a function the caller may define: die runs it (e.g. to show logs) first
#   NSX_PREFIX   prepended to the namespace names given to nsx/ns_add (default: none)
#   NSX_TRACE    file the commands nsx runs are appended to (default: stderr)

# die MSG...: prints "PREFIX: MSG" on stderr and exits 1 (the EXIT trap cleans up).
die() {
	echo "${DIE_PREFIX:-$(basename "$0")}: $*" >&2
	if declare -F on_die > /dev/null; then on_die || true; fi
	exit 1
}
# fail MSG...: die, under the name the tests use.
fail() { die "$@"; }

# nsx_trace NS CMD...: records "+ [NS] CMD" where nsx traces go.
nsx_trace() {
	local ns=$1; shift
	if [ -n "${NSX_TRACE:-}" ]; then
		{ printf '+ [%s]' "$ns"; printf ' %q' "$@"; echo; } >> "$NSX_TRACE" 2> /dev/null || true
	else
		{ printf '+ [%s]' "$ns"; printf ' %q' "$@"; echo; } >&2
	fi
}

# nsx NS CMD...: runs CMD inside namespace ${NSX_PREFIX}NS, after tracing it.
nsx() {
	local ns=${NSX_PREFIX:-}$1; shift
	nsx_trace "$ns" "$@"
	ip netns exec "$ns" "$@"
}

# wait_for SECONDS CMD...: runs CMD (output discarded) every 0.2 s until it succeeds; returns 1
# when SECONDS passed without success.
wait_for() {
	local n=$(($1 * 5)); shift
	for _ in $(seq "$n"); do "$@" > /dev/null 2>&1 && return 0; sleep 0.2; done
	return 1
}

# ns_add NS: creates namespace ${NSX_PREFIX}NS with its loopback up, and remembers it in
# LIB_NSES (for a cleanup that deletes by list).
LIB_NSES=()
ns_add() {
	local ns=${NSX_PREFIX:-}$1
	ip netns add "$ns"
	LIB_NSES+=("$ns")
	nsx "$1" ip link set lo up
}

# veth_into NS IFACE CHILD: a veth pair from NS (side IFACE, set up) to CHILD (side eth0, down).
# NS and CHILD take NSX_PREFIX like nsx.
veth_into() {
	nsx "$1" ip link add "$2" type veth peer name eth0 netns "${NSX_PREFIX:-}$3"
	nsx "$1" ip link set "$2" up
}
