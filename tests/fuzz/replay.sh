#!/usr/bin/env bash
# Replays every committed corpus file through its fuzz target (no fuzzing): one replay_NAME
# program per tests/fuzz/fuzz_NAME.c, fed tests/fuzz/corpus/NAME/. Also checks that every
# target has a seed corpus. Fails on a crash, a sanitizer report or a missing corpus.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
fail=0
for src in tests/fuzz/fuzz_*.c; do
	name=${src#tests/fuzz/fuzz_}; name=${name%.c}
	corpus=tests/fuzz/corpus/$name
	if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
		echo "fuzz $name: no seed corpus in $corpus"; fail=1; continue
	fi
	if out=$("$build/tests/fuzz/replay_$name" "$corpus" 2>&1); then
		echo "fuzz $name: $out replayed"
	else
		echo "fuzz $name: FAILED"; echo "$out" | tail -40; fail=1
	fi
done
exit $fail
