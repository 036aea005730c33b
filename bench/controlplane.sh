#!/usr/bin/env bash
# The control plane at scale on loopback (no root needed): fake-istiod serving a mesh from
# `fake-istiod generate` and K ztunnels (one per simulated node), churn applied step by step.
# Prints initial sync per ztunnel, push fan-out p50/p99, bytes per change, CPU and RSS of
# fake-istiod and the ztunnels, memory per workload above idle, whether every ztunnel's
# /config_dump converged to `fake-istiod check` (exit 1 if not), and the L4 authorization
# decision time with 1,000 and 10,000 policies x 10 rules, each next to the target.
#   bench/controlplane.sh [--pods N] [--ztunnels K] [--churn S] [--json FILE] [--quick] ...
#   bench/controlplane.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
export BUILD_DIR=${BUILD_DIR:-$PWD/build}
make --no-print-directory -j2 BUILD="$BUILD_DIR" >/dev/null
exec python3 bench/lib/controlplane.py "$@"
