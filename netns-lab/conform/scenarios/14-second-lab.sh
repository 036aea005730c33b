# A second lab runs beside this one without disturbing it (names and addresses per lab).
DESC="a second lab runs beside this one"
run() {
	local other=${NAME:0:7}b ip
	on_exit "'$LAB' down --name '$other'"
	"$LAB" up "$ROOT/tests/e2e/data/lab.yaml" --name "$other" > /dev/null 2>&1 || fail "expected a second lab up; it failed"
	ip=$(awk -F'\t' '$1 == "backend" && $2 == "echo-1" {print $4}' "/run/netns-lab/$other/pods")
	"$LAB" exec frontend/client --name "$other" -- "$BIN/sim-workload" client --connect "$ip:8080" \
		--bytes 4096 --timeout 5s > /dev/null || fail "expected traffic in the second lab; it failed"
	"$LAB" down --name "$other" > /dev/null
	ok frontend/client --connect "$(ipof backend echo-1):8080" --bytes 4096
}
