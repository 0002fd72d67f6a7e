#!/usr/bin/env bash
# `make pod-demo`: the quickstart as a pod. callmeshd is the sidecar container, the greeter and the
# clients are containers of the same pod; the pod has no network but its own loopback, so no
# traffic leaves it. Shows a sync call, an async call answered at its callback, a kill -9 of the
# sidecar container and its restart with the pending call completing under the same CID, then a
# SIGTERM stop that drains an in-flight call and exits 0.
#
# With RESULTS=FILE each assertion is also recorded there as a JUnit test case (make deploy-test).
# Everything it starts is removed at the end (pod, containers, journal volume); images stay.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$DEPLOY_DIR/tests/junit.sh"

POD=callmesh-demo
SIDECAR=$POD-sidecar
GREETER=$POD-greeter
VOLUME=$POD-journal

cleanup() {
  podman pod rm -f -t 0 "$POD" > /dev/null 2>&1 || true
  podman volume rm -f "$VOLUME" > /dev/null 2>&1 || true
}
trap 'cleanup; junit_write' EXIT
cleanup

# podman without systemd (as on our VMs) cannot schedule an image's health check and says so on
# every start and stop; `podman healthcheck run` below runs it on demand instead.
# Also drops the container names that kill/start/stop echo.
quiet_podman() {
  podman "$@" 2>&1 | grep -v -e 'unable to get systemd connection' -e "^$POD-[a-z]*\$" || true
}
# run_in_pod ARGS...: a one-off container of the examples image in the pod.
run_in_pod() { podman run --rm --pod "$POD" "$EXAMPLES_IMAGE" "$@"; }
show() {  # show CMD...: prints the command as typed, then runs it
  printf '$ %s\n' "${*#quiet_}"
  "$@"
}
sidecar_serving() { podman exec "$SIDECAR" callmesh health --wait --timeout 60s > /dev/null; }
greeter_registered() {
  podman exec "$SIDECAR" callmesh services -o names | grep -qx greeter
}

step "pod $POD with no network but its loopback; the journal on volume $VOLUME"
podman pod create --name "$POD" --network none > /dev/null
podman volume create "$VOLUME" > /dev/null
quiet_podman run -d --pod "$POD" --name "$SIDECAR" --volume "$VOLUME:/var/lib/callmesh" \
  "$CALLMESHD_IMAGE" --name quickstart --data-dir /var/lib/callmesh > /dev/null
podman run -d --pod "$POD" --name "$GREETER" "$EXAMPLES_IMAGE" \
  greeter_server --listen 127.0.0.1:50051 > /dev/null
show podman pod ps --filter name="$POD" --format '{{.Name}}  {{.Status}}  {{.NumberOfContainers}} containers'
echo "network interfaces inside the pod: $(nsenter --net="/proc/$(podman inspect --format \
  '{{.State.Pid}}' "$SIDECAR")/ns/net" ip -brief link | awk '{print $1}' | tr '\n' ' ')"
wait_for "callmeshd serving" sidecar_serving
wait_for "greeter registration" greeter_registered
show podman healthcheck run "$SIDECAR" && echo "healthy"
podman logs "$SIDECAR" 2>&1 | sed 's/^\[[0-9-]* [0-9:.]*\] //'
show podman exec "$SIDECAR" callmesh services

step "sync: greeter_client calls SayHello through the sidecar"
sync_out=$(run_in_pod greeter_client)
echo "$sync_out"
if grep -q '^Sidecar.Invoke *: "Hello, world!"' <<< "$sync_out"; then
  junit_pass "pod: sync call OK"
else
  junit_fail "pod: sync call OK" "greeter_client printed: $sync_out"
fi

step "async: async_client's InvokeAsync calls, outcomes pushed to its callbacks"
async_out=$(run_in_pod async_client)
echo "$async_out"
accepted=$(sed -n 's/.*accepted cid=\([0-9a-f-]*\).*/\1/p' <<< "$async_out" | head -n 1)
if [ -n "$accepted" ] &&
  grep -q "callback quickstart-audit got cid=$accepted CALL_STATE_SUCCEEDED" <<< "$async_out"; then
  junit_pass "pod: async call SUCCEEDED at its callback under the same CID"
else
  junit_fail "pod: async call SUCCEEDED at its callback under the same CID" "async_client printed: $async_out"
fi

step "kill -9 of the sidecar container while an async call runs"
cid=$(podman exec "$SIDECAR" callmesh invoke greeter SayHello --async \
  -d '{"name": "survivor", "delayMs": 3000}')
echo "accepted cid=$cid (the greeter takes 3 s)"
wait_for "the call to start" bash -c \
  "podman exec $SIDECAR callmesh calls get $cid -o table | grep -q RUNNING"
show podman exec "$SIDECAR" callmesh calls get "$cid" -o table
show quiet_podman kill --signal KILL "$SIDECAR"
podman wait "$SIDECAR" > /dev/null || true
echo "sidecar container: $(podman inspect --format '{{.State.Status}}, exit code {{.State.ExitCode}}' "$SIDECAR")"
show quiet_podman start "$SIDECAR"
wait_for "callmeshd serving after the restart" sidecar_serving
podman logs "$SIDECAR" 2>&1 | grep -E 'journal: opened|listening' | tail -n 2 | sed 's/^\[[0-9-]* [0-9:.]*\] //'
wait_out=$(podman exec "$SIDECAR" callmesh calls wait "$cid" --timeout 60s -o table 2>&1 || true)
printf '$ callmesh calls wait %s -o table\n%s\n' "$cid" "$wait_out"
if grep -q '^state  *SUCCEEDED' <<< "$wait_out" && grep -q "\"cid\":\"$cid\"" <<< "$wait_out"; then
  junit_pass "pod: the call completes under the same CID after kill -9 and restart"
else
  junit_fail "pod: the call completes under the same CID after kill -9 and restart" "$wait_out"
fi

step "SIGTERM stop of the sidecar while a sync call is in flight: drain, exit 0"
drain_log=$(mktemp)
run_in_pod callmesh invoke greeter SayHello -d '{"name": "drain", "delayMs": 2000}' \
  > "$drain_log" 2>&1 &
client=$!
wait_for "the in-flight call to reach the greeter" bash -c \
  "podman logs $GREETER 2>&1 | grep -q 'SayHello name=drain'"
show quiet_podman stop --time 30 "$SIDECAR"
client_code=0
wait "$client" || client_code=$?
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$SIDECAR")
podman logs "$SIDECAR" 2>&1 | grep -E 'received|stopped' | sed 's/^\[[0-9-]* [0-9:.]*\] //'
echo "in-flight call (exit code $client_code): $(tr -s '\n ' ' ' < "$drain_log")"
echo "sidecar container: exit code $exit_code"
if [ "$exit_code" = 0 ] && [ "$client_code" = 0 ] && grep -q 'Hello, drain!' "$drain_log"; then
  junit_pass "pod: SIGTERM drains the in-flight call and exits 0"
else
  junit_fail "pod: SIGTERM drains the in-flight call and exits 0" \
    "sidecar exit $exit_code, client exit $client_code: $(cat "$drain_log")"
fi
rm -f "$drain_log"

step "the greeter stops on SIGTERM too; the pod and the volume are removed"
podman stop --time 30 "$GREETER" > /dev/null
echo "greeter container: exit code $(podman inspect --format '{{.State.ExitCode}}' "$GREETER")"
junit_summary
