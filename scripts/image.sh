#!/usr/bin/env bash
# Container images of the built binaries, FROM scratch (no registry is needed or reached):
#   ztunnel          /usr/local/bin/ztunnel, ENTRYPOINT as Istio's image (spec §16)
#   ztunnel-toolkit  fake-istiod, sim-workload, sim-cni, hbone-client
# Each holds its binaries, exactly the shared libraries they link (read from the binaries:
# the ELF interpreter and what it resolves, via ldd), the CA roots and passwd/group files.
# An image is rebuilt only when its inputs changed: its tag is a hash of them.
#   scripts/image.sh [--build-dir DIR] [--latest] [ztunnel|toolkit]...   (default: both)
# --latest also tags each image :latest (make image does; tests leave :latest alone).
# Prints one image reference per line on stdout (progress and sizes go to stderr).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$ROOT/build}
want=()
latest=
while [ $# -gt 0 ]; do
	case $1 in
	--build-dir) [ $# -ge 2 ] || { echo "image: --build-dir needs a directory" >&2; exit 2; }
		build=$2; shift 2 ;;
	--latest) latest=1; shift ;;
	ztunnel | toolkit) want+=("$1"); shift ;;
	*) echo "image: unknown argument $1 (use: scripts/image.sh [--build-dir DIR] [--latest] [ztunnel|toolkit])" >&2
		exit 2 ;;
	esac
done
[ ${#want[@]} -gt 0 ] || want=(ztunnel toolkit)
build=$(cd "$build" 2>/dev/null && pwd) || { echo "image: no build directory $build: run make first" >&2; exit 1; }
BIN=$build/bin

say() { echo "image: $*" >&2; }
die() { echo "image: $*" >&2; exit 1; }

if ! command -v podman > /dev/null 2>&1; then
	"$ROOT/scripts/deps.sh" --check image 2> /dev/null || "$ROOT/scripts/deps.sh" image >&2 ||
		die "podman is missing and could not be installed: run scripts/deps.sh image as root"
fi
command -v podman > /dev/null 2>&1 || die "podman is missing: run scripts/deps.sh image as root"
[ -f /etc/ssl/certs/ca-certificates.crt ] ||
	die "/etc/ssl/certs/ca-certificates.crt is missing: run scripts/deps.sh (ca-certificates)"

# libs_of BIN: the ELF interpreter and every shared library the binary loads, as absolute
# paths, from the binary itself (PT_INTERP, then ldd resolving DT_NEEDED transitively).
libs_of() {
	local bin=$1 interp
	interp=$(readelf -l "$bin" | sed -n 's/.*\[Requesting program interpreter: \(.*\)\]/\1/p')
	[ -n "$interp" ] || die "$bin is not a dynamically linked ELF program"
	echo "$interp"
	local list
	list=$(ldd "$bin") || die "ldd $bin failed"
	! grep -q 'not found' <<<"$list" || die "$bin: $(grep 'not found' <<<"$list" | head -1 | xargs): install it first"
	awk '$2 == "=>" && $3 ~ /^\// {print $3} $2 != "=>" && $1 ~ /^\// {print $1}' <<<"$list" |
		grep -vxF "$interp" || true
}

# rootfs DIR USER_LINE BINARY...: binaries in /usr/local/bin, their libraries at the paths the
# loader looks them up by, CA roots, passwd/group, and the directories the DaemonSet mounts.
rootfs() {
	local dir=$1 user=$2 b l libs
	shift 2
	mkdir -p "$dir/usr/local/bin" "$dir/etc/ssl/certs" "$dir/tmp" \
		"$dir/var/run/secrets/istio" "$dir/var/run/secrets/tokens" "$dir/var/run/ztunnel"
	chmod 1777 "$dir/tmp"
	for b in "$@"; do
		[ -x "$BIN/$b" ] || die "$BIN/$b is missing: run make first"
		cp "$BIN/$b" "$dir/usr/local/bin/$b"
		libs=$(libs_of "$BIN/$b") || exit 1 # die inside $(...) only ends the subshell
		for l in $libs; do
			mkdir -p "$dir$(dirname "$l")"
			cp -L "$l" "$dir$l"
		done
	done
	cp -L /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
	printf 'root:x:0:0:root:/:/sbin/nologin\n%s\n' "$user" > "$dir/etc/passwd"
	printf 'root:x:0:\nistio-proxy:x:1337:\nnonroot:x:65532:\n' > "$dir/etc/group"
	# Files first, then DNS (the glibc default without this file is the other way round).
	echo 'hosts: files dns' > "$dir/etc/nsswitch.conf"
}

# Hash of everything that goes into an image: file paths, modes and contents, and the
# Containerfile. Equal hash, equal image: the build is skipped.
inputs_hash() {
	local dir=$1
	(cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum && find . -printf '%p %m\n' | sort) |
		sha256sum | cut -c1-16
}

image_size() { podman image inspect --format '{{.Size}}' "$1" | awk '{printf "%.1f MB", $1 / 1000000}'; }

version=$("$BIN/ztunnel" version 2> /dev/null | sed -n 's/.*BuildInfo{Version:"\([^"]*\)".*/\1/p')
commit=$("$BIN/ztunnel" version 2> /dev/null | sed -n 's/.*GitRevision:"\([^"]*\)".*/\1/p')
[ -n "$version" ] && [ -n "$commit" ] || die "$BIN/ztunnel version did not print a version: run make first"

work=$(mktemp -d /tmp/zt-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

# build NAME CONTAINERFILE-BODY: the image localhost/NAME:<inputs hash> (and :latest).
build() {
	local name=$1 body=$2 ctx=$work/$1 hash ref
	printf 'FROM scratch\nCOPY rootfs/ /\n%s\n' "$body" > "$ctx/Containerfile"
	hash=$(inputs_hash "$ctx")
	ref=localhost/$name:$hash
	if podman image exists "$ref"; then
		say "$ref is up to date ($(image_size "$ref"))"
	else
		say "building $ref"
		podman build --quiet --network none --label "io.ztunnel.inputs=$hash" \
			-t "$ref" -f "$ctx/Containerfile" "$ctx" > "$ctx/build.log" 2>&1 ||
			die "podman build of $name failed: $(tail -3 "$ctx/build.log")"
		say "$ref built ($(image_size "$ref"))"
		# Older images of the same build directory go (asan and plain builds keep one each).
		podman images --format '{{.Repository}}:{{.Tag}}' --filter "reference=localhost/$name" \
			--filter "label=io.ztunnel.build=$build" | grep -vxF -e "$ref" -e "localhost/$name:latest" |
			xargs -r podman rmi > /dev/null 2>&1 || true
	fi
	[ -z "$latest" ] || podman tag "$ref" "localhost/$name:latest"
	echo "$ref"
}

labels="LABEL org.opencontainers.image.version=\"$version\" \\
      org.opencontainers.image.revision=\"$commit\" \\
      io.ztunnel.build=\"$build\""

for w in "${want[@]}"; do
	case $w in
	ztunnel)
		mkdir -p "$work/ztunnel"
		rootfs "$work/ztunnel/rootfs" 'istio-proxy:x:1337:1337:istio-proxy:/:/sbin/nologin' ztunnel
		# No ISTIO_META_ISTIO_VERSION (Istio's image sets its release): istiod takes a proxy
		# without one as the newest. Runs as root: the chart's pod sets runAsUser 0 with NET_ADMIN, SYS_ADMIN and NET_RAW
		# (entering pod namespaces, SO_MARK, transparent sockets; spec §16), so no USER here.
		build ztunnel "$labels \\
      org.opencontainers.image.title=\"ztunnel\" \\
      org.opencontainers.image.description=\"ztunnel in C for Istio ambient mode\"
WORKDIR /
ENTRYPOINT [\"/usr/local/bin/ztunnel\"]"
		;;
	toolkit)
		mkdir -p "$work/ztunnel-toolkit"
		tools=(fake-istiod sim-workload sim-cni hbone-client)
		rootfs "$work/ztunnel-toolkit/rootfs" 'nonroot:x:65532:65532:nonroot:/:/sbin/nologin' "${tools[@]}"
		# The toolkit needs no privilege except sim-cni, which is run as root when used.
		build ztunnel-toolkit "$labels \\
      org.opencontainers.image.title=\"ztunnel-toolkit\" \\
      org.opencontainers.image.description=\"fake-istiod, sim-workload, sim-cni and hbone-client\"
ENV PATH=/usr/local/bin
WORKDIR /
USER 65532:65532
CMD [\"/usr/local/bin/fake-istiod\", \"--help\"]"
		;;
	esac
done
