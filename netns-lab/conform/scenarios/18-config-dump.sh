# The admin's /config_dump shows what the ztunnel was told: the node's workloads with their
# service accounts and the Service with its VIP (lab graph draws from these fields), and each
# pod's proxy on every worker thread (ZTUNNEL_WORKER_THREADS, passed through by the lab).
DESC="/config_dump lists the workloads, the Service VIP and a proxy per worker"
OURS_ONLY="reads this ztunnel's /config_dump layout (workloads[].serviceAccount, services[].vips, workloadProxies)"
run() {
	local d
	d=$(ip netns exec "$NAME-n-node-1" curl -sf --max-time 5 127.0.0.1:15000/config_dump) ||
		fail "expected /config_dump on 127.0.0.1:15000 of node-1; seen no answer"
	jq -e '.workloads[] | select(.namespace == "frontend" and .name == "client" and .serviceAccount == "client")' \
		<<<"$d" > /dev/null || fail "expected workload frontend/client (sa client); seen: $(jq -c '[.workloads[] | [.namespace, .name, .serviceAccount]]' <<<"$d")"
	jq -e '.services[] | select(.name == "echo" and (.vips | map(split("/")[-1]) | index("10.96.0.10")))' \
		<<<"$d" > /dev/null || fail "expected Service backend/echo with VIP 10.96.0.10; seen: $(jq -c '.services' <<<"$d")"
	local w=${ZTUNNEL_WORKER_THREADS:-2}
	jq -e --argjson w "$w" '[.workloadProxies[] | select(.state == "running") | .proxy.workers | length] |
		length > 0 and all(. == $w)' <<<"$d" > /dev/null ||
		fail "expected every pod proxy on $w workers; seen: $(jq -c '[.workloadProxies[] | .proxy.workers]' <<<"$d")"
}
