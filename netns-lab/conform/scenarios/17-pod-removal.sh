# A pod removed from the mesh (CNI DEL): its live connections close. The pod is added back.
DESC="pod removal closes its connections"
run() {
	local uid victim echo1
	echo1=$(ipof backend echo-1)
	client frontend/client --connect "$echo1:8080" --requests 1000000 --size 64 --timeout 60s \
		> /dev/null 2>&1 &
	victim=$!
	sleep 1
	kill -0 "$victim" 2>/dev/null || fail "expected a long connection; it ended within 1 s"
	uid=$(jq -r '.pods[] | select(.namespace == "frontend" and .name == "client") | .uid' "$STATE/inventory.json")
	"$BIN/sim-cni" ctl --control "$STATE/node-1/cni.ctl" del "$uid" | grep -q ok || fail "expected CNI del ok"
	on_exit "'$BIN/sim-cni' ctl --control '$STATE/node-1/cni.ctl' add '$uid' '/run/netns/$NAME-p-frontend-client' frontend client client; wait_for 20 client frontend/client --connect $echo1:8080 --bytes 10"
	wait_for 20 sh -c "! kill -0 $victim 2>/dev/null" || fail "expected the connection closed within 20 s of the removal; still open"
}
