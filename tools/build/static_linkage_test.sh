#!/bin/bash
# callmeshd and the callmesh CLI link their C++ stack from static archives (static_linkopts in
# tools/build/deps.bzl): no shared copy of gRPC, protobuf, Abseil, RocksDB, yaml-cpp or jemalloc may
# be loaded beside it, neither named by the binary nor pulled in by the shared libraries it still
# loads (a second protobuf in one process aborts at start on its duplicate descriptors; a second
# gRPC or allocator is worse). Nor libcpp-httplib: its constructor initialises OpenSSL when it is
# loaded, resident memory that runtime/common/http saves (ARCHITECTURE.md "The admin listener's HTTP").
# A binary named after --jemalloc must also export malloc: the shared libraries it loads (libstdc++,
# OpenSSL, ...) then allocate with jemalloc too, not with glibc's malloc behind its back.
# Usage: static_linkage_test.sh [--jemalloc] BINARY...
set -euo pipefail
forbidden='lib(grpc|gpr|upb|address_sorting|re2|cares|protobuf\.|absl_|rocksdb|yaml-cpp|jemalloc|gflags|cpp-httplib)'
status=0
jemalloc=0
for binary in "$@"; do
  if [[ $binary == --jemalloc ]]; then
    jemalloc=1
    continue
  fi
  failed=0
  loaded=$(ldd "$binary")
  if grep -E "not found" <<<"$loaded"; then
    echo "FAIL: $binary: a shared library it needs is missing" >&2
    failed=1
  fi
  if grep -E "$forbidden" <<<"$loaded"; then
    echo "FAIL: $binary loads the shared objects above (linked from archives, or not at all)" >&2
    failed=1
  fi
  # The static parts are really there: the binary itself defines gRPC's and protobuf's functions.
  defined=$(nm -C --defined-only "$binary")
  for symbol in 'grpc_init' 'google::protobuf::MessageLite::ParseFromString'; do
    if ! grep -qE " [Tt] ${symbol}(\(|$)" <<<"$defined"; then
      echo "FAIL: $binary does not define $symbol" >&2
      failed=1
    fi
  done
  if ((jemalloc)); then
    exported=$(readelf --dyn-syms -W "$binary")
    if ! grep -qE " FUNC +GLOBAL +DEFAULT +[0-9]+ malloc$" <<<"$exported"; then
      echo "FAIL: $binary does not export malloc: the shared libraries would use glibc's" >&2
      failed=1
    fi
  fi
  jemalloc=0
  if ((failed)); then
    status=1
  else
    echo "ok: $binary"
  fi
done
exit $status
