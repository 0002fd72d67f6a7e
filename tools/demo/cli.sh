#!/usr/bin/env bash
# A short tour of the `callmesh` CLI against a running callmeshd with the greeter registered.
#
#   tools/demo/cli.sh 127.0.0.1:4770            # sidecar address (default $CALLMESH_SIDECAR)
#
# Uses $CALLMESH (default: bazel-bin/cli/callmesh) as the binary.
set -euo pipefail

export CALLMESH_SIDECAR="${1:-${CALLMESH_SIDECAR:-127.0.0.1:4770}}"
CALLMESH="${CALLMESH:-bazel-bin/cli/callmesh}"

echo "== the CLI talks to the sidecar at $CALLMESH_SIDECAR"
echo
echo '$ callmesh services'
"$CALLMESH" services
echo

echo '$ callmesh invoke greeter SayHello -d '"'"'{"name": "world"}'"'"
"$CALLMESH" invoke greeter SayHello -d '{"name": "world"}'
echo

echo "== an async call: the CID at once, the outcome by polling"
echo '$ callmesh invoke greeter SayHello -d '"'"'{"name": "async", "delayMs": 500}'"'"' --async'
cid=$("$CALLMESH" invoke greeter SayHello -d '{"name": "async", "delayMs": 500}' --async)
echo "$cid"
echo
echo "\$ callmesh calls get $cid -o table"
"$CALLMESH" calls get "$cid" -o table
echo
echo "\$ callmesh calls wait $cid -o table"
"$CALLMESH" calls wait "$cid" --timeout 10s -o table
echo

echo "== bad input is named precisely (exit code 2)"
echo '$ callmesh invoke greeter SayHello -d '"'"'{"nmae": "typo"}'"'"
"$CALLMESH" invoke greeter SayHello -d '{"nmae": "typo"}' 2>&1 || echo "(exit code $?)"
