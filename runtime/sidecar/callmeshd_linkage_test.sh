#!/bin/bash
# callmeshd links its C++ stack from static archives (runtime/sidecar/BUILD.bazel): no shared copy
# of gRPC, protobuf, Abseil, RocksDB, yaml-cpp or jemalloc may be loaded beside it, neither named by
# the binary nor pulled in by the shared libraries it still loads (a second protobuf in one process
# aborts at start on its duplicate descriptors; a second gRPC or allocator is worse).
# Usage: callmeshd_linkage_test.sh BINARY...
set -euo pipefail
forbidden='lib(grpc|gpr|upb|address_sorting|re2|cares|protobuf\.|absl_|rocksdb|yaml-cpp|jemalloc|gflags)'
status=0
for binary in "$@"; do
  loaded=$(ldd "$binary")
  if grep -E "not found" <<<"$loaded"; then
    echo "FAIL: $binary: a shared library it needs is missing" >&2
    status=1
  fi
  if grep -E "$forbidden" <<<"$loaded"; then
    echo "FAIL: $binary loads the shared objects above; they must be linked from archives" >&2
    status=1
  fi
  # The static parts are really there: the binary itself defines gRPC's and RocksDB's entry points.
  defined=$(nm -C --defined-only "$binary")
  for symbol in 'grpc_init' 'rocksdb::DB::Open' 'google::protobuf::MessageLite::ParseFromString'; do
    if ! grep -qE " T ${symbol}(\(|$)" <<<"$defined"; then
      echo "FAIL: $binary does not define $symbol" >&2
      status=1
    fi
  done
  [[ $status == 0 ]] && echo "ok: $binary"
done
exit $status
