#!/usr/bin/env bash
# `make deploy-test`: the container tests, each a script whose checks are JUnit test cases in
# $RESULTS_DIR (default bazel-deploy-testlogs/), then one line "N passed, N failed" over them.
#   images        deploy/images.sh builds both images (reusing the cached base) and each image
#                 runs its binaries; callmeshd's image stays under 100 MB
#   pod-demo      sync OK; async SUCCEEDED at the callback under the same CID; kill -9 of the
#                 sidecar container, restart, the call completes under the same CID; SIGTERM
#                 drains an in-flight call and exits 0
#   compose-demo  hello -> world with world's answer at hello's callback, under podman-compose
#   kube-demo     `podman kube play` of deploy/kubernetes/ and a call through each Deployment
# A script that stops before writing its results counts as one failed case. Each prints how long
# it took.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
export RESULTS_DIR=${RESULTS_DIR:-$REPO_DIR/bazel-deploy-testlogs}
# The images are built from the fastbuild binaries `make test` has already built, not with a second,
# optimized compile (-c opt, as `make images` does): CI time. `make images` afterwards brings the
# optimized images back under the same tags.
export INSTALL_BAZEL_FLAGS=${INSTALL_BAZEL_FLAGS-}
rm -rf "$RESULTS_DIR"
mkdir -p "$RESULTS_DIR"

status=0
for script in images-test pod-demo compose-demo kube-demo; do
  path=$DEPLOY_DIR/$script.sh
  [ -x "$path" ] || path=$DEPLOY_DIR/tests/$script.sh
  step "deploy-test: $script"
  started=$(date +%s)
  "$path" || status=1
  echo "deploy-test: $script took $(($(date +%s) - started)) s"
  if [ ! -s "$RESULTS_DIR/$script.xml" ]; then
    JUNIT_SUITE=$script
    source "$DEPLOY_DIR/tests/junit.sh"
    junit_fail "$script wrote its results" "it stopped before recording its checks (output above)"
    junit_write
    status=1
  fi
done
junit=()
for file in "$RESULTS_DIR"/*.xml; do junit+=(--junit "$file"); done
python3 "$REPO_DIR/tools/ci/test_summary.py" "${junit[@]}" "$RESULTS_DIR" || status=1
exit $status
