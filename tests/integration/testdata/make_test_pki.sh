#!/bin/sh
# Test PKI for tests/integration/security_attack_test: a mesh CA and a foreign CA, the sidecar's
# server certificates (two, for rotation), app certificates with SPIFFE URI SANs, one without a
# SAN, one from the foreign CA and one expired. EC P-256 keys; everything in $1 (trust domain $2).
set -eu
dir=$1
domain=$2
cd "$dir"

ca() {  # name
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.crt" -subj "/CN=$1" -days 2 2>/dev/null
}

leaf() {  # name issuer days subjectAltName
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  if [ -n "$4" ]; then printf 'subjectAltName=%s\n' "$4" > "$1.ext"; else : > "$1.ext"; fi
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days "$3" \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca
ca foreign-ca
server_san="DNS:localhost,IP:127.0.0.1,URI:spiffe://$domain/sidecar/callmeshd"
leaf server ca 2 "$server_san"
leaf server-rotated ca 2 "$server_san"
for app in orders mallory greeter; do leaf "app-$app" ca 2 "URI:spiffe://$domain/app/$app"; done
leaf no-san ca 2 ""
leaf foreign-orders foreign-ca 2 "URI:spiffe://$domain/app/orders"
leaf expired-orders ca -1 "URI:spiffe://$domain/app/orders"
