"""`callmesh_dependencies()`: the repositories callmesh builds with, for callmesh's own WORKSPACE and
for any project that uses callmesh as an external repository, fully offline.

    # The user's WORKSPACE
    local_repository(
        name = "callmesh",
        path = "/path/to/callmesh",   # or http_archive of a release tarball (make dist)
    )
    load("@callmesh//tools/build:deps.bzl", "callmesh_dependencies")
    callmesh_dependencies()

    # The user's BUILD
    load("@callmesh//tools/build:proto.bzl", "callmesh_service_library")
    callmesh_service_library(name = "inventory_proto", srcs = ["inventory.proto"])

Declares, unless the WORKSPACE already declared them:
  - `rules_cc`, `rules_java`, `remote_coverage_tools`: Bazel 4.2.3 (Debian's bazel-bootstrap) wants
    them for its built-in C++ rules and coverage and would download them; they map to callmesh's
    tiny shims in third_party/bazel/;
  - `system`: Debian's libraries (gRPC 1.51, protobuf 3.21, Abseil 20220623, spdlog 1.10,
    GoogleTest 1.12, RocksDB 7.8, yaml-cpp 0.7, cpp-httplib 0.11, OpenSSL 3's libcrypto, the NATS C client 3.4) as cc_library targets with
    pkg-config's link flags (third_party/system/system_libs.bzl). callmesh's BUILD files name it `@system`; a different
    repository already declared under that name is refused with an error.
The user's .bazelrc needs C++17 (`build --cxxopt=-std=c++17 --host_cxxopt=-std=c++17`) and, to
stay offline, `build --repository_cache= --experimental_repository_disable_download`.
"""

load("//third_party/system:system_libs.bzl", "system_libraries")

# Target name -> pkg-config modules and extra -l flags (see system_libs.bzl).
SYSTEM_LIBRARIES = {
    "grpc++": "grpc++ protobuf",
    "grpc++_reflection": "grpc++ protobuf -lgrpc++_reflection",
    "protobuf": "protobuf",
    "protoc": "protobuf -lprotoc",
    "absl": "absl_flags_parse absl_status absl_statusor absl_strings absl_str_format absl_synchronization absl_time absl_random_random",
    "spdlog": "spdlog",
    "gtest": "gtest",
    "gtest_main": "gtest_main gmock",
    "rocksdb": "rocksdb",
    "yaml-cpp": "yaml-cpp",
    "cpp-httplib": "cpp-httplib +cflags",
    "libcrypto": "libcrypto",
    "nats": "libnats",
}

# Entries linked from Debian's static archives, by binaries that ask for them in their own linkopts
# (`load("@system//:static_linkopts.bzl", "static_linkopts")`): callmeshd and the CLI link their
# C++ stack statically (bench/README.md "Round seven": 8 MB less resident memory, less CPU per
# call). One entry holds everything that shares gRPC's, protobuf's and Abseil's ABI, so no shared
# copy of any of them is loaded beside the static one: the SYSTEM_LIBRARIES entries above, plus
# RocksDB's own dependencies (Debian's rocksdb.pc names no private libraries; these are
# librocksdb.so's DT_NEEDED entries).
STATIC_LIBRARIES = {
    "cpp_stack": " ".join([
        SYSTEM_LIBRARIES[name]
        for name in ("grpc++_reflection", "absl", "rocksdb", "yaml-cpp")
    ] + ["-lgflags -lsnappy -llz4 -lzstd -lbz2"]),
    "jemalloc": "jemalloc -lm -ldl -pthread",
}

# The static entries whose symbols stay exported: jemalloc's malloc must be the one the shared
# libraries (libstdc++, OpenSSL, ...) call too, or memory allocated there would be freed here by
# the other allocator.
STATIC_EXPORTED = ["jemalloc"]

# What a static entry still links as shared objects.
STATIC_KEEPS_DYNAMIC = ["c", "m", "dl", "rt", "pthread", "atomic", "stdc++", "ssl", "crypto", "z", "bz2"]
_KEEP_DYNAMIC_REASON = ("the C runtime; OpenSSL and zlib, which libnats (shared, no archive " +
                        "in Debian) loads as shared objects anyway; bzip2, " +
                        "whose embedded copy lintian refuses in the .deb (embedded-library)")

_SHIMS = ["rules_cc", "rules_java", "remote_coverage_tools"]

def _shim_repository_impl(ctx):
    # third_party/bazel/<shim> of callmesh, found through a file of callmesh's that Bazel can name
    # (the shim folders hold WORKSPACE files, so they are not packages of callmesh).
    third_party = ctx.path(Label("//third_party/system:system_libs.bzl")).dirname.dirname
    shim = third_party.get_child("bazel").get_child(ctx.attr.shim)
    if not shim.exists:
        fail("callmesh_dependencies: %s is missing" % shim)
    for entry in shim.readdir():
        ctx.symlink(entry, entry.basename)

_shim_repository = repository_rule(
    implementation = _shim_repository_impl,
    attrs = {"shim": attr.string(mandatory = True)},
    local = True,
)

def callmesh_dependencies():
    """Declares the repositories above that the WORKSPACE has not declared yet."""
    for shim in _SHIMS:
        if not native.existing_rule(shim):
            _shim_repository(name = shim, shim = shim)
    existing = native.existing_rule("system")
    if not existing:
        system_libraries(
            name = "system",
            libraries = SYSTEM_LIBRARIES,
            static_libraries = STATIC_LIBRARIES,
            keep_dynamic = STATIC_KEEPS_DYNAMIC,
            keep_dynamic_reason = _KEEP_DYNAMIC_REASON,
            static_exported = STATIC_EXPORTED,
        )
    elif existing["kind"] != "system_libraries":
        fail("callmesh_dependencies: a repository named 'system' (%s) is already declared; " %
             existing["kind"] + "callmesh's BUILD files need it to be callmesh's system_libraries")
