#!/usr/bin/env bash
# The five example services of services/ (fib, hello_world, callbacks, long_job, orders) against one
# callmeshd on a free loopback port with a temporary journal; prints the key lines of each, stops
# everything with SIGTERM and exits non-zero if any step fails. Uses the binaries in bazel-bin
# (override with BIN=/path/to/bazel-bin); build them first:
#   bazel build //runtime/sidecar:callmeshd //cli:callmesh //services/...
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-$(bazel info bazel-bin 2>/dev/null)}
DEMO=examples
# shellcheck source=tools/demo/common.sh
source tools/demo/common.sh

fail() { echo "examples: $*" >&2; exit 1; }

wait_for_lines() {  # wait_for_lines FILE PATTERN COUNT
  for _ in $(seq 1 300); do
    [ "$(grep -c -- "$2" "$1" || true)" -ge "$3" ] && return 0
    sleep 0.1
  done
  fail "expected $3 lines matching '$2' in $1; got: $(cat "$1")"
}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

start_server() {  # start_server NAME BINARY [ARGS...]
  "$BIN/$2" --sidecar "$SIDECAR" --listen 127.0.0.1:0 --ready-file "$WORK/$1.ready" "${@:3}" \
    >"$WORK/$1.log" 2>&1 &
  pids+=($!)
  wait_for "$WORK/$1.ready" "${pids[-1]}" "$1"
}

client() {  # client NAME BINARY ARGS... : runs it, shows its output, fails the demo if it fails
  local name=$1 binary=$2
  shift 2
  if ! "$BIN/$binary" --sidecar "$SIDECAR" "$@" >"$WORK/$name.log" 2>&1; then
    cat "$WORK/$name.log"
    fail "$name failed"
  fi
  grep -v '^\[' "$WORK/$name.log" || true
}

step "callmeshd on a free loopback port (journal in $WORK/data)"
"$BIN/runtime/sidecar/callmeshd" --name examples --listen 127.0.0.1:0 --data-dir "$WORK/data" \
  --ready-file "$WORK/callmeshd.ready" >"$WORK/callmeshd.log" 2>&1 &
pids+=($!)
wait_for "$WORK/callmeshd.ready" "${pids[-1]}" callmeshd
SIDECAR=$(head -n 1 "$WORK/callmeshd.ready")
echo "callmeshd listening on $SIDECAR"

start_server fib services/fib/fib_server
start_server world services/hello_world/world_server
start_server hello services/hello_world/hello_server
start_server worker services/callbacks/worker_server
start_server reports services/long_job/reports_server
start_server billing services/orders/billing_server
start_server shipping-1 services/orders/shipping_server --instance shipping-1
start_server shipping-2 services/orders/shipping_server --instance shipping-2
echo "servers up: fib, world, hello (+ hello-async-callback), worker, reports, billing, shipping x2"

step "fib: async requests with correlation IDs, replies awaited on futures (RabbitMQ RPC)"
client fib_client services/fib/fib_client --n 10,30,90
grep -o '\[cid=[^]]*\] fib([0-9]*) = [0-9]*' "$WORK/fib.log" | sed 's/^/  fib server: /'

step "hello -> world: async Greet from a handler, answered at OnGreet / OnGreetError; a cast"
client hello_client services/hello_world/hello_client --names world,nobody
wait_for_lines "$WORK/hello.log" "OnGreet" 2
wait_for_lines "$WORK/world.log" "Note" 2
grep -h -e "OnGreet" "$WORK/hello.log" | sed 's/^\[[a-z]*\] /  /'
grep -h -e "Greet " -e "Note" "$WORK/world.log" | sed 's/^\[[a-z]*\] /  /'

step "callbacks: explicit callback service, then <caller>-async-callback by convention"
client callbacks_client services/callbacks/callbacks_client
grep -h "worker: received" "$WORK/worker.log" | sed 's/^\[[a-z]*\] /  /'

step "long job: a 3 s report, polled by CID and pushed to the caller"
client report_client services/long_job/report_client --seconds 3

step "orders: publish OrderPlaced; billing (PARALLEL) and shipping (ORDERED, 2 instances) subscribe"
client orders_client services/orders/orders_client --count 6
wait_for_lines "$WORK/billing.log" "billing: invoice" 6
for _ in $(seq 1 300); do
  [ "$(cat "$WORK"/shipping-*.log | grep -c ": shipping o-")" -ge 6 ] && break
  sleep 0.1
done
grep -h "billing: invoice" "$WORK/billing.log" | sed 's/^\[[a-z]*\] /  /'
grep -h ": shipping o-" "$WORK"/shipping-1.log "$WORK"/shipping-2.log | sed 's/^\[[a-z]*\] /  /'
shipped=$(cat "$WORK"/shipping-*.log | grep -c ": shipping o-" || true)
[ "$shipped" -eq 6 ] || fail "shipping received $shipped events, expected 6 (one per order)"
echo '$ callmesh topics'
"$BIN/cli/callmesh" --sidecar "$SIDECAR" topics

step "stopping (SIGTERM: deregister, drain, exit 0)"
for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
  kill -TERM "${pids[$i]}"
  wait "${pids[$i]}" || fail "process ${pids[$i]} exited with an error"
done
pids=()
tail -n 1 "$WORK/callmeshd.log"
echo
echo "examples: done"
