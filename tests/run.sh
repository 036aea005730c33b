#!/usr/bin/env bash
# Runs the whole suite against one build directory and ends with
# "N passed, N failed, N skipped"; a test that did not run is never counted as passed.
#   unit         build/tests/unit (Check; its own per-test lines and counts; root-only cases
#                are left out and listed as SKIP without root)
#   integration  tests/integration/*.sh, loopback, no root
#   e2e          tests/e2e/*.sh, network namespaces, root only (SKIP and counted otherwise)
# One test: CK_RUN_SUITE=loop build/tests/unit, or tests/run.sh build integration/NAME.
set -uo pipefail

build=${1:-build}
only=${2:-}
export BUILD_DIR=$(cd "$build" && pwd)
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60}
passed=0
failed=0
skipped=0
failures=()

run_unit() {
	local out counts
	out=$(mktemp)
	"$BUILD_DIR/tests/unit" 2>&1 | tee "$out"
	counts=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$out" | tail -1)
	if [ -z "$counts" ]; then
		failed=$((failed + 1)); failures+=("unit (runner crashed)")
	else
		local p f s
		p=$(echo "$counts" | awk '{print $2}'); f=$(echo "$counts" | awk '{print $4}')
		s=$(echo "$counts" | awk '{print $6}')
		passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
		[ "$f" -eq 0 ] || failures+=("unit ($f)")
	fi
	rm -f "$out"
}

run_script() {
	local t=$1 name start rc
	name=${t#tests/}; name=${name%.sh}
	start=$(date +%s)
	timeout --kill-after=10 "${TEST_TIMEOUT:-600}" "$t" > "$BUILD_DIR/tests/${name//\//_}.log" 2>&1
	rc=$?
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1)); echo "PASS $name ($(( $(date +%s) - start ))s)"
	else
		failed=$((failed + 1)); failures+=("$name")
		echo "FAIL $name (exit $rc); last lines of $BUILD_DIR/tests/${name//\//_}.log:"
		tail -n 30 "$BUILD_DIR/tests/${name//\//_}.log" | sed 's/^/    /'
	fi
}

cd "$(dirname "$0")/.."
mkdir -p "$BUILD_DIR/tests"
if [ -z "$only" ] || [ "$only" = unit ]; then run_unit; fi
for t in tests/integration/*.sh tests/fuzz/replay.sh tests/e2e/*.sh tests/hostile/*.sh; do
	[ -e "$t" ] || continue
	[ -z "$only" ] || [ "$only" = unit ] && [ -n "$only" ] && continue
	[ -z "$only" ] || [ "${t#tests/}" = "$only.sh" ] || [ "${t#tests/}" = "$only" ] || continue
	case $t in tests/e2e/*|tests/hostile/*)
		if [ "$(id -u)" -ne 0 ]; then
			echo "SKIP ${t%.sh} (needs root)"; skipped=$((skipped + 1)); continue
		fi;;
	esac
	run_script "$t"
done

[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
