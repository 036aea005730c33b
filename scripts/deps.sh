#!/usr/bin/env bash
# Installs, with apt-get, every Debian 12 package needed to build, test and run the lab.
# Idempotent: packages already present are left alone; with --check it only reports
# what is missing (exit 1 if anything is). Opt-in groups add packages only some targets need:
#   scripts/deps.sh [--check] [image] [bench]
# "image": container images (podman and runc, about 60 MB), for `make image` and the tests that
# build or run an image. "bench" (or --bench): the peers bench/dataplane.sh compares with and
# gnuplot for the plots; `make test` does not need them.
# graphviz draws the lab (lab graph, make demo).
set -euo pipefail
check=
groups=()
for a in "$@"; do
	case $a in
	--check) check=1 ;;
	image|bench) groups+=("$a") ;;
	--bench) groups+=(bench) ;;
	*) echo "deps: unknown argument $a (use: scripts/deps.sh [--check] [image] [bench])" >&2; exit 2 ;;
	esac
done

pkgs=(
	build-essential pkg-config clang clang-format libclang-rt-14-dev
	libssl-dev openssl
	libnghttp2-dev libhttp-parser-dev
	libprotobuf-c-dev protobuf-c-compiler
	libnl-3-dev libnl-route-3-dev
	libyaml-dev libjansson-dev libmicrohttpd-dev
	libldns-dev dnsmasq-base bind9-dnsutils
	check libsubunit-dev gcovr
	iproute2 iptables nftables procps psmisc curl jq bsdextrautils python3 python3-yaml
	python3-hpack ca-certificates graphviz
)
for g in "${groups[@]}"; do
	case $g in
	# runc, not crun: crun refuses this kind of host's cgroup setup (see scripts/image.sh).
	image) pkgs+=(podman runc) ;;
	bench) pkgs+=(stunnel4 haproxy gnuplot-nox) ;;
	esac
done

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed'; then
		missing+=("$p")
	fi
done
# node is used only as an independent HTTP/2 and TLS peer in interop tests; any
# installed node will do, otherwise Debian's package.
command -v node >/dev/null 2>&1 || missing+=(nodejs)

if [ -n "$check" ]; then
	if [ ${#missing[@]} -gt 0 ]; then
		echo "missing packages: ${missing[*]}" >&2
		exit 1
	fi
	exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: need root to install: ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
