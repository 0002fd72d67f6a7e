#!/usr/bin/env bash
# The quickstart of README.md: callmeshd and the greeter on their default loopback addresses, the
# greeter called through the sidecar, then both stopped with SIGTERM. Run by `make demo` after the
# build; uses the binaries in bazel-bin.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$(bazel info bazel-bin 2>/dev/null)
WORK=$(mktemp -d /tmp/callmesh-demo.XXXXXX)
SIDECAR=127.0.0.1:4770
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_for() {  # wait_for FILE PID WHAT
  for _ in $(seq 1 300); do
    [ -s "$1" ] && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      echo "demo: $3 exited; its log:" >&2; cat "$WORK/$3.log" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "demo: $3 did not start within 30 s; its log:" >&2; cat "$WORK/$3.log" >&2; exit 1
}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "callmeshd on $SIDECAR (journal in $WORK/data)"
"$BIN/runtime/sidecar/callmeshd" --name quickstart --data-dir "$WORK/data" \
  --ready-file "$WORK/callmeshd.ready" >"$WORK/callmeshd.log" 2>&1 &
pids+=($!)
wait_for "$WORK/callmeshd.ready" "${pids[-1]}" callmeshd
cat "$WORK/callmeshd.log"

step "greeter on 127.0.0.1:50051, registered with the sidecar as 'greeter'"
"$BIN/services/greeter/greeter_server" --sidecar "$SIDECAR" \
  --ready-file "$WORK/greeter.ready" >"$WORK/greeter.log" 2>&1 &
pids+=($!)
wait_for "$WORK/greeter.ready" "${pids[-1]}" greeter
cat "$WORK/greeter.log"

step "greeter_client: SayHello through the sidecar, twice"
"$BIN/services/greeter/greeter_client" --sidecar "$SIDECAR"

step "async_client: InvokeAsync with callbacks, a poll by CID, a watch stream"
"$BIN/services/greeter/async_client" --sidecar "$SIDECAR"

step "the callmesh CLI: services, a sync and an async call in JSON, a precise error"
CALLMESH="$BIN/cli/callmesh" ./tools/demo/cli.sh "$SIDECAR"

step "what the greeter logged (the CIDs it saw)"
grep SayHello "$WORK/greeter.log" || true

step "stopping (SIGTERM: deregister, drain, exit 0)"
for pid in "${pids[1]}" "${pids[0]}"; do
  kill -TERM "$pid"
  wait "$pid"
done
pids=()
tail -n 2 "$WORK/callmeshd.log"
rm -rf "$WORK"
echo
echo "demo: done"
