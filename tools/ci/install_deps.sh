#!/usr/bin/env bash
# Installs the Debian packages callmesh builds and tests with — only those not installed yet, so a
# second run does nothing. Uses sudo when not root.
#
#   install_deps.sh               the build and test packages below
#   install_deps.sh PACKAGE...    those packages instead (deploy/lib.sh: the container tools)
set -euo pipefail

PACKAGES=(
  bazel-bootstrap g++ pkg-config python3 clang-format
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev libprotoc-dev protobuf-compiler
  libabsl-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev librocksdb-dev libyaml-cpp-dev
  libjemalloc-dev
  # The static archives callmeshd links besides those of the packages above (tools/build/deps.bzl:
  # STATIC_LIBRARIES): RocksDB's compression and flags libraries, gRPC's resolver and regexes.
  libgflags-dev libsnappy-dev liblz4-dev libzstd-dev libbz2-dev libc-ares-dev libre2-dev
  nghttp2-client fiu-utils
  cmake dpkg-dev
  libcpp-httplib-dev prometheus chromium
  libssl-dev openssl
  libnats-dev nats-server iproute2 curl
)
if [ $# -gt 0 ]; then
  PACKAGES=("$@")
fi

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "Installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
