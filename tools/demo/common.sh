# Shared by the demo scripts (sourced, after `cd` to the repository root, with DEMO set to the
# script's name for its messages): a fresh $WORK directory, the pids=() of the processes the
# script starts, both cleaned up on exit, and wait_for.
: "${DEMO:?set DEMO before sourcing tools/demo/common.sh}"
WORK=$(mktemp -d "/tmp/callmesh-$DEMO.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() {  # wait_for FILE PID NAME: until FILE is not empty; fails if PID exits (NAME.log shown)
  for _ in $(seq 1 300); do
    [ -s "$1" ] && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      echo "$DEMO: $3 exited; its log:" >&2; cat "$WORK/$3.log" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "$DEMO: $3 did not start within 30 s; its log:" >&2; cat "$WORK/$3.log" >&2; exit 1
}
