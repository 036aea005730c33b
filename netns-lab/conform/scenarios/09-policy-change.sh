# A DENY policy added while a connection is open closes it; removing it lets traffic back.
DESC="a policy added while traffic flows closes the live connection"
run() {
	local peer long
	peer=$(ipof frontend peer)
	client frontend/client --connect "$peer:8080" --requests 1000000 --size 64 --timeout 60s \
		> /dev/null 2>&1 &
	long=$!
	sleep 1
	kill -0 "$long" 2>/dev/null || fail "expected a long connection; it ended within 1 s"
	cp "$STATE/mesh.yaml" "$STATE/mesh.yaml.$SCN"
	on_exit "cp '$STATE/mesh.yaml.$SCN' '$STATE/mesh.yaml'; wait_for 20 client frontend/client --connect $peer:8080 --bytes 10; rm -f '$STATE/mesh.yaml.$SCN'"
	cat >> "$STATE/mesh.yaml" <<'YAML'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: peer-lockdown, namespace: frontend}
spec:
  selector: {matchLabels: {app: peer}}
  action: DENY
  rules: [{from: [{source: {principals: ["cluster.local/ns/frontend/sa/client"]}}]}]
YAML
	wait_for 20 sh -c "! kill -0 $long 2>/dev/null" || fail "expected the connection closed within 20 s of the policy; still open"
	logged node-1 "connection closed due to policy change"
	refused frontend/client --connect "$peer:8080" --bytes 10
	denied_by_policy node-1 dst.workload=peer "explicitly denied by: frontend/peer-lockdown"
}
