# fake-istiod stopped: the ztunnels keep their last configuration; traffic keeps flowing.
DESC="control plane down: existing and new connections keep working"
run() {
	local echo1 during
	echo1=$(ipof backend echo-1)
	client frontend/client --connect "$echo1:8080" --requests 400 --size 64 --timeout 30s \
		> "$STATE/$SCN.out" 2>&1 &
	during=$!
	on_exit "rm -f '$STATE/$SCN.out'"
	"$LAB" stop istiod --name "$NAME"
	on_exit "'$LAB' start istiod --name '$NAME'; wait_for 10 grep -q listening '$STATE/logs/istiod.log'"
	ok frontend/client --connect "$echo1:8080" --bytes 65536
	wait "$during" || fail "expected the connection across the stop to finish; seen: $(cat "$STATE/$SCN.out")"
}
