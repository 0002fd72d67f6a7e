# Shared by the scripts in deploy/: the container settings, the image names, the tools, and small
# helpers for printing steps. Source it: `source "$(dirname "$0")/lib.sh"`.

DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$DEPLOY_DIR")
export CONTAINERS_CONF="$DEPLOY_DIR/containers.conf"

# The base of every image: debian:bookworm-slim where a registry is reachable; here a local
# minbase bootstrap (deploy/base.sh) under this name.
BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm-local}
CALLMESHD_IMAGE=${CALLMESHD_IMAGE:-localhost/callmesh/callmeshd:latest}
EXAMPLES_IMAGE=${EXAMPLES_IMAGE:-localhost/callmesh/examples:latest}

# The Debian packages that build and run the images and pods (installed when missing).
CONTAINER_TOOLS=(podman runc buildah uidmap fuse-overlayfs slirp4netns containernetworking-plugins
  conmon catatonit debootstrap podman-compose)

install_container_tools() {
  "$REPO_DIR/tools/ci/install_deps.sh" "${CONTAINER_TOOLS[@]}"
}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# wait_for WHAT CMD...: runs CMD until it succeeds (1 minute at most); says WHAT did not happen.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 1 300); do
    "$@" > /dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "$(basename "$0" .sh): $what did not happen within a minute" >&2
  return 1
}
die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}
