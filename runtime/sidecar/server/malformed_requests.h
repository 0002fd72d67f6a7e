// gRPC 1.51's callback API answers a request whose bytes do not parse as the method's request
// message with UNIMPLEMENTED and an empty message, before any handler of ours runs (its unary
// callback handler turns a failed deserialization into an "unimplemented" reactor). The Sidecar
// API's contract reserves UNIMPLEMENTED for RPCs not built and asks for INVALID_ARGUMENT naming
// the problem. This server interceptor notes when gRPC could not deserialize the request (it
// hands interceptors no message then) and rewrites that call's UNIMPLEMENTED into
// INVALID_ARGUMENT "the request is not a valid callmesh.v1.<Request> message (its bytes do not
// parse)". Any other status passes unchanged, e.g. a target's own UNIMPLEMENTED that Invoke
// passes back.
//
//   std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
//   creators.push_back(MalformedRequestInterceptorFactory("callmesh.v1.Sidecar"));  // first
//
// Thread-safe.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>

namespace callmesh::sidecar {

// For the methods of the protobuf service `service` (full name) in the generated descriptor pool.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MalformedRequestInterceptorFactory(const std::string& service);

}  // namespace callmesh::sidecar
