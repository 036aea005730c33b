#!/usr/bin/env bash
# Certificate helper for tests and labs: a root CA and SPIFFE workload certificates, all
# ECDSA P-256, made with the openssl command.
#   scripts/certs.sh root DIR [NAME]            DIR/root-cert.pem, DIR/root-key.pem
#   scripts/certs.sh leaf DIR NAME SPIFFE_ID [DAYS]
#                                               DIR/NAME-cert.pem (leaf), DIR/NAME-key.pem,
#                                               signed by DIR's root; EKU serverAuth+clientAuth
set -euo pipefail

usage() { sed -n '2,8p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
mkdir -p "$dir"

case $cmd in
root)
	name=${3:-Test Root}
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
		-days 3650 -subj "/O=cluster.local/CN=$name" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$dir/root-key.pem" -out "$dir/root-cert.pem" 2>/dev/null
	chmod 600 "$dir/root-key.pem"
	;;
leaf)
	[ $# -ge 4 ] || usage
	name=$3 id=$4 days=${5:-1}
	case $id in spiffe://*) ;; *) echo "certs.sh: '$id' is not a spiffe:// URI" >&2; exit 2;; esac
	[ -f "$dir/root-cert.pem" ] || { echo "certs.sh: no root in $dir (run: certs.sh root $dir)" >&2; exit 2; }
	ext=$(mktemp)
	trap 'rm -f "$ext" "$dir/$name.csr"' EXIT
	cat > "$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=critical,URI:$id
EXT
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -subj "/" \
		-keyout "$dir/$name-key.pem" -out "$dir/$name.csr" 2>/dev/null
	openssl x509 -req -in "$dir/$name.csr" -CA "$dir/root-cert.pem" -CAkey "$dir/root-key.pem" \
		-CAcreateserial -sha256 -days "$days" -extfile "$ext" -out "$dir/$name-cert.pem" 2>/dev/null
	chmod 600 "$dir/$name-key.pem"
	;;
*) usage ;;
esac
