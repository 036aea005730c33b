#!/usr/bin/env bash
# Runs libFuzzer targets built by `make fuzz` (usage: campaign.sh BUILD SECONDS [NAME...]).
# Each target starts from its committed seeds and a working corpus kept in
# BUILD/corpus/NAME (new inputs land there, never in the tree); crashes are written to
# BUILD/crashes/. Prints one summary line per target: executions, coverage, features, corpus.
# FUZZ_JOBS=N runs N targets at once (default 1); FUZZ_NICE=19 lowers their priority.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$1; secs=$2; shift 2
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for src in tests/fuzz/fuzz_*.c; do n=${src#tests/fuzz/fuzz_}; names+=("${n%.c}"); done
fi
mkdir -p "$build/crashes" "$build/logs"
run_one() {
	local name=$1 log=$build/logs/$1.log
	mkdir -p "$build/corpus/$name"
	nice -n "${FUZZ_NICE:-0}" "$build/fuzz/$name" -max_total_time="$secs" -print_final_stats=1 \
		-rss_limit_mb=1024 -timeout=10 -max_len=65536 \
		-artifact_prefix="$build/crashes/$name-" \
		"$build/corpus/$name" "tests/fuzz/corpus/$name" > "$log" 2>&1
	local rc=$?
	local execs cov ft
	execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
	cov=$(grep -E '#[0-9]+.*cov: ' "$log" | tail -1 | sed -E 's/.*cov: ([0-9]+).*/\1/')
	ft=$(grep -E '#[0-9]+.*ft: ' "$log" | tail -1 | sed -E 's/.*ft: ([0-9]+).*/\1/')
	printf '%-22s rc=%d execs=%s cov=%s ft=%s corpus=%s\n' "$name" "$rc" "${execs:-?}" \
		"${cov:-?}" "${ft:-?}" "$(ls "$build/corpus/$name" | wc -l)"
	return $rc
}
rc=0
jobs=${FUZZ_JOBS:-1}
for name in "${names[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || rc=1; done
	run_one "$name" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || rc=1; done
ls "$build/crashes" | sed 's/^/crash: /'
exit $rc
