#!/usr/bin/env bash
# The images build (make images, reusing the cached base when it exists) and run: each image's
# binaries start as the unprivileged user with the libraries the image installed, and the callmeshd
# image stays under 100 MB.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$DEPLOY_DIR/tests/junit.sh"
trap junit_write EXIT

if podman image exists "$BASE_IMAGE" 2>/dev/null; then
  echo "images-test: the base $BASE_IMAGE exists and is reused"
fi
if "$DEPLOY_DIR/images.sh"; then
  junit_pass "images: make images builds callmeshd and examples"
else
  junit_fail "images: make images builds callmeshd and examples" "deploy/images.sh failed (output above)"
  junit_summary
  exit 1
fi

# check NAME EXPECTED_SUBSTRING CMD...: CMD's output contains EXPECTED_SUBSTRING.
check() {
  local name=$1 want=$2 out
  shift 2
  out=$("$@" 2>&1)
  if grep -qF -- "$want" <<< "$out"; then
    junit_pass "$name"
  else
    junit_fail "$name" "'$*' printed: $out"
  fi
}
# The images have no coreutils: dash's builtins read the process's own status.
check "images: callmeshd's image runs as uid 10001" "Uid: 10001 10001 10001 10001" \
  podman run --rm --network none --entrypoint /bin/sh "$CALLMESHD_IMAGE" -c \
  'while read -r line; do case $line in Uid:*) echo $line ;; esac; done < /proc/self/status' 
check "images: callmeshd --help runs with the image's libraries" "callmesh sidecar daemon" \
  podman run --rm --network none "$CALLMESHD_IMAGE" --help
check "images: the callmesh CLI in the callmeshd image" "Usage: callmesh health" \
  podman run --rm --network none --entrypoint callmesh "$CALLMESHD_IMAGE" help health
check "images: an example server in the examples image" "greeter_server" \
  podman run --rm --network none "$EXAMPLES_IMAGE" greeter_server --help
check "images: callmeshd image declares STOPSIGNAL SIGTERM and a grpc.health.v1 health check" \
  "SIGTERM [callmesh health" podman image inspect --format \
  '{{.Config.StopSignal}} {{slice .HealthCheck.Test 1 3}}' "$CALLMESHD_IMAGE"

size=$(podman image inspect --format '{{.Size}}' "$CALLMESHD_IMAGE")
if [ "$size" -lt 100000000 ]; then
  echo "callmeshd image: $(numfmt --to=si "$size")B"
  junit_pass "images: callmeshd image under 100 MB"
else
  junit_fail "images: callmeshd image under 100 MB" "it is $(numfmt --to=si "$size")B"
fi
junit_summary
