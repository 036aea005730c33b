# An application's own TLS passes through the mesh untouched (verified end to end).
DESC="an application's own TLS passes through unchanged"
run() {
	local d=$STATE/$SCN srv out
	mkdir -p "$d"; on_exit "rm -rf '$d'"
	"$ROOT/scripts/certs.sh" root "$d" > /dev/null
	"$ROOT/scripts/certs.sh" leaf "$d" app spiffe://app.example/ns/x/sa/y > /dev/null
	ip netns exec "$NAME-p-frontend-peer" openssl s_server -accept 8443 -quiet -naccept 1 \
		-cert "$d/app-cert.pem" -key "$d/app-key.pem" > "$d/srv.log" 2>&1 &
	srv=$!
	on_exit "kill $srv"
	wait_for 10 sh -c "ip netns exec '$NAME-p-frontend-peer' ss -Hltn 'sport = :8443' | grep -q ." ||
		fail "expected the application's TLS server on 8443; it did not listen"
	out=$(echo ping | timeout 10 ip netns exec "$NAME-p-backend-echo-2" openssl s_client \
		-connect "$(ipof frontend peer):8443" -CAfile "$d/root-cert.pem" -verify_return_error 2>&1) ||
		fail "expected application TLS through the mesh; seen: $(tail -n 3 <<<"$out")"
	grep -q "Verify return code: 0 (ok)" <<<"$out" ||
		fail "expected 'Verify return code: 0 (ok)'; seen: $(grep 'Verify return' <<<"$out")"
}
