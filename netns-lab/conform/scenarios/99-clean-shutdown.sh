# Every component stops cleanly on SIGTERM and the logs hold no sanitizer report. Runs last:
# it stops the lab's components (the runner takes the lab down next).
DESC="components stop cleanly, no sanitizer reports (leaves the lab stopped: runs last)"
run() {
	local c bad
	for c in $(awk '{print $2}' "$STATE/pids" | grep -E '^(ztunnel|cni)-|^istiod$' | sort -u); do
		"$LAB" stop "$c" --name "$NAME"
	done
	bad=$(grep -l 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$STATE"/logs/*.log || true)
	[ -z "$bad" ] || fail "expected no sanitizer reports; seen in: $bad: $(grep -h -m2 'ERROR\|runtime error' $bad)"
}
