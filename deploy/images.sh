#!/usr/bin/env bash
# `make images`: the container tools, the local Debian base (made once), the build context from
# an optimized Bazel build, then the two images with Buildah (layers cached between runs), and the
# size of each.
#
#   localhost/callmesh/callmeshd   callmeshd + the callmesh CLI (deploy/Containerfile.callmeshd)
#   localhost/callmesh/examples    the example services and clients (deploy/Containerfile.examples)
#
# BASE_IMAGE=debian:bookworm-slim uses Debian's image from a registry instead of the local base.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

started=$(date +%s)
install_container_tools
case "$BASE_IMAGE" in
  localhost/*) "$DEPLOY_DIR/base.sh" ;;
  *) podman image exists "$BASE_IMAGE" || podman pull "$BASE_IMAGE" ;;
esac
"$DEPLOY_DIR/stage.sh"

build() {  # build CONTAINERFILE IMAGE
  echo "images: building $2 from deploy/$1"
  buildah bud --isolation chroot --format docker --layers --quiet \
    --build-arg BASE_IMAGE="$BASE_IMAGE" -f "$DEPLOY_DIR/$1" -t "$2" "$DEPLOY_DIR/.build" > /dev/null
}
build Containerfile.callmeshd "$CALLMESHD_IMAGE"
build Containerfile.examples "$EXAMPLES_IMAGE"
# Intermediate images of earlier builds that no tag points to any more.
podman image prune -f > /dev/null

echo
for image in "$CALLMESHD_IMAGE" "$EXAMPLES_IMAGE" "$BASE_IMAGE"; do
  printf '%-40s %s\n' "$image" \
    "$(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=si --suffix=B)"
done
echo "images: done in $(($(date +%s) - started)) s"
