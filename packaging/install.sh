#!/usr/bin/env bash
# Installs callmesh from a Bazel build (`make install` runs it; see the Makefile for the variables).
# This file is the one place that says what is installed where:
#
#   $BINDIR/callmeshd, callmesh, protoc-gen-callmesh
#   $LIBDIR/libcallmesh.so.X.Y.Z (+ SONAME and dev symlinks), libcallmesh.a
#   $INCLUDEDIR/callmesh/*.h            the SDK (runtime/sdk/*.h, their includes rewritten)
#   $INCLUDEDIR/callmesh/tls/*.h        the credential types of the SDK's options (runtime/common/tls)
#   $INCLUDEDIR/callmesh/v1/*.pb.h      the contracts' generated messages and gRPC stubs
#   $DATADIR/callmesh/proto/callmesh/v1/*.proto
#   $LIBDIR/pkgconfig/callmesh.pc, $LIBDIR/cmake/callmesh/*.cmake
#   $DATADIR/bash-completion/completions/callmesh
#   $MANDIR/man1/callmesh.1, protoc-gen-callmesh.1, $MANDIR/man8/callmeshd.8
#   $SYSCONFDIR/callmesh/callmeshd.yaml  (an existing file is kept)
#   $SYSTEMDUNITDIR/callmeshd.service
#   $DOCDIR/LICENSE, CHANGELOG.md, README.md
#   $DATADIR/callmesh/install-manifest.txt  what `make uninstall` removes (uninstall.sh): one
#       "file PATH" line per installed file or symlink, "conffile SHA256 PATH" for configuration,
#       "dir PATH" per folder the install created
#
# Public headers: the SDK's sources stay in runtime/sdk/ (where Bazel users include them from) and
# are installed flat under include/callmesh/, with their `#include "runtime/sdk/X.h"` rewritten to
# `#include "callmesh/X.h"`; the generated contracts already include each other as
# "callmesh/v1/X.pb.h", which resolves under include/. So one -I<prefix>/include serves both, and
# protoc-gen-callmesh is run with sdk_include_dir=callmesh for code built against an install.
#
# Usage: install.sh --bazel-bin DIR --prefix DIR [--destdir DIR] [--libdir DIR]
#                   [--sysconfdir DIR] [--systemdunitdir DIR] [--docdir DIR] [--no-manifest]
set -euo pipefail
cd "$(dirname "$0")/.."

bazel_bin="" prefix="" destdir="" libdir="" sysconfdir="" systemdunitdir="" docdir=""
write_manifest=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-manifest) write_manifest=0; shift; continue ;;  # a package manager tracks the files
    --bazel-bin) bazel_bin=$2 ;;
    --prefix) prefix=$2 ;;
    --destdir) destdir=$2 ;;
    --libdir) libdir=$2 ;;
    --sysconfdir) sysconfdir=$2 ;;
    --systemdunitdir) systemdunitdir=$2 ;;
    --docdir) docdir=$2 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  [ $# -ge 2 ] || { echo "install.sh: $1 needs a value" >&2; exit 2; }
  shift 2
done
[ -n "$bazel_bin" ] || { echo "install.sh: --bazel-bin is required" >&2; exit 2; }
case "$prefix" in
  /*) ;;
  *) echo "install.sh: PREFIX must be an absolute path, got '$prefix'" >&2; exit 2 ;;
esac
prefix=${prefix%/}
[ -n "$prefix" ] || prefix=/
case "$destdir" in
  "" | /*) ;;
  *) destdir="$(pwd)/$destdir" ;;
esac

bindir=$prefix/bin
libdir=${libdir:-$prefix/lib}
includedir=$prefix/include
datadir=$prefix/share
mandir=$datadir/man
docdir=${docdir:-$datadir/doc/callmesh}
# /usr installs configuration in /etc, as Debian does; any other prefix keeps it under the prefix.
if [ -z "$sysconfdir" ]; then
  if [ "$prefix" = /usr ]; then sysconfdir=/etc; else sysconfdir=$prefix/etc; fi
fi
systemdunitdir=${systemdunitdir:-$prefix/lib/systemd/system}

version=$(tr -d ' \n' < VERSION)
soname=$(packaging/soname.sh VERSION)
# The pkg-config modules the SDK's headers and library use (also used by the CMake package). The
# same system libraries the Bazel build links (WORKSPACE), minus what only the daemon uses.
pc_requires="grpc++ protobuf absl_status absl_statusor absl_strings absl_str_format absl_synchronization absl_time spdlog libcrypto"
pc_libs_private="-lgrpc++_reflection"

for built in packaging/libcallmesh.so packaging/libcallmesh.a runtime/sidecar/callmeshd cli/callmesh \
  tools/protoc-gen-callmesh/protoc-gen-callmesh proto/callmesh/v1/sidecar.pb.h; do
  [ -e "$bazel_bin/$built" ] || {
    echo "install.sh: $bazel_bin/$built is missing (bazel build //packaging:install_inputs)" >&2
    exit 1
  }
done

manifest=()
created_dirs=()  # folders this install created (uninstall removes them again once empty)
# note_new_dirs DIR: records DIR and its parents that do not exist yet under $destdir.
note_new_dirs() {
  local dir=$1
  while [ "$dir" != / ] && [ ! -d "$destdir$dir" ]; do
    created_dirs+=("$dir")
    dir=$(dirname "$dir")
  done
}
conffiles=()  # "SHA256 PATH": configuration, which uninstall keeps if it was edited
# put MODE SOURCE TARGET: copies SOURCE to $destdir/TARGET.
put() {
  note_new_dirs "$(dirname "$3")"
  install -D -m "$1" "$2" "$destdir$3"
  manifest+=("$3")
}
# link TARGET_PATH LINK: a relative symlink LINK -> TARGET_PATH.
link() {
  note_new_dirs "$(dirname "$2")"
  mkdir -p "$(dirname "$destdir$2")"
  ln -sfn "$1" "$destdir$2"
  manifest+=("$2")
}
# filled TEMPLATE: the template with @VARIABLES@ substituted.
filled() {
  sed -e "s|@VERSION@|$version|g" -e "s|@PREFIX@|$prefix|g" -e "s|@BINDIR@|$bindir|g" \
    -e "s|@LIBDIR@|$libdir|g" -e "s|@INCLUDEDIR@|$includedir|g" -e "s|@DATADIR@|$datadir|g" \
    -e "s|@SYSCONFDIR@|$sysconfdir|g" -e "s|@SONAME@|$soname|g" \
    -e "s|@PC_REQUIRES@|$pc_requires|g" -e "s|@PC_LIBS_PRIVATE@|$pc_libs_private|g" \
    -e "s|@CMAKE_TO_PREFIX@|$cmake_to_prefix|g" -e "s|@CMAKE_TO_LIBDIR@|$cmake_to_libdir|g" \
    "$1"
}
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT

# Programs.
put 0755 "$bazel_bin/runtime/sidecar/callmeshd" "$bindir/callmeshd"
put 0755 "$bazel_bin/cli/callmesh" "$bindir/callmesh"
put 0755 "$bazel_bin/tools/protoc-gen-callmesh/protoc-gen-callmesh" "$bindir/protoc-gen-callmesh"

# The SDK library.
put 0644 "$bazel_bin/packaging/libcallmesh.so" "$libdir/libcallmesh.so.$version"
link "libcallmesh.so.$version" "$libdir/$soname"
link "$soname" "$libdir/libcallmesh.so"
put 0644 "$bazel_bin/packaging/libcallmesh.a" "$libdir/libcallmesh.a"

# Public headers: the SDK's, and the credential types its options use (runtime/common/tls/ ->
# include/callmesh/tls/).
tls_headers=(runtime/common/tls/spiffe_id.h runtime/common/tls/tls_credentials.h
  runtime/common/tls/client_credentials.h)
for header in runtime/sdk/*.h "${tls_headers[@]}"; do
  case "$header" in *_test.h) continue ;; esac
  case "$header" in runtime/common/tls/*) dir=callmesh/tls ;; *) dir=callmesh ;; esac
  mkdir -p "$staging/$dir"
  sed -e 's|^#include "runtime/sdk/\([a-z_]*\.h\)"|#include "callmesh/\1"|' \
    -e 's|^#include "runtime/common/tls/\([a-z_]*\.h\)"|#include "callmesh/tls/\1"|' "$header" \
    > "$staging/$dir/$(basename "$header")"
  if grep -n '^#include "\(runtime\|cli\|tools\|services\)/' "$staging/$dir/$(basename "$header")"; then
    echo "install.sh: $header includes a repository path that is not installed (above)" >&2
    exit 1
  fi
  put 0644 "$staging/$dir/$(basename "$header")" "$includedir/$dir/$(basename "$header")"
done
for header in "$bazel_bin"/proto/callmesh/v1/*.pb.h; do
  put 0644 "$header" "$includedir/callmesh/v1/$(basename "$header")"
done

# Contracts.
for proto in proto/callmesh/v1/*.proto; do
  put 0644 "$proto" "$datadir/callmesh/proto/callmesh/v1/$(basename "$proto")"
done

# pkg-config and CMake. The CMake files find the prefix relative to their own folder, so a
# DESTDIR tree can be used in place; the .pc file names the prefix (pkg-config --define-prefix
# relocates it).
cmake_dir=$libdir/cmake/callmesh
cmake_to_prefix=$(realpath -m --relative-to="$cmake_dir" "$prefix")
cmake_to_libdir=$(realpath -m --relative-to="$prefix" "$libdir")
filled packaging/pkgconfig/callmesh.pc.in > "$staging/callmesh.pc"
put 0644 "$staging/callmesh.pc" "$libdir/pkgconfig/callmesh.pc"
for file in callmeshConfig.cmake callmeshConfigVersion.cmake callmeshTargets.cmake \
  CallmeshServiceLibrary.cmake; do
  filled "packaging/cmake/$file.in" > "$staging/$file"
  put 0644 "$staging/$file" "$cmake_dir/$file"
done

# Shell completion and manual pages.
put 0644 cli/completion/callmesh.bash "$datadir/bash-completion/completions/callmesh"
for page in callmesh.1 protoc-gen-callmesh.1 callmeshd.8; do
  filled "packaging/man/$page" > "$staging/$page"
  put 0644 "$staging/$page" "$mandir/man${page##*.}/$page"
done

# The daemon's configuration and service unit.
filled packaging/config/callmeshd.yaml > "$staging/callmeshd.yaml"
if [ -e "$destdir$sysconfdir/callmesh/callmeshd.yaml" ] &&
  ! cmp -s "$staging/callmeshd.yaml" "$destdir$sysconfdir/callmesh/callmeshd.yaml"; then
  echo "install.sh: kept the existing $sysconfdir/callmesh/callmeshd.yaml (it differs from the example)"
else
  put 0644 "$staging/callmeshd.yaml" "$sysconfdir/callmesh/callmeshd.yaml"
  conffiles+=("$(sha256sum < "$staging/callmeshd.yaml" | cut -d' ' -f1) $sysconfdir/callmesh/callmeshd.yaml")
fi
filled packaging/systemd/callmeshd.service > "$staging/callmeshd.service"
put 0644 "$staging/callmeshd.service" "$systemdunitdir/callmeshd.service"

# Documentation.
for doc in LICENSE CHANGELOG.md README.md; do
  put 0644 "$doc" "$docdir/$doc"
done

# The manifest (with itself), for uninstall.sh.
if [ "$write_manifest" = 0 ]; then
  echo "installed callmesh $version: ${#manifest[@]} files under ${destdir}$prefix"
  exit 0
fi
manifest_path=$datadir/callmesh/install-manifest.txt
manifest+=("$manifest_path")
note_new_dirs "$(dirname "$manifest_path")"
mkdir -p "$(dirname "$destdir$manifest_path")"
{
  echo "# Installed by callmesh $version (packaging/install.sh); read by packaging/uninstall.sh."
  printf 'file %s\n' "${manifest[@]}"
  if [ ${#conffiles[@]} -gt 0 ]; then printf 'conffile %s\n' "${conffiles[@]}"; fi
  if [ ${#created_dirs[@]} -gt 0 ]; then printf 'dir %s\n' "${created_dirs[@]}"; fi
} > "$destdir$manifest_path"
echo "installed callmesh $version: ${#manifest[@]} files under ${destdir}$prefix (manifest $manifest_path)"
