# Captured client to a captured server on the same node: HBONE through the node's ztunnel.
DESC="captured to captured, same node, over HBONE with the client's identity"
run() {
	ok frontend/client --connect "$(ipof frontend peer):8080" --bytes 1MiB
	logged node-1 direction=inbound dst.workload=peer src.identity=spiffe://cluster.local/ns/frontend/sa/client
}
