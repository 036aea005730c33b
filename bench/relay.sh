#!/usr/bin/env bash
# Relay throughput over loopback: splice(2) relay vs the relay's copy mode vs a plain
# read/write loop, in one run. Not part of `make test`.
#   bench/relay.sh [MIB per transfer, default 1024] [RUNS, default 5]
# BUILD_DIR (default build) names the build directory; the binary is built if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
make --no-print-directory -j2 BUILD="$build" "$build/tests/relay_bench" >/dev/null
echo "kernel $(uname -r), $(nproc) CPUs"
"$build/tests/relay_bench" "${1:-1024}" "${2:-5}"
