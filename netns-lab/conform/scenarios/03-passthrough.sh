# Captured client to a server outside the mesh: plain TCP passthrough.
DESC="captured client to an uncaptured server: passthrough"
run() {
	local legacy; legacy=$(ipof backend legacy)
	ok frontend/client --connect "$legacy:8080" --bytes 4096
	logged node-1 direction=outbound "dst.addr=$legacy:8080"
}
