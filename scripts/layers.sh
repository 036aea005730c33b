#!/usr/bin/env bash
# `make layers`: the layering of the tree (README "Module map"), checked on every #include "...":
#   1 runtime    ztunnel/runtime
#   2 protocol   ztunnel/protocol and the generated protobuf code (istio/, envoy/, google/)
#   3 hbone      ztunnel/hbone
#   4 services   ztunnel/{state,xds,cert,telemetry,admin,config}
#   5 workload   ztunnel/{proxy,inpod,dns}
#   6 wiring     ztunnel/app, ztunnel/main.c
#   tools        fake-istiod/, sim/*/: runtime, protocol and hbone only (and their own files);
#                sim/sim-waypoint also the services layer (state, xds, cert: it is an xDS
#                and CA client like the daemon), never proxy/ or app/
# A file may include headers of its own layer or below. Modules (one .c/.h pair) must not
# include each other in a circle. Exits 1 naming each offending include.
set -euo pipefail
cd "$(dirname "$0")/.."

rank_of() { # path of a source file or of an included header -> layer number (tools: 3)
	case $1 in
	ztunnel/runtime/* | runtime/*) echo 1 ;;
	ztunnel/protocol/* | protocol/* | istio/* | envoy/* | google/*) echo 2 ;;
	ztunnel/hbone/* | hbone/*) echo 3 ;;
	ztunnel/state/* | ztunnel/xds/* | ztunnel/cert/* | ztunnel/telemetry/* | ztunnel/admin/* | \
		ztunnel/config/* | state/* | xds/* | cert/* | telemetry/* | admin/* | config/*) echo 4 ;;
	ztunnel/proxy/* | ztunnel/inpod/* | ztunnel/dns/* | proxy/* | inpod/* | dns/*) echo 5 ;;
	ztunnel/app/* | ztunnel/main.c | app/*) echo 6 ;;
	fake-istiod/* | sim/*) echo 3 ;;
	*) echo 9 ;;
	esac
}
names=(- runtime protocol hbone "state/xds/cert/telemetry/admin/config" "proxy/inpod/dns" app)

bad=0
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
while IFS= read -r f; do
	dir=${f%/*}
	own=$(rank_of "$f")
	mod=${f%.[ch]}
	while IFS=: read -r line inc; do
		inc=${inc#*\"}
		inc=${inc%%\"*}
		if [ "${inc#*/}" = "$inc" ]; then target=$dir/$inc # a file of the same folder
		elif [ -e "ztunnel/$inc" ]; then target=ztunnel/$inc
		elif [ -e "$inc" ] || [ "$(rank_of "$inc")" = 2 ]; then target=$inc # generated: protocol
		else continue
		fi
		r=$(rank_of "$target")
		case $f in
		fake-istiod/* | sim/*)
			if [ "${target%/*}" = "$dir" ]; then :
			elif [ "$dir" = sim/sim-waypoint ] && [ "$r" = 4 ]; then :
			elif [ "$r" -gt 3 ] || [ "${target#sim/}" != "$target" ] || [ "${target#fake-istiod/}" != "$target" ]; then
				echo "layers: $f:$line includes \"$inc\": tools use only runtime, protocol and hbone" >&2
				bad=1
			fi
			;;
		*)
			if [ "$r" -gt "$own" ]; then
				echo "layers: $f:$line includes \"$inc\" (${names[$r]}), above its own layer (${names[$own]})" >&2
				bad=1
			fi
			;;
		esac
		tmod=${target%.h}
		[ "$tmod" = "$mod" ] || echo "$mod $tmod $f:$line" >>"$edges"
	done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
done < <(find ztunnel fake-istiod sim -name '*.[ch]' -not -path 'ztunnel/proto/*' | sort)

# Circles between modules: tsort prints each circle it finds as its modules in order.
if ! loops=$(cut -d' ' -f1,2 "$edges" | tsort 2>&1 >/dev/null); then
	sed -n 's/^tsort: //p' <<<"$loops" | awk -v edges="$edges" '
		function flush(   i, j, k) {
			for (i = 1; i <= n; i++) {
				j = i % n + 1
				for (k = 1; k <= ne; k++)
					if (ea[k] == m[i] && eb[k] == m[j]) { print "layers:   " el[k] " includes " m[j] ".h"; break }
			}
			n = 0
		}
		BEGIN { while ((getline l < edges) > 0) { split(l, p, " "); ne++; ea[ne] = p[1]; eb[ne] = p[2]; el[ne] = p[3] } }
		/input contains a loop/ { flush(); print "layers: modules include each other in a circle:"; next }
		{ m[++n] = $0 }
		END { flush() }' >&2
	bad=1
fi
[ $bad -eq 0 ] && echo "layers: ok ($(cut -d' ' -f1 "$edges" | sort -u | wc -l) modules, no include upwards, no circle)"
exit $bad
