#!/usr/bin/env bash
# Line and branch coverage per layer, from the .gcda files of one coverage run
# (`make coverage`): runtime, protocol, hbone and proxy, the daemon's modules, fake-istiod,
# sim. Usage: scripts/coverage-layers.sh [OBJDIR]   (default build/cov/obj)
set -euo pipefail
cd "$(dirname "$0")/.."
obj=${1:-build/cov/obj}
[ -d "$obj" ] || { echo "coverage-layers: no $obj (run make coverage first)" >&2; exit 1; }
json=$(mktemp)
trap 'rm -f "$json"' EXIT
gcovr --root . --object-directory "$obj" --filter 'ztunnel/' --filter 'fake-istiod/' \
	--filter 'sim/' --exclude 'ztunnel/proto/' --json-summary "$json" > /dev/null
jq -r '
  def layer: if startswith("ztunnel/runtime/") then "runtime"
    elif startswith("ztunnel/protocol/") then "protocol"
    elif startswith("ztunnel/hbone/") or startswith("ztunnel/proxy/") then "hbone+proxy"
    elif startswith("ztunnel/") then "daemon modules"
    elif startswith("fake-istiod/") then "fake-istiod"
    elif startswith("sim/") then "sim" else "other" end;
  def pct(a; b): if b == 0 then "-" else ((a * 1000 / b | floor) / 10 | tostring) + "%" end;
  ["runtime", "protocol", "hbone+proxy", "daemon modules", "fake-istiod", "sim"] as $order
  | (.files | group_by(.filename | layer)
     | map({layer: (.[0].filename | layer), files: length,
            lc: (map(.line_covered) | add), lt: (map(.line_total) | add),
            bc: (map(.branch_covered) | add), bt: (map(.branch_total) | add)})) as $rows
  | (["LAYER", "FILES", "LINES", "BRANCHES"] | @tsv),
    ($order[] as $l | $rows[] | select(.layer == $l)
     | [.layer, .files, "\(pct(.lc; .lt)) of \(.lt)", "\(pct(.bc; .bt)) of \(.bt)"] | @tsv),
    (["total", ($rows | map(.files) | add),
      "\(pct($rows | map(.lc) | add; $rows | map(.lt) | add)) of \($rows | map(.lt) | add)",
      "\(pct($rows | map(.bc) | add; $rows | map(.bt) | add)) of \($rows | map(.bt) | add)"]
     | @tsv)' "$json" | column -t -s $'\t'
