# Uncaptured client to captured servers: the plaintext inbound (15006) applies policy with no
# identity: allowed where no ALLOW policy exists, denied by policy where one does.
DESC="uncaptured client to captured servers: 15006, policy without identity"
run() {
	ok backend/legacy --connect "$(ipof frontend peer):8080" --bytes 4096
	refused backend/legacy --connect "$(ipof backend echo-1):8080" --bytes 10
	denied_by_policy node-2 dst.workload=echo-1 "allow policies exist, but none allowed"
}
