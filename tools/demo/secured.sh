#!/usr/bin/env bash
# The secured step of `make demo` (issue 12): a mesh CA made with `callmesh certs`, callmeshd with
# TLS on its API, a token for one app and mTLS to the apps it calls, the greeter serving mTLS (only
# its sidecar may call it), the greeter called with a token and with a client certificate, then
# intruders refused with the exact status they get. Everything on free loopback ports with a
# temporary directory; uses the binaries in bazel-bin (override with BIN=/path/to/bazel-bin).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-$(bazel info bazel-bin 2>/dev/null)}
CALLMESH="$BIN/cli/callmesh"
DEMO=secured
# shellcheck source=tools/demo/common.sh
source tools/demo/common.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Prints a command as one would type it: words with spaces or shell characters in single quotes.
show() {
  local line="\$" word
  for word in "$@"; do
    if [[ "$word" =~ [^A-Za-z0-9_./:=@%+,-] ]]; then line+=" '$word'"; else line+=" $word"; fi
  done
  echo "$line" | sed "s|$WORK|\$WORK|g; s|$BIN/cli/||g"
}

# An intruder's command: it must fail; what it printed and its exit code are shown.
refused() {
  show "$@"
  set +e
  "$@" 2>&1 | sed "s|$WORK|\$WORK|g"
  local code=${PIPESTATUS[0]}
  set -e
  echo "(exit $code)"
  [ "$code" -ne 0 ] || { echo "secured: the intruder was not refused" >&2; exit 1; }
}

step "a mesh CA and the identities: the sidecar, the greeter, the client app"
for command in "certs init --dir $WORK/certs" "certs issue demo --kind sidecar --dir $WORK/certs" \
  "certs issue greeter --dir $WORK/certs" "certs issue client --dir $WORK/certs"; do
  show callmesh $command
  # shellcheck disable=SC2086
  "$CALLMESH" $command | sed "s|$WORK|\$WORK|g"
done
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/client.token"
chmod 600 "$WORK/client.token"

cat >"$WORK/callmeshd.yaml" <<YAML
name: demo
security:
  trust_domain: callmesh.local
  tls:
    cert_file: $WORK/certs/sidecar-demo.crt
    key_file: $WORK/certs/sidecar-demo.key
    ca_file: $WORK/certs/ca.crt
  tokens:
    - {app: client, file: $WORK/client.token}
YAML

step "callmeshd with TLS, tokens and certificates (config: security block), mTLS to apps"
sed "s|$WORK|\$WORK|g" "$WORK/callmeshd.yaml"
"$BIN/runtime/sidecar/callmeshd" --config "$WORK/callmeshd.yaml" --listen 127.0.0.1:0 \
  --data-dir "$WORK/data" --ready-file "$WORK/callmeshd.ready" >"$WORK/callmeshd.log" 2>&1 &
pids+=($!)
wait_for "$WORK/callmeshd.ready" "${pids[-1]}" callmeshd
SIDECAR=$(head -n 1 "$WORK/callmeshd.ready")
echo "callmeshd listening on $SIDECAR (TLS)"

step "greeter serving mTLS with its certificate (CALLMESH_TLS_*), registered over TLS"
CALLMESH_TLS_CA="$WORK/certs/ca.crt" CALLMESH_TLS_CERT="$WORK/certs/greeter.crt" \
  CALLMESH_TLS_KEY="$WORK/certs/greeter.key" \
  "$BIN/services/greeter/greeter_server" --sidecar "$SIDECAR" --listen 127.0.0.1:0 \
  --ready-file "$WORK/greeter.ready" >"$WORK/greeter.log" 2>&1 &
pids+=($!)
wait_for "$WORK/greeter.ready" "${pids[-1]}" greeter
GREETER=$(head -n 1 "$WORK/greeter.ready")
echo "greeter listening on $GREETER (mTLS, sidecars of callmesh.local only)"

# Only sidecars may call apps now, so the CLI reads the greeter's types from a protoset instead
# of server reflection.
protoc -I. --include_imports --descriptor_set_out="$WORK/greeter.protoset" \
  services/greeter/greeter.proto
export CALLMESH_SIDECAR="$SIDECAR"

step "the client app calls the greeter with its token (over TLS)"
show CALLMESH_TOKEN_FILE=\$WORK/client.token CALLMESH_TLS_CA=\$WORK/certs/ca.crt \
  callmesh invoke greeter SayHello -d "'{\"name\": \"token\"}'"
CALLMESH_TOKEN_FILE="$WORK/client.token" CALLMESH_TLS_CA="$WORK/certs/ca.crt" \
  "$CALLMESH" --protoset "$WORK/greeter.protoset" invoke greeter SayHello -d '{"name": "token"}'

step "the client app calls the greeter with its certificate (mTLS)"
show callmesh --tls-ca \$WORK/certs/ca.crt --tls-cert \$WORK/certs/client.crt \
  --tls-key \$WORK/certs/client.key invoke greeter SayHello -d "'{\"name\": \"mtls\"}'"
"$CALLMESH" --tls-ca "$WORK/certs/ca.crt" --tls-cert "$WORK/certs/client.crt" \
  --tls-key "$WORK/certs/client.key" --protoset "$WORK/greeter.protoset" \
  invoke greeter SayHello -d '{"name": "mtls"}'

step "intruders: no credentials, a guessed token, plaintext"
echo "not-the-token" >"$WORK/guess.token"
refused "$CALLMESH" --tls-ca "$WORK/certs/ca.crt" --protoset "$WORK/greeter.protoset" \
  invoke greeter SayHello -d '{"name": "intruder"}'
refused "$CALLMESH" --tls-ca "$WORK/certs/ca.crt" --token-file "$WORK/guess.token" \
  --protoset "$WORK/greeter.protoset" invoke greeter SayHello -d '{"name": "intruder"}'
refused "$CALLMESH" --connect-timeout 2s --protoset "$WORK/greeter.protoset" \
  invoke greeter SayHello -d '{"name": "intruder"}'

step "stopping (SIGTERM)"
for pid in "${pids[1]}" "${pids[0]}"; do
  kill -TERM "$pid"
  wait "$pid"
done
pids=()
echo
echo "secured: done"
