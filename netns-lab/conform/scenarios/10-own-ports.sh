# A pod cannot reach the ztunnel's own listeners (recursion) or its admin port.
DESC="calls into ztunnel's own ports are refused"
run() {
	refused frontend/client --connect "127.0.0.1:15001" --bytes 10
	refused frontend/client --connect "127.0.0.1:15006" --bytes 10
	refused frontend/client --connect "$(ipof frontend client):15001" --bytes 10
	refused frontend/client --connect "10.76.0.11:15000" --bytes 10
}
