#!/usr/bin/env bash
# `make cluster-demo`: cluster mode on one machine, without root. Three "hosts" h1, h2, h3 are
# three sets of loopback ports; each host runs a nats-server (the three form one JetStream
# cluster, routed to each other), a callmeshd with a `cluster:` block (registry bucket with 3
# replicas, sidecar_id h<N>, its peer listener on loopback) and, on h2 and h3, the greeter.
#
#   1. greeter on h3 only; `callmesh services` on h1 lists it with HOST h3;
#   2. a sync call from h1, answered by the greeter on h3 (its log shows the call's CID);
#   3. async calls from h1 (services/greeter/async_client), run on h3, whose callbacks are delivered
#      to callback services that async_client hosts on h1;
#   4. the greeter also on h2; then h3's callmeshd killed with kill -9: the next call from h1 is
#      answered on h2, and h1 drops h3's instance after the TTL (3 s); both timed;
#   5. publish/subscribe: billing (services/orders) subscribes through h2, orders are published
#      through h1, and billing gets each event once.
# Everything is stopped on exit. Ports are free ports picked at start (not 4770). Uses the
# binaries in bazel-bin (override with BIN=/path/to/bazel-bin); build them first:
#   bazel build //:callmeshd //:callmesh //services/greeter/... //services/orders/...
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-$(bazel info bazel-bin 2>/dev/null)}
DEMO=cluster
# shellcheck source=tools/demo/common.sh
source tools/demo/common.sh
# Interrupted (Ctrl-C, kill): exit, so that common.sh's EXIT trap stops what was started.
trap 'exit 130' INT
trap 'exit 143' TERM

CALLMESH="$BIN/cli/callmesh"
fail() { echo "cluster-demo: $*" >&2; exit 1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() {  # show COMMAND...: prints it as one would type it (callmesh for its path), runs it
  local line="\$" word
  for word in "$@"; do
    word=${word//$BIN\/cli\//}
    if [[ "$word" =~ [^A-Za-z0-9_./:=@%+,-] ]]; then line+=" '$word'"; else line+=" $word"; fi
  done
  echo "$line"
  "$@"
}
now() { date +%s.%N; }
elapsed_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# Nine free loopback ports: per host a NATS client port, a NATS route port, a peer listener.
read -r -a ports <<<"$(python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(9)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()
EOF
)"
nats_port() { echo "${ports[$(($1 - 1))]}"; }
route_port() { echo "${ports[$(($1 + 2))]}"; }
peer_port() { echo "${ports[$(($1 + 5))]}"; }
declare -A sidecar_pid sidecar_addr

step "three NATS servers, one JetStream cluster (h1 :$(nats_port 1), h2 :$(nats_port 2), h3 :$(nats_port 3))"
for h in 1 2 3; do
  mkdir -p "$WORK/h$h"
  routes=()
  for other in 1 2 3; do
    [ "$other" = "$h" ] || routes+=("\"nats://127.0.0.1:$(route_port "$other")\"")
  done
  cat >"$WORK/h$h/nats.conf" <<EOF
server_name: n$h
listen: "127.0.0.1:$(nats_port "$h")"
jetstream { store_dir: "$WORK/h$h/nats-store", max_memory_store: 64MB, max_file_store: 1GB }
cluster {
  name: callmesh-demo
  listen: "127.0.0.1:$(route_port "$h")"
  routes: [$(IFS=,; echo "${routes[*]}")]
}
EOF
  nats-server -c "$WORK/h$h/nats.conf" >"$WORK/nats-h$h.log" 2>&1 &
  pids+=($!)
done
cat "$WORK/h1/nats.conf"

step "three callmeshd, each with a cluster block; h1's config:"
nats_servers="[nats://127.0.0.1:$(nats_port 1), nats://127.0.0.1:$(nats_port 2), nats://127.0.0.1:$(nats_port 3)]"
for h in 1 2 3; do
  cat >"$WORK/h$h/callmeshd.yaml" <<EOF
listen: 127.0.0.1:0
name: demo-h$h
data_dir: $WORK/h$h/data
cluster:
  nats_servers: $nats_servers
  sidecar_id: h$h
  advertise_address: 127.0.0.1:$(peer_port "$h")
  replicas: 3
  heartbeat_interval: 1s
  instance_ttl: 3s
EOF
done
cat "$WORK/h1/callmeshd.yaml"
start_sidecar() {  # start_sidecar H
  rm -f "$WORK/h$1/callmeshd.ready"
  "$BIN/runtime/sidecar/callmeshd" --config "$WORK/h$1/callmeshd.yaml" \
    --ready-file "$WORK/h$1/callmeshd.ready" >"$WORK/callmeshd-h$1.log" 2>&1 &
  pids+=($!)
  sidecar_pid[$1]=$!
  wait_for "$WORK/h$1/callmeshd.ready" "$!" "callmeshd-h$1"
  sidecar_addr[$1]=$(head -n 1 "$WORK/h$1/callmeshd.ready")
}
for h in 1 2 3; do start_sidecar "$h"; done
echo "Sidecar API (for the apps of each host): h1 ${sidecar_addr[1]}, h2 ${sidecar_addr[2]}, h3 ${sidecar_addr[3]}"
echo "peer listeners (for the other sidecars): h1 :$(peer_port 1), h2 :$(peer_port 2), h3 :$(peer_port 3)"
# The sidecars start at once (NATS or not: degraded mode) and join when JetStream is up.
started=$(now)
for h in 1 2 3; do
  for _ in $(seq 1 300); do
    "$CALLMESH" --sidecar "${sidecar_addr[$h]}" health --service callmesh.cluster >/dev/null 2>&1 &&
      break
    sleep 0.1
  done
done
for h in 1 2 3; do
  show "$CALLMESH" --sidecar "${sidecar_addr[$h]}" health --service callmesh.cluster ||
    fail "h$h's shared registry is not serving; its log: $(cat "$WORK/callmeshd-h$h.log")"
done
echo "(shared registry up on all three $(elapsed_ms "$started" "$(now)") ms after the sidecars started)"
if grep -q 'bucket .*: Timeout' "$WORK"/callmeshd-h*.log; then
  echo "(a sidecar that asked for the bucket before the new JetStream cluster could answer waited"
  echo " for its request's 1 s timeout, then asked again: the Timeout lines below)"
fi
grep -h 'cluster:' "$WORK"/callmeshd-h*.log | sed 's/^/  /'

start_greeter() {  # start_greeter H
  "$BIN/services/greeter/greeter_server" --listen 127.0.0.1:0 --sidecar "${sidecar_addr[$1]}" \
    --ready-file "$WORK/h$1/greeter.ready" >"$WORK/greeter-h$1.log" 2>&1 &
  pids+=($!)
  wait_for "$WORK/h$1/greeter.ready" "$!" "greeter-h$1"
}
# Waits until h1's `callmesh services` lists greeter instances on exactly the hosts given.
wait_for_greeters() {  # wait_for_greeters "h2 h3"
  local want=$1 got=""
  for _ in $(seq 1 100); do
    got=$("$CALLMESH" --sidecar "${sidecar_addr[1]}" -o json services --no-methods | python3 -c '
import json, sys
print(" ".join(sorted(i.get("host", "") for s in json.load(sys.stdin)
                      if s["name"] == "greeter" for i in s.get("instances", []))))')
    [ "$got" = "$want" ] && return 0
    sleep 0.1
  done
  fail "h1 lists greeter instances on '$got', expected '$want'"
}
served_on() {  # served_on CID: the host whose greeter logged CID
  grep -l -- "cid=$1" "$WORK"/greeter-h*.log 2>/dev/null | sed 's/.*greeter-\(h[0-9]\)\.log/\1/' |
    tr '\n' ' '
}

step "the greeter on h3 (registered with h3's sidecar); h1 sees it through the shared registry"
start_greeter 3
wait_for_greeters "h3"
show "$CALLMESH" --sidecar "${sidecar_addr[1]}" services

step "a sync call from h1: h1's sidecar -> h3's peer listener -> the greeter on h3"
show "$CALLMESH" --sidecar "${sidecar_addr[1]}" invoke greeter SayHello -d '{"name": "from h1"}'
echo "the greeter on h3 logged:"
grep 'SayHello' "$WORK/greeter-h3.log" | sed 's/^/  /'

step "async calls from h1 (async_client): accepted and journaled by h1, run on h3, callbacks on h1"
echo "(async_client hosts quickstart-audit and quickstart-async-callback, registered with h1)"
"$BIN/services/greeter/async_client" --sidecar "${sidecar_addr[1]}" >"$WORK/async_client.log" 2>&1 ||
  { cat "$WORK/async_client.log"; fail "async_client failed"; }
grep -v '^\[' "$WORK/async_client.log"
echo "the greeter on h3 ran them:"
grep 'SayHello' "$WORK/greeter-h3.log" | tail -n 3 | sed 's/^/  /'
cid=$(grep -m 1 -o 'accepted cid=[0-9a-f-]*' "$WORK/async_client.log" | cut -d= -f2)
echo "the call log is not replicated: h1, which accepted $cid, has it; h3, which ran it, does not:"
show "$CALLMESH" --sidecar "${sidecar_addr[1]}" calls get "$cid" -o table
show "$CALLMESH" --sidecar "${sidecar_addr[3]}" calls get "$cid" 2>&1 || echo "(exit code $?)"

step "the greeter on h2 too; h1 now lists both"
start_greeter 2
wait_for_greeters "h2 h3"
show "$CALLMESH" --sidecar "${sidecar_addr[1]}" services
show "$CALLMESH" --sidecar "${sidecar_addr[1]}" stats | grep -E '^(\$|cluster)' || true

step "kill -9 of h3's callmeshd (pid ${sidecar_pid[3]}); calls from h1 go on to h2"
killed=$(now)
kill -9 "${sidecar_pid[3]}"
wait "${sidecar_pid[3]}" 2>/dev/null || true
echo "killed at $(date -u -d "@$killed" +%T.%3N)"
first_ok=""
for i in $(seq 1 5); do
  t0=$(now)
  if out=$("$CALLMESH" --sidecar "${sidecar_addr[1]}" -o json invoke greeter SayHello \
      -d "{\"name\": \"after kill $i\"}" 2>&1); then
    t1=$(now)
    [ -n "$first_ok" ] || first_ok=$t1
    echo "call $i: +$(elapsed_ms "$killed" "$t1") ms after the kill, took $(elapsed_ms "$t0" "$t1") ms: $(echo "$out" | tr -s ' \n' ' ')"
  else
    t1=$(now)
    echo "call $i: +$(elapsed_ms "$killed" "$t1") ms after the kill, FAILED: $out"
  fi
done
[ -n "$first_ok" ] || fail "no call succeeded after h3's sidecar was killed"
echo "the greeter on h2 logged:"
grep 'after kill' "$WORK/greeter-h2.log" | sed 's/^/  /'
if grep -q 'after kill' "$WORK/greeter-h3.log"; then
  echo "the greeter on h3 logged (its sidecar is gone, so these came before the kill was seen):"
  grep 'after kill' "$WORK/greeter-h3.log" | sed 's/^/  /'
fi

step "h1's registry drops h3's instance after the TTL"
echo "right after the calls (+$(elapsed_ms "$killed" "$(now)") ms):"
show "$CALLMESH" --sidecar "${sidecar_addr[1]}" services
for _ in $(seq 1 200); do
  listed=$("$CALLMESH" --sidecar "${sidecar_addr[1]}" -o json services --no-methods | python3 -c '
import json, sys
print(" ".join(sorted(i.get("host", "") for s in json.load(sys.stdin)
                      for i in s.get("instances", []))))')
  case " $listed " in *" h3 "*) sleep 0.05 ;; *) break ;; esac
done
dropped=$(now)
case " $listed " in *" h3 "*) fail "h1 still lists h3's instance 10 s after the kill" ;; esac
echo "h3's instance no longer listed on h1 $(elapsed_ms "$killed" "$dropped") ms after the kill (instance_ttl 3s, heartbeat 1s):"
show "$CALLMESH" --sidecar "${sidecar_addr[1]}" services
show "$CALLMESH" --sidecar "${sidecar_addr[1]}" stats | grep -E '^(\$|cluster)' || true

step "publish/subscribe across hosts: billing subscribes through h2, orders publish through h1"
"$BIN/services/orders/billing_server" --listen 127.0.0.1:0 --sidecar "${sidecar_addr[2]}" \
  --ready_file "$WORK/billing.ready" >"$WORK/billing.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
  "$CALLMESH" --sidecar "${sidecar_addr[1]}" -o json topics 2>/dev/null | grep -q '"billing"' && break
  sleep 0.05
done
echo "(the subscription made through h2 is shared with every sidecar; h1 holds it too)"
show "$CALLMESH" --sidecar "${sidecar_addr[1]}" topics
"$BIN/services/orders/orders_client" --sidecar "${sidecar_addr[1]}" --count 3 \
  >"$WORK/orders_client.log" 2>&1 || { cat "$WORK/orders_client.log"; fail "orders_client failed"; }
grep -v '^\[' "$WORK/orders_client.log"
for _ in $(seq 1 200); do
  [ "$(grep -c 'billing: invoice' "$WORK/billing.log" || true)" -ge 3 ] && break
  sleep 0.05
done
invoiced=$(grep -c 'billing: invoice' "$WORK/billing.log" || true)
[ "$invoiced" -eq 3 ] || fail "billing on h2 received $invoiced events, expected 3"
echo "billing on h2 got each event published through h1 once:"
grep -h 'billing: invoice' "$WORK/billing.log" | sed 's/^\[[a-z]*\] /  /'

step "stopping everything (SIGTERM: the sidecars leave the registry, drain and exit)"
cleanup_order=("${pids[@]}")
for ((i = ${#cleanup_order[@]} - 1; i >= 0; i--)); do
  kill -TERM "${cleanup_order[$i]}" 2>/dev/null || true
  wait "${cleanup_order[$i]}" 2>/dev/null || true
done
pids=()
echo "what h1 logged about the other sidecars:"
grep -h -e 'not heard of' -e 'left the cluster' "$WORK/callmeshd-h1.log" | sed 's/^/  /'
echo
echo "cluster-demo: done"
