# HBONE inbound checks (spec: authority IP vs connection IP; peer identity): a certificate of
# the mesh gets through, an authority naming another pod gets 400, a foreign trust domain fails.
DESC="HBONE: authority-IP mismatch 400, foreign trust domain refused"
run() {
	local tok echo1 echo2 out rc=0 d=$STATE/$SCN
	echo1=$(ipof backend echo-1) echo2=$(ipof backend echo-2)
	mkdir -p "$d"; on_exit "rm -rf '$d'"
	tok=$("$BIN/fake-istiod" token --ca-dir "$STATE/ca" --node node-1 --namespace frontend \
		--service-account client)
	ip netns exec "$NAME-istiod" "$(dirname "$BIN")/tests/xds_probe" --addr 10.76.0.2:15012 \
		--roots "$STATE/ca/root-cert.pem" --host istiod.istio-system.svc --token "$tok" csr \
		--identity spiffe://cluster.local/ns/frontend/sa/client --out "$d" > /dev/null ||
		fail "expected a client certificate from fake-istiod"
	hc() {
		local c=$1 k=$2; shift 2
		echo hi | ip netns exec "$NAME-n-node-1" "$BIN/hbone-client" --cert "$c" --key "$k" \
			--roots "$STATE/ca/root-cert.pem" --timeout 5s \
			--expect spiffe://cluster.local/ns/backend/sa/echo --connect "$echo1:15008" "$@" 2>&1
	}
	out=$(hc "$d/chain.pem" "$d/key.pem" --authority "$echo1:8080") ||
		fail "expected hbone-client to reach echo-1; seen: $out"
	out=$(hc "$d/chain.pem" "$d/key.pem" --authority "$echo2:8080") || rc=$?
	[ "$rc" = 2 ] && grep -q "status: 400" <<<"$out" ||
		fail "expected status 400 for an authority naming another pod; seen rc $rc: $out"
	"$ROOT/scripts/certs.sh" root "$d/foreign" > /dev/null
	"$ROOT/scripts/certs.sh" leaf "$d/foreign" evil spiffe://evil.domain/ns/frontend/sa/client > /dev/null
	out=$(hc "$d/foreign/evil-cert.pem" "$d/foreign/evil-key.pem" --authority "$echo1:8080") &&
		fail "expected a foreign trust domain refused; seen: $out"
	true
}
