#!/usr/bin/env bash
# `make kube-demo`: the Kubernetes manifests of deploy/kubernetes/ run by `podman kube play`, with
# calls through them: the greeter Deployment answers a sync call, in the hello-world Deployment
# hello's call to world completes and reaches hello's OnGreet callback, and fib, worker and
# reports (examples.yaml) each answer a call through their own sidecar. Then every pod
# is stopped with SIGTERM (callmeshd drains and exits 0) and removed with its volumes.
#
# Podman 4.3 needs two adjustments, both printed when used: native sidecars become ordinary first
# containers (kubernetes/podman_compat.py), and the OCI runtime is runc-rlimits (podman's kube play
# asks for more open files than this VM allows). Pods get --network none: only their loopback.
# With RESULTS_DIR set, the checks are recorded as JUnit test cases (make deploy-test).
# (`kubectl --dry-run=client` is no schema check offline: kubectl 1.32 still asks an API server for
# its resource list, and Debian's kubernetes-client conflicts with the kubectl on our VMs.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$DEPLOY_DIR/tests/junit.sh"

KUBE_DIR=$DEPLOY_DIR/kubernetes
MANIFESTS=("$KUBE_DIR/greeter.yaml" "$KUBE_DIR/hello-world.yaml" "$KUBE_DIR/examples.yaml")
VOLUMES=(greeter-journal hello-world-journal fib-journal worker-journal reports-journal
  callmeshd-config)
PODMAN=(podman --runtime "$DEPLOY_DIR/runc-rlimits")
played=$(mktemp --suffix=.yaml)

quiet() { "$@" 2>&1 | grep -v 'unable to get systemd connection' || true; }
# Removes the pods and volumes of the manifests (also those an interrupted earlier run left).
teardown() {
  quiet "${PODMAN[@]}" kube down "$played" > /dev/null 2>&1 || true
  for volume in "${VOLUMES[@]}"; do podman volume rm -f "$volume" > /dev/null 2>&1 || true; done
}
cleanup() {
  teardown
  rm -f "$played"
}
trap 'cleanup; junit_write' EXIT
registered() {  # registered POD SERVICE...
  local pod=$1 names
  shift
  names=$(podman exec "$pod-callmeshd" callmesh services -o names) || return 1
  for service in "$@"; do grep -qx "$service" <<< "$names" || return 1; done
}
# check NAME CMD...: a JUnit case from CMD's exit status.
check() {
  local name=$1
  shift
  if "$@"; then junit_pass "$name"; else junit_fail "$name" "'$*' failed"; fi
}

step "podman kube play (Podman $(podman version --format '{{.Client.Version}}'))"
"$KUBE_DIR/podman_compat.py" "${MANIFESTS[@]}" > "$played"
teardown
echo "podman_compat.py: native sidecars (init containers with restartPolicy: Always) become the first container of their pod"
printf '$ podman --runtime deploy/runc-rlimits kube play --network none --configmap kubernetes/callmeshd-config.yaml <greeter.yaml hello-world.yaml examples.yaml>\n'
quiet "${PODMAN[@]}" kube play --network none --configmap "$KUBE_DIR/callmeshd-config.yaml" \
  "$played" | grep -v -e '^[0-9a-f]\{64\}$' -e '^Pod:$' -e '^Containers:$' | sed '/^$/d'
podman ps --filter label=app.kubernetes.io/part-of=callmesh --format '{{.Names}}\t{{.Status}}' |
  column -t -s $'\t'
wait_for "greeter registered" registered greeter-pod-0 greeter
wait_for "hello and world registered" registered hello-world-pod-0 hello world hello-async-callback
for service in fib worker reports; do
  wait_for "$service registered" registered "$service-pod-0" "$service"
done

step "the liveness probes became podman health checks (grpc.health.v1 through callmesh health)"
for container in greeter-pod-0-callmeshd greeter-pod-0-greeter hello-world-pod-0-callmeshd; do
  health=$(podman healthcheck run "$container" 2>&1 || true)
  echo "$container: ${health:-healthy}"
done
check "kube: callmeshd's liveness probe runs as a health check and passes" \
  podman healthcheck run greeter-pod-0-callmeshd

step "a sync call through the greeter Deployment's sidecar"
reply=$(podman exec greeter-pod-0-callmeshd callmesh invoke greeter SayHello -d '{"name": "kube"}' 2>&1 || true)
printf '$ callmesh invoke greeter SayHello -d %s\n%s\n' "'{\"name\": \"kube\"}'" "$reply"
check "kube: greeter answers through its sidecar" grep -q '"message": "Hello, kube!"' <<< "$reply"

step "hello -> world in the hello-world Deployment, the answer at hello's OnGreet"
reply=$(podman exec hello-world-pod-0-callmeshd callmesh invoke hello SayHello -d '{"name": "kube"}' 2>&1 || true)
printf '$ callmesh invoke hello SayHello -d %s\n%s\n' "'{\"name\": \"kube\"}'" "$reply"
world_cid=$(sed -n 's/.*"worldCid": "\([0-9a-f-]*\)".*/\1/p' <<< "$reply")
state=$(podman exec hello-world-pod-0-callmeshd callmesh calls wait "$world_cid" --timeout 30s -o table 2>&1 || true)
printf '$ callmesh calls wait %s -o table\n%s\n' "$world_cid" "$state"
on_greet() { podman logs hello-world-pod-0-hello 2>&1 | grep -q "OnGreet \[cid=$world_cid\]"; }
[ -n "$world_cid" ] && wait_for "OnGreet" on_greet || true
podman logs hello-world-pod-0-hello 2>&1 | grep -F "$world_cid" | sed 's/^\[[0-9-]* [0-9:.]*\] //'
check "kube: world's answer reaches hello's OnGreet under the call's CID" \
  bash -c "[ -n '$world_cid' ] && grep -q '^state  *SUCCEEDED' <<< '$state' && podman logs hello-world-pod-0-hello 2>&1 | grep -q 'OnGreet \[cid=$world_cid\]'"

step "fib, worker and reports (examples.yaml), each through its own sidecar"
examples_ok=true
for call in 'fib Compute {"n": 30}' 'worker Work {"job": "kube"}' \
  'reports Build {"title": "kube", "seconds": 1, "rows": 2}'; do
  read -r service method json <<< "$call"
  printf '$ callmesh invoke %s %s -d %s\n' "$service" "$method" "'$json'"
  if ! podman exec "$service-pod-0-callmeshd" callmesh invoke "$service" "$method" -d "$json" \
    --timeout 30s; then
    examples_ok=false
  fi
done
check "kube: fib, worker and reports answer through their sidecars" $examples_ok

step "SIGTERM: podman pod stop (callmeshd drains, exits 0), then podman kube down"
containers=$(podman ps -a --filter label=app.kubernetes.io/part-of=callmesh --format '{{.Names}}')
quiet podman pod stop --time 30 greeter-pod-0 hello-world-pod-0 fib-pod-0 worker-pod-0 reports-pod-0 \
  > /dev/null
# shellcheck disable=SC2086 # one name per word
codes=$(podman inspect --format '{{.Name}} exit code {{.State.ExitCode}}' $containers)
echo "$codes"
podman logs greeter-pod-0-callmeshd 2>&1 | grep -E 'received|stopped' | sed 's/^\[[0-9-]* [0-9:.]*\] //'
check "kube: every container exits 0 on SIGTERM" bash -c "! grep -v 'exit code 0$' <<< '$codes'"
cleanup
trap junit_write EXIT
echo "removed the pods and the volumes ${VOLUMES[*]}"
junit_summary
