#!/usr/bin/env bash
# Adds up the campaign lines in BUILD/logs/summary.txt (usage: summary.sh BUILD [SINCE]):
# one Markdown row per target with its executions (runs summed), mean exec/s (executions over
# fuzzing time), and cov, ft and corpus size of its last run. SINCE (an ISO time, e.g.
# 2026-12-06T17:40) leaves out earlier lines.
set -euo pipefail
build=$1; since=${2:-}
echo "| target | executions | runs | exec/s | cov | ft | corpus |"
echo "|---|---|---|---|---|---|---|"
awk -v since="$since" '
$1 >= since {
	name = $2
	for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	if (v["execs"] == "?") next
	execs[name] += v["execs"]
	if (v["exec/s"] > 0) secs[name] += v["execs"] / v["exec/s"]
	cov[name] = v["cov"]; ft[name] = v["ft"]; corpus[name] = v["corpus"]; runs[name]++
}
END {
	for (t in execs)
		printf "| `%s` | %d%s | %d | %d | %s | %s | %s |\n", t, execs[t],
			(execs[t] >= 10000000 ? "" : " (not 10M)"), runs[t],
			(secs[t] > 0 ? execs[t] / secs[t] : 0), cov[t], ft[t], corpus[t]
}' "$build/logs/summary.txt" | sort
