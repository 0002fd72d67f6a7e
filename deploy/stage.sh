#!/usr/bin/env bash
# Fills the images' build context, deploy/.build/ (not in git), from a Bazel build on this host
# (-c opt, as `make install` builds; INSTALL_BAZEL_FLAGS= takes the fastbuild outputs that
# `make test` already has, which is what `make deploy-test` does to save CI a second compile):
#   install/            what `make install` installs (DESTDIR tree, PREFIX=/usr/local)
#   examples/           the example services and clients of services/
#   rootfs.sh           assembles the runtime images' file system (deploy/rootfs.sh)
#   callmeshd.packages  the Debian runtime packages each image needs: the packages owning the
#   examples.packages   shared libraries the binaries load here (ldd + dpkg -S), so the list
#                       follows the build instead of being kept by hand
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

BAZEL=${BAZEL:-bazel}
INSTALL_BAZEL_FLAGS=${INSTALL_BAZEL_FLAGS--c opt}
CONTEXT="$DEPLOY_DIR/.build"
EXAMPLES=(services/greeter:greeter_server services/greeter:greeter_client
  services/greeter:async_client services/hello_world:hello_server services/hello_world:world_server
  services/hello_world:hello_client services/fib:fib_server services/fib:fib_client
  services/callbacks:worker_server services/callbacks:callbacks_client
  services/long_job:reports_server services/long_job:report_client)

# The Debian packages that own the shared libraries `binary...` load on this host.
runtime_packages() {
  local libraries=() candidates=() library owners
  mapfile -t libraries < <(ldd "$@" | awk '/=> \// {print $3}' | sort -u)
  # With merged /usr, ldd may name /lib/... where dpkg recorded /usr/lib/... or the reverse.
  for library in "${libraries[@]}"; do
    candidates+=("/usr${library#/usr}" "${library#/usr}")
  done
  owners=$(dpkg -S "${candidates[@]}" 2> /dev/null || true)
  for library in "${libraries[@]}"; do
    grep -q ": \(/usr\)\?${library#/usr}\$" <<< "$owners" ||
      die "no Debian package owns $library (needed by $*)"
  done
  # "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6" -> libc6
  sed -e 's/: \/.*//' -e 's/, /\n/g' <<< "$owners" | sed 's/:.*//' | sort -u
}

rm -rf "$CONTEXT"
mkdir -p "$CONTEXT/install" "$CONTEXT/examples"
make --no-print-directory install DESTDIR="$CONTEXT/install" PREFIX=/usr/local \
  INSTALL_BAZEL_FLAGS="$INSTALL_BAZEL_FLAGS"
# shellcheck disable=SC2086 # the flags are words
$BAZEL build $INSTALL_BAZEL_FLAGS "${EXAMPLES[@]/#/\/\/}"
# shellcheck disable=SC2086
bin=$($BAZEL info $INSTALL_BAZEL_FLAGS bazel-bin 2>/dev/null)
install -m 0755 "$DEPLOY_DIR/rootfs.sh" "$CONTEXT/"
for target in "${EXAMPLES[@]}"; do
  install -m 0755 "$bin/${target%%:*}/${target##*:}" "$CONTEXT/examples/"
done

runtime_packages "$CONTEXT"/install/usr/local/bin/{callmeshd,callmesh} > "$CONTEXT/callmeshd.packages"
runtime_packages "$CONTEXT"/examples/* "$CONTEXT/install/usr/local/bin/callmesh" \
  > "$CONTEXT/examples.packages"
echo "stage: $CONTEXT ($(du -sh "$CONTEXT" | cut -f1)); runtime packages:" \
  "callmeshd $(wc -l < "$CONTEXT/callmeshd.packages"), examples $(wc -l < "$CONTEXT/examples.packages")"
