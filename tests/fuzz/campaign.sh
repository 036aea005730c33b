#!/usr/bin/env bash
# Runs libFuzzer targets built by `make fuzz` (usage: campaign.sh BUILD SECONDS [NAME...]).
# Each target starts from its committed seeds and a working corpus kept in
# BUILD/corpus/NAME (new inputs land there, never in the tree); crashes are written to
# BUILD/crashes/. Prints one summary line per target (executions, exec/s, coverage, features,
# corpus) and appends it to BUILD/logs/summary.txt, so rounds can be added up.
# FUZZ_JOBS=N runs N targets at once (default 1); FUZZ_NICE=19 lowers their priority;
# FUZZ_RUNS=N stops a target after N executions (or SECONDS, whichever comes first).
# Inputs are capped per target (max_len below: the loaders are fed small documents, as
# their cost grows with the input), and ASan keeps no allocation stacks while fuzzing
# (malloc_context_size=0, a large share of the time in allocation-heavy targets); a crash is
# reproduced with full reports by running the binary on the file.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$1; secs=$2; shift 2
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for src in tests/fuzz/fuzz_*.c; do n=${src#tests/fuzz/fuzz_}; names+=("${n%.c}"); done
fi
mkdir -p "$build/crashes" "$build/logs"
max_len() {
	case $1 in
	mesh|admin_http) echo 4096 ;;
	local_config|proxy_config|ca_request|jwt) echo 8192 ;;
	yaml) echo 16384 ;;
	*) echo 65536 ;;
	esac
}
run_one() {
	local name=$1 log=$build/logs/$1.log runs=() rc=0
	mkdir -p "$build/corpus/$name"
	[ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
	ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-malloc_context_size=0} \
	nice -n "${FUZZ_NICE:-0}" "$build/fuzz/$name" -max_total_time="$secs" -print_final_stats=1 \
		"${runs[@]}" -rss_limit_mb=1024 -timeout=10 -max_len="$(max_len "$name")" \
		-artifact_prefix="$build/crashes/$name-" \
		"$build/corpus/$name" "tests/fuzz/corpus/$name" > "$log" 2>&1 || rc=$?
	local execs eps cov ft line
	execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
	eps=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
	cov=$(grep -E '#[0-9]+.*cov: ' "$log" | tail -1 | sed -E 's/.*cov: ([0-9]+).*/\1/')
	ft=$(grep -E '#[0-9]+.*ft: ' "$log" | tail -1 | sed -E 's/.*ft: ([0-9]+).*/\1/')
	line=$(printf '%-18s rc=%d execs=%s exec/s=%s cov=%s ft=%s corpus=%s' "$name" "$rc" \
		"${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$(ls "$build/corpus/$name" | wc -l)")
	echo "$line"
	echo "$(date -u +%FT%TZ) $line" >> "$build/logs/summary.txt"
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
