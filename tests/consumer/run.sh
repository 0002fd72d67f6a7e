#!/usr/bin/env bash
# The consumer tests (`make test` runs them after `bazel test //...`): callmesh used the ways a
# project outside it uses it, each a test case in the JUnit file given with --junit.
#
#   install   `make install PREFIX=/opt/callmesh DESTDIR=...` puts the files in place; the three
#             installed programs answer --version.
#   cmake     tests/consumer/cmake: find_package(callmesh) against that DESTDIR tree, its own proto
#             (acme.quotes.v1) through callmesh_service_library(), run against the installed
#             callmeshd: a sync call, an async call answered at the typed callback, an await.
#   pkgconfig `make install PREFIX=<folder>` (no DESTDIR), then a program compiled and linked with
#             `pkg-config --cflags --libs callmesh` alone.
#   bazel     tests/consumer/bazel: callmesh as an external repository (the unpacked `make dist`
#             tarball, so the tarball is proven complete; the tree itself when run from an
#             unpacked tarball), its own proto (example.inventory.v1)
#             through callmesh_service_library(); the same three calls.
#   deb       `packaging/deb.sh` (without lintian, gzip -1; `make deb` runs lintian) builds the .deb, which
#             dpkg installs into a throw-away root; its callmesh --version runs; dpkg removes it.
#   uninstall `make uninstall` leaves the DESTDIR tree as it was before the install.
#
# Everything lives in .cache/consumer/ (git-ignored): the install tree, the CMake build, the nested
# Bazel's output base (kept between runs, so a second run is incremental). The installs use the
# fastbuild binaries `bazel test //...` just built (INSTALL_BAZEL_FLAGS=), so only the consumers
# themselves are compiled here.
# Usage: run.sh --junit FILE [CASE...]   (no CASE: all)
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
BAZEL=${BAZEL:-bazel}
MAKE=${MAKE:-make}
junit=""
cases=()
while [ $# -gt 0 ]; do
  case "$1" in
    --junit) junit=$2; shift 2 ;;
    *) cases+=("$1"); shift ;;
  esac
done
[ -n "$junit" ] || { echo "usage: run.sh --junit FILE [CASE...]" >&2; exit 2; }
[ ${#cases[@]} -gt 0 ] || cases=(install cmake pkgconfig bazel deb uninstall)

cache=$repo/.cache/consumer
logs=$cache/logs
destdir=$cache/root
prefix=/opt/callmesh
installed=$destdir$prefix
mkdir -p "$logs"
version=$(tr -d ' \n' < VERSION)

sidecar_pid=""
# start_sidecar: the installed callmeshd on a free loopback port; exports CALLMESH_SIDECAR.
start_sidecar() {
  local dir
  dir=$(mktemp -d "$cache/sidecar.XXXXXX")
  "$installed/bin/callmeshd" --listen 127.0.0.1:0 --data-dir "$dir/data" \
    --ready-file "$dir/ready" > "$dir/callmeshd.log" 2>&1 &
  sidecar_pid=$!
  for _ in $(seq 300); do
    [ -s "$dir/ready" ] && break
    kill -0 "$sidecar_pid" 2> /dev/null || { cat "$dir/callmeshd.log"; return 1; }
    sleep 0.1
  done
  [ -s "$dir/ready" ] || { echo "callmeshd did not get ready"; return 1; }
  export CALLMESH_SIDECAR
  CALLMESH_SIDECAR=$(cat "$dir/ready")
  echo "callmeshd (installed) on $CALLMESH_SIDECAR"
}
stop_sidecar() {
  if [ -n "$sidecar_pid" ]; then
    kill -TERM "$sidecar_pid" 2> /dev/null
    wait "$sidecar_pid" 2> /dev/null
    sidecar_pid=""
  fi
  unset CALLMESH_SIDECAR
}
trap stop_sidecar EXIT

case_install() {
  rm -rf "$destdir"
  mkdir -p "$destdir"
  "$MAKE" --no-print-directory install PREFIX=$prefix DESTDIR="$destdir" INSTALL_BAZEL_FLAGS= &&
    for program in callmeshd callmesh protoc-gen-callmesh; do
      "$installed/bin/$program" --version | tee /dev/stderr |
        grep -q "^$program $version (commit .*, .* build)$" || {
        echo "$program --version does not name version $version, a commit and a build type"
        return 1
      }
    done
}

# need_install: the DESTDIR install of case_install, made now if a case runs on its own.
need_install() {
  [ -f "$installed/share/callmesh/install-manifest.txt" ] || case_install
}

case_cmake() {
  local build=$cache/cmake-build
  need_install || return 1
  rm -rf "$build"
  cmake -S tests/consumer/cmake -B "$build" -DCMAKE_PREFIX_PATH="$installed" &&
    cmake --build "$build" -j 2 &&
    start_sidecar && "$build/quotes_demo"
  local status=$?
  stop_sidecar
  return $status
}

case_pkgconfig() {
  local dir=$cache/pkgconfig
  rm -rf "$dir"
  mkdir -p "$dir"
  cat > "$dir/main.cc" << 'PROGRAM'
#include <iostream>
#include "callmesh/mesh.h"
#include "callmesh/v1/call.pb.h"
int main() {
  callmesh::v1::Completion completion;
  completion.set_cid("c-1");
  std::cout << "sidecar " << callmesh::DefaultSidecarAddress() << ", " << completion.cid() << "\n";
  return completion.cid() == "c-1" ? 0 : 1;
}
PROGRAM
  # A plain install (no DESTDIR) into a prefix of its own, as a user without root would do.
  "$MAKE" --no-print-directory install PREFIX="$dir/prefix" INSTALL_BAZEL_FLAGS= || return 1
  local flags
  flags=$(PKG_CONFIG_PATH="$dir/prefix/lib/pkgconfig" pkg-config --cflags --libs callmesh) ||
    return 1
  echo "pkg-config --cflags --libs callmesh: $flags"
  # shellcheck disable=SC2086
  c++ -std=c++17 "$dir/main.cc" -o "$dir/main" $flags -Wl,-rpath,"$dir/prefix/lib" &&
    CALLMESH_SIDECAR=10.1.2.3:4770 "$dir/main" | tee /dev/stderr | grep -q "sidecar 10.1.2.3:4770, c-1"
}

case_bazel() {
  local source=$cache/dist output_base=$cache/bazel-output callmesh=$repo
  need_install || return 1
  # In a git checkout, callmesh is the unpacked `make dist` tarball; in an unpacked tarball (no
  # git to make another), the tree itself.
  if git rev-parse --git-dir > /dev/null 2>&1; then
    rm -rf "$source"
    mkdir -p "$source"
    packaging/dist.sh --out "$cache" && tar -xzf "$cache/callmesh-$version.tar.gz" -C "$source" ||
      return 1
    callmesh=$source/callmesh-$version
  fi
  echo "callmesh as an external repository: $callmesh"
  local status=0
  (cd tests/consumer/bazel &&
    "$BAZEL" --output_base="$output_base" build --symlink_prefix=/ \
      --override_repository=callmesh="$callmesh" //apps/inventory:inventory_demo) ||
    status=1
  if [ $status = 0 ]; then
    start_sidecar &&
      "$output_base/execroot/inventory/bazel-out/k8-fastbuild/bin/apps/inventory/inventory_demo" ||
      status=1
    stop_sidecar
  fi
  (cd tests/consumer/bazel && "$BAZEL" --output_base="$output_base" shutdown)
  return $status
}

case_deb() {
  local root=$cache/deb-root
  rm -rf "$root" "$cache/deb"
  packaging/deb.sh --bazel-bin "$("$BAZEL" info bazel-bin 2> /dev/null)" --out "$cache/deb" \
    --no-lintian --fast || return 1
  local deb=$cache/deb/callmesh_${version}_$(dpkg --print-architecture).deb
  mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
  touch "$root/var/lib/dpkg/status"
  # The throw-away root has none of the Debian libraries the package depends on (they are on the
  # host, where the programs find them): --force-depends.
  dpkg --root="$root" --force-depends --force-script-chrootless -i "$deb" &&
    dpkg --root="$root" -L callmesh | grep -q '^/etc/callmesh/callmeshd.yaml$' &&
    "$root/usr/bin/callmesh" --version | tee /dev/stderr | grep -q "^callmesh $version " &&
    dpkg --root="$root" --force-script-chrootless -r callmesh &&
    [ ! -e "$root/usr/bin/callmesh" ] || return 1
}

case_uninstall() {
  need_install || return 1
  "$MAKE" --no-print-directory uninstall PREFIX=$prefix DESTDIR="$destdir" || return 1
  local left
  left=$(find "$destdir" -mindepth 1)
  [ -z "$left" ] || { echo "left behind:"; echo "$left"; return 1; }
}

xml_escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }

results=()
failed=0
for name in "${cases[@]}"; do
  log=$logs/$name.log
  start=$(date +%s)
  echo "== consumer test: $name (log: ${log#"$repo"/})"
  if "case_$name" > "$log" 2>&1; then
    results+=("<testcase classname=\"consumer\" name=\"$name\" time=\"$(($(date +%s) - start))\"/>")
    echo "   PASSED in $(($(date +%s) - start)) s"
  else
    failed=$((failed + 1))
    message=$(tail -n 40 "$log" | xml_escape)
    results+=("<testcase classname=\"consumer\" name=\"$name\" time=\"$(($(date +%s) - start))\"><failure message=\"consumer test $name failed\">$message</failure></testcase>")
    echo "   FAILED in $(($(date +%s) - start)) s; the end of its log:"
    tail -n 40 "$log" | sed 's/^/   | /'
  fi
done
mkdir -p "$(dirname "$junit")"
{
  echo '<?xml version="1.0" encoding="UTF-8"?>'
  echo "<testsuites><testsuite name=\"consumer\" tests=\"${#cases[@]}\" failures=\"$failed\">"
  printf '%s\n' "${results[@]}"
  echo "</testsuite></testsuites>"
} > "$junit"
[ $failed = 0 ]
