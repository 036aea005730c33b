# The node's ztunnel restarted: it gets its pods back from the CNI's snapshot (ZDS) and
# enforces policy again.
DESC="ztunnel restarted: pods come back from the CNI snapshot"
run() {
	"$LAB" restart ztunnel-node-1 --name "$NAME"
	wait_for 30 ready node-1 || fail "expected ztunnel on node-1 ready within 30 s of its restart; seen: $(ready node-1 2>&1)"
	ok frontend/client --connect "$(ipof backend echo-1):8080" --bytes 65536
	refused backend/echo-2 --connect "$(ipof backend echo-1):8080" --bytes 10
	denied_by_policy node-2 src.identity=spiffe://cluster.local/ns/backend/sa/echo "allow policies exist, but none allowed"
}
