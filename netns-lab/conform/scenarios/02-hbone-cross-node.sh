# Captured client to a captured server on another node: HBONE between the two ztunnels.
DESC="captured to captured across nodes, over HBONE with the client's identity"
run() {
	ok frontend/client --connect "$(ipof backend echo-1):8080" --bytes 1MiB
	logged node-2 direction=inbound dst.workload=echo-1 src.identity=spiffe://cluster.local/ns/frontend/sa/client
}
