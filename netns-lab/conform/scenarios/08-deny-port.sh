# DENY by port: backend/db's metrics port is closed to the mesh, naming the policy.
DESC="DENY by port, the reason naming the policy"
run() {
	refused backend/echo-1 --connect "$(ipof backend db):9090" --bytes 10
	denied_by_policy node-2 dst.workload=db "explicitly denied by: backend/db-metrics-port"
}
