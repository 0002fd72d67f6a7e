#!/usr/bin/env bash
# `make compose-demo`: deploy/compose/compose.yaml under podman-compose — callmeshd, hello and
# world sharing one network namespace with no network but its loopback. hello_client calls hello;
# hello calls world asynchronously and world's answer (or its error) is pushed to hello's
# OnGreet / OnGreetError callback under the CID of that call. Then a SIGTERM stop (all exit 0) and
# `down -v`. podman-compose 1.0.3 needs compose/podman-shim for network_mode (see there).
# With RESULTS_DIR set, the checks are recorded as JUnit test cases (make deploy-test).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$DEPLOY_DIR/tests/junit.sh"

PROJECT=callmesh-compose
COMPOSE=(podman-compose --no-ansi -p "$PROJECT" --podman-path "$DEPLOY_DIR/compose/podman-shim"
  -f "$DEPLOY_DIR/compose/compose.yaml")
SIDECAR=${PROJECT}_callmeshd_1

# podman-compose echoes every podman command it runs; keep only what they say.
quiet() { "$@" 2>&1 | grep -v -e 'unable to get systemd connection' -e '^\[' -e "^$DEPLOY_DIR" \
  -e '^[0-9a-f]\{64\}$' -e '^exit code: 0$' -e '^\*\* excluding' -e "^${PROJECT}_" \
  -e '^using podman version' -e 'no such volume' || true; }
cleanup() { quiet "${COMPOSE[@]}" down -v -t 30 > /dev/null; }
trap 'cleanup; junit_write' EXIT
cleanup
registered() {
  local names
  names=$(podman exec "$SIDECAR" callmesh services -o names) || return 1
  grep -qx hello <<< "$names" && grep -qx world <<< "$names"
}
# check NAME CMD...: a JUnit case from CMD's exit status.
check() {
  local name=$1
  shift
  if "$@"; then junit_pass "$name"; else junit_fail "$name" "'$*' failed"; fi
}

step "podman-compose $(dpkg-query -W -f '${Version}' podman-compose) up: callmeshd, world, hello"
quiet "${COMPOSE[@]}" up -d
quiet "${COMPOSE[@]}" ps
wait_for "hello and world registered" registered
podman exec "$SIDECAR" callmesh services

step "hello_client: SayHello(world) and SayHello(nobody) through the sidecar"
client_out=$(podman run --rm --network "container:$SIDECAR" "$EXAMPLES_IMAGE" hello_client \
  --names world,nobody 2>&1 | grep -v 'systemd connection')
echo "$client_out"
world_cid=$(sed -n 's/^SayHello(world): .*world.Greet async cid=\([0-9a-f-]*\),.*/\1/p' <<< "$client_out")
nobody_cid=$(sed -n 's/^SayHello(nobody): .*world.Greet async cid=\([0-9a-f-]*\),.*/\1/p' <<< "$client_out")
on_greet() { podman logs "${PROJECT}_hello_1" 2>&1 | grep -q "OnGreetError \[cid=$nobody_cid\]"; }
[ -n "$nobody_cid" ] && wait_for "OnGreetError" on_greet || true

step "what hello and world logged"
podman logs "${PROJECT}_world_1" 2>&1 | grep -E 'Greet|Note' | sed 's/^\[[0-9-]* [0-9:.]*\] //'
hello_log=$(podman logs "${PROJECT}_hello_1" 2>&1 | sed 's/^\[[0-9-]* [0-9:.]*\] //')
grep -E 'SayHello|OnGreet' <<< "$hello_log"
check "compose: world's answer reaches hello's OnGreet under the CID of hello's call" \
  grep -q "OnGreet \[cid=${world_cid:-none}\] \"Hello from the world, world!\"" <<< "$hello_log"
check "compose: world's error reaches hello's OnGreetError under its CID" \
  grep -q "OnGreetError \[cid=${nobody_cid:-none}\] NOT_FOUND: nobody is not in this world" <<< "$hello_log"

step "podman-compose stop (SIGTERM: drain, exit 0), then down -v"
quiet "${COMPOSE[@]}" stop -t 30 > /dev/null
codes=$(podman inspect --format '{{.Name}} exit code {{.State.ExitCode}}' "$SIDECAR" \
  "${PROJECT}_world_1" "${PROJECT}_hello_1")
echo "$codes"
check "compose: every service exits 0 on SIGTERM" bash -c "! grep -v 'exit code 0$' <<< '$codes'"
cleanup
trap junit_write EXIT
echo "removed the containers and the journal volume"
junit_summary
