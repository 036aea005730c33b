# DENY by namespace: backend/db refuses the frontend namespace, and says which policy did.
DESC="DENY by namespace, the reason naming the policy"
run() {
	refused frontend/client --connect "$(ipof backend db):5432" --bytes 10
	denied_by_policy node-2 dst.workload=db "explicitly denied by: backend/db-not-from-frontend"
}
