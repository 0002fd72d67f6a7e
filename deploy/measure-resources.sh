#!/usr/bin/env bash
# Measures what deploy/kubernetes/ asks for: callmeshd's and the greeter's resident memory (idle
# and at peak) and their CPU time per 1,000 calls, sync (Invoke, 8 in flight) and async
# (InvokeAsync to the greeter, outcome pushed to a callback, 64 in flight), each for 10 s on
# loopback. The same optimized binaries as the images (-c opt); CPU is utime+stime from
# /proc/PID/stat, memory VmRSS / VmHWM from /proc/PID/status. Prints one table.
#
#   deploy/measure-resources.sh        (about a minute after the build; not part of the tests)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

BAZEL=${BAZEL:-bazel}
$BAZEL build -c opt //:callmeshd //services/greeter:greeter_server //bench/load:load_client \
  //bench/async:async_load 2> /dev/null
bin=$($BAZEL info -c opt bazel-bin 2> /dev/null)
work=$(mktemp -d /tmp/callmesh-measure.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
wait_file() { for _ in $(seq 1 300); do [ -s "$1" ] && return 0; sleep 0.1; done; die "no $1"; }

"$bin/runtime/sidecar/callmeshd" --listen 127.0.0.1:0 --data-dir "$work/data" --log-level warn \
  --ready-file "$work/sidecar" > "$work/callmeshd.log" 2>&1 &
pids+=($!)
callmeshd=$!
wait_file "$work/sidecar"
sidecar=$(cat "$work/sidecar")
"$bin/services/greeter/greeter_server" --listen 127.0.0.1:0 --sidecar "$sidecar" \
  --ready-file "$work/greeter" > "$work/greeter.log" 2>&1 &
pids+=($!)
greeter=$!
wait_file "$work/greeter"
sleep 2

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kib() { awk -v key="$2:" '$1 == key {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
echo "idle: callmeshd $(($(kib "$callmeshd" VmRSS) / 1024)) MiB, greeter $(($(kib "$greeter" VmRSS) / 1024)) MiB RSS"

measure() {  # measure LABEL COMMAND...: CPU ms per 1k calls of callmeshd and greeter
  local label=$1 before_c before_g out calls
  shift
  before_c=$(ticks "$callmeshd")
  before_g=$(ticks "$greeter")
  out=$("$@" 2>&1)
  calls=$(sed -n 's/^RESULT .*"calls":\([0-9]*\).*/\1/p' <<< "$out")
  [ -n "$calls" ] && [ "$calls" -gt 0 ] || die "$label: no calls counted: $out"
  echo "$label: $calls calls in 10 s; CPU per 1k calls: callmeshd" \
    "$(((($(ticks "$callmeshd") - before_c) * 1000 * 1000 / hz) / calls)) ms," \
    "greeter $(((($(ticks "$greeter") - before_g) * 1000 * 1000 / hz) / calls)) ms"
}
measure "sync (Invoke, 8 in flight)" "$bin/bench/load/load_client" --mode invoke \
  --address "$sidecar" --in_flight 8 --duration 10s --warmup 0s --payload_bytes 64
measure "async (InvokeAsync + callback, 64 in flight)" "$bin/bench/async/async_load" --mode e2e \
  --sidecar "$sidecar" --in_flight 64 --duration 10s --warmup 0s --payload_bytes 64
echo "peak: callmeshd $(($(kib "$callmeshd" VmHWM) / 1024)) MiB, greeter $(($(kib "$greeter" VmHWM) / 1024)) MiB RSS (VmHWM)"
echo "journal on disk: $(du -sh "$work/data" | cut -f1)"
