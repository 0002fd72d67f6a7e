"""`callmesh_proto_library`: C++ messages and gRPC stubs from .proto files, offline.

Runs Debian's `protoc` and `grpc_cpp_plugin` (no protobuf source repository is needed) and wraps the
output in a `cc_library`.

    callmesh_proto_library(
        name = "greeter_proto",
        srcs = ["greeter.proto"],
    )

`proto_root` is the workspace-relative folder that `import` paths start from ("" = workspace root,
so a file imports "services/greeter/greeter.proto"; "proto" for callmesh's own contracts, which
import "callmesh/v1/call.proto"). Generated headers are included by the same path with `.pb.h` or
`.grpc.pb.h`. `deps` are other `callmesh_proto_library` targets; their .proto files are made
visible to protoc through `<name>_srcs` filegroups. Well-known types (google/protobuf/*.proto)
come from /usr/include.

Works in callmesh and from another repository that has callmesh as an external repository
(`load("@callmesh//tools/build:proto.bzl", ...)` after `callmesh_dependencies()`, see deps.bzl):
callmesh's own targets are named with `Label(...)`, so they resolve to callmesh wherever the macro
is called, and paths are taken relative to the root of the repository the calling package is in.
"""

# What the generated code links, named relative to callmesh wherever the macro is used.
_PLUGIN = Label("//tools/protoc-gen-callmesh")
_GRPC = Label("@system//:grpc++")
_CALLMESH_DEPS = [
    Label("//runtime/sdk:callback_router"),
    Label("//runtime/sdk:event_subscriber"),
    Label("//runtime/sdk:mesh"),
    Label("@system//:absl"),
    Label("@system//:spdlog"),
]

def callmesh_proto_library(name, srcs, deps = [], proto_root = "", grpc = True, visibility = None):
    _proto_library(name, srcs, deps, proto_root, grpc, False, [], visibility, None)

def callmesh_service_library(
        name,
        srcs,
        deps = [],
        proto_root = "",
        plugin_options = [],
        visibility = None,
        testonly = None):
    """Messages, gRPC stubs and typed callmesh stubs (`<file>.callmesh.h`) in one cc_library.

        callmesh_service_library(
            name = "fib_proto",
            srcs = ["fib.proto"],
        )
        # #include "services/fib/fib.callmesh.h": fib::v1::FibClient, fib::v1::FibCallbacks

    Runs the `protoc-gen-callmesh` plugin that Bazel builds from @callmesh//tools/protoc-gen-callmesh next
    to protoc's C++ and gRPC generators. `plugin_options` are passed to the plugin (e.g.
    ["skip_streaming"]). `deps` are other `callmesh_proto_library` or `callmesh_service_library`
    targets. The library links the callmesh SDK (Mesh, CallbackRouter).
    """
    _proto_library(name, srcs, deps, proto_root, True, True, plugin_options, visibility, testonly)

def _proto_library(name, srcs, deps, proto_root, grpc, callmesh, plugin_options, visibility, testonly):
    package = native.package_name()

    # "" in the main repository, "external/<name>" for a package of an external repository.
    repository = native.repository_name().lstrip("@")
    repository_root = ("external/" + repository) if repository else ""
    if proto_root and not (package + "/").startswith(proto_root + "/"):
        fail("proto_root %r must contain the package %r" % (proto_root, package))
    rel_package = package[len(proto_root):].lstrip("/") if proto_root else package
    outs_h = []
    outs_cc = []
    protos = []
    for src in srcs:
        if not src.endswith(".proto"):
            fail("callmesh_proto_library srcs must be .proto files, got %r" % src)
        base = src[:-len(".proto")]
        protos.append((rel_package + "/" + src) if rel_package else src)
        outs_h.append(base + ".pb.h")
        outs_cc.append(base + ".pb.cc")
        if grpc:
            outs_h.append(base + ".grpc.pb.h")
            outs_cc.append(base + ".grpc.pb.cc")
        if callmesh:
            outs_h.append(base + ".callmesh.h")
            outs_cc.append(base + ".callmesh.cc")

    include = "/".join([part for part in [repository_root, proto_root] if part]) or "."
    out_root = "$(GENDIR)" if include == "." else "$(GENDIR)/" + include
    cmd = "mkdir -p %s && /usr/bin/protoc -I%s -I$(GENDIR)/%s --cpp_out=%s " % (
        out_root,
        include,
        include,
        out_root,
    )
    if grpc:
        cmd += "--grpc_out=%s --plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin " % out_root
    tools = []
    if callmesh:
        plugin = str(_PLUGIN)
        tools = [_PLUGIN]
        cmd += "--plugin=protoc-gen-callmesh=$(location %s) --callmesh_out=%s%s " % (
            plugin,
            ",".join(plugin_options) + ":" if plugin_options else "",
            out_root,
        )
    cmd += " ".join(protos)

    native.filegroup(
        name = name + "_srcs",
        srcs = srcs + [d + "_srcs" for d in deps],
        visibility = visibility,
        testonly = testonly,
    )
    native.genrule(
        name = name + "_gen",
        srcs = [name + "_srcs"],
        outs = outs_h + outs_cc,
        cmd = cmd,
        tools = tools,
        message = "protoc %s" % " ".join(srcs),
        testonly = testonly,
    )
    native.cc_library(
        name = name,
        srcs = outs_cc,
        hdrs = outs_h,
        strip_include_prefix = ("/" + proto_root) if proto_root else None,
        deps = deps + [_GRPC] + (_CALLMESH_DEPS if callmesh else []),
        visibility = visibility,
        testonly = testonly,
    )
