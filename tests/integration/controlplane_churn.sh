#!/usr/bin/env bash
# fake-istiod generate and the control-plane benchmark at small N: the generator is
# deterministic, bounds its inputs with a clear message, and its split files load as one mesh;
# then fake-istiod and 3 ztunnels (bench/controlplane.sh --quick) go through 3 churn steps
# (pods added, removed, relabelled; a policy changed) and every ztunnel's /config_dump must
# end equal in content to `fake-istiod check`.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(cd "${BUILD_DIR:-build}/bin" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

echo "== generate: same flags, same bytes; churn changes what it names"
"$bin/fake-istiod" generate --pods 50 --namespaces 5 --nodes 2 --churn 2 > "$dir/a.yaml"
"$bin/fake-istiod" generate --pods 50 --namespaces 5 --nodes 2 --churn 2 > "$dir/b.yaml"
cmp -s "$dir/a.yaml" "$dir/b.yaml" || fail "two runs differ"
"$bin/fake-istiod" check --config "$dir/a.yaml" --format json > "$dir/a.json"
jq -e '[.addresses[] | select(.resource.workload)] | length == 50' "$dir/a.json" > /dev/null ||
	fail "expected 50 workloads (50 - 2 removed + 2 added)"
jq -e '[.addresses[].resource.workload | select(.name == "churn-2")] | length == 1' \
	"$dir/a.json" > /dev/null || fail "churn-2 missing"
jq -e '[.addresses[].resource.workload | select(.canonicalRevision == "c2")] | length == 1' \
	"$dir/a.json" > /dev/null || fail "relabel of step 2 missing"

echo "== generate --split: files within bounds load as the same mesh"
mkdir "$dir/split"
"$bin/fake-istiod" generate --pods 50 --namespaces 5 --nodes 2 --churn 2 --out "$dir/split" \
	--split 7 > "$dir/files"
[ "$(wc -l < "$dir/files")" -gt 4 ] || fail "expected several files: $(cat "$dir/files")"
# shellcheck disable=SC2046
"$bin/fake-istiod" check $(sed 's/^/--config /' "$dir/files") --format json > "$dir/s.json"
[ "$(jq -S '[.addresses[].name, .authorizations[].name] | sort' "$dir/s.json")" = \
	"$(jq -S '[.addresses[].name, .authorizations[].name] | sort' "$dir/a.json")" ] ||
	fail "split files load differently"

echo "== generate --split: a churn step rewrites one pods file and the policies file"
mkdir "$dir/c1" "$dir/c2"
"$bin/fake-istiod" generate --pods 400 --namespaces 5 --nodes 2 --churn 1 --out "$dir/c1" \
	--split 64 > /dev/null
"$bin/fake-istiod" generate --pods 400 --namespaces 5 --nodes 2 --churn 2 --out "$dir/c2" \
	--split 64 > /dev/null
changed=$(cd "$dir/c1" && for f in *.yaml; do cmp -s "$f" "../c2/$f" || echo "$f"; done)
[ "$(echo "$changed" | grep -c '^pods-')" = 1 ] && echo "$changed" | grep -qx 'policies-000.yaml' &&
	[ "$(echo "$changed" | wc -l)" = 2 ] || fail "churn step 2 rewrote: $(echo $changed)"

echo "== generate: bad shapes are refused with the flag named"
out=$("$bin/fake-istiod" generate --pods 9000000 2>&1 >/dev/null) && fail "accepted 9M pods"
grep -q -- '--pods: expected at most' <<<"$out" || fail "message: $out"
out=$("$bin/fake-istiod" generate --nodes x 2>&1 >/dev/null) && fail "accepted --nodes x"
grep -q -- '--nodes x: expected a non-negative integer' <<<"$out" || fail "message: $out"

echo "== fake-istiod + 3 ztunnels, 3 churn steps: every config_dump converges"
python3 bench/lib/controlplane.py --quick --no-idle --json "$dir/cp.json" || fail "benchmark failed"
jq -e '.converged and .initial_converged and (.churn | length) == 3 and
	([.churn[].fanout_ms | length] | all(. == 3)) and .workloads == 60' "$dir/cp.json" \
	> /dev/null || fail "results: $(jq -c '{converged, churn: [.churn[].fanout_ms]}' "$dir/cp.json")"
echo "ok"
