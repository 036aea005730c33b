# A server-speaks-first protocol (banner before any client byte) passes unchanged.
DESC="a server-speaks-first protocol passes through unchanged"
run() {
	local out
	out=$(client frontend/client --connect "$(ipof frontend peer):7000" --expect-banner --bytes 100 2>&1) ||
		fail "expected the banner through the mesh; seen: $out"
	[ "$(jq -r .banner <<<"$out")" = "hello from peer" ] || fail "expected banner 'hello from peer'; seen: $out"
}
