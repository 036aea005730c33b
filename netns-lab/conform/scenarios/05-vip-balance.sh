# A Service VIP balances connections across the endpoints on both nodes.
DESC="a Service VIP balances across endpoints on both nodes"
run() {
	ok frontend/client --connect 10.96.0.10:80 --bytes 100 --connections 60 --concurrency 10
	local n1 n2
	sleep 0.3
	n1=$(newlog node-2 | grep 'direction=inbound' | grep -c 'dst.workload=echo-1' || true)
	n2=$(newlog node-1 | grep 'direction=inbound' | grep -c 'dst.workload=echo-2' || true)
	[ "$n1" -ge 10 ] && [ "$n2" -ge 10 ] ||
		fail "expected >= 10 of 60 connections on each endpoint; seen echo-1: $n1, echo-2: $n2"
}
