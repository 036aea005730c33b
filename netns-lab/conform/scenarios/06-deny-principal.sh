# ALLOW by principal: echo admits frontend/client only; frontend/peer is denied by that policy.
DESC="ALLOW by principal: a principal not listed is denied by policy"
run() {
	refused frontend/peer --connect "$(ipof backend echo-1):8080" --bytes 10
	denied_by_policy node-2 dst.workload=echo-1 src.identity=spiffe://cluster.local/ns/frontend/sa/peer \
		"allow policies exist, but none allowed"
	ok frontend/client --connect "$(ipof backend echo-1):8080" --bytes 10
}
