// Reading callmesh's call context from an incoming RPC on the sidecar.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace callmesh::sidecar {

// Ends a unary callback RPC at once with `status`.
inline grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                           const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// The first value of metadata `key` the caller sent, or `fallback`.
inline std::string MetadataOr(const grpc::ServerContextBase& context, absl::string_view key,
                              const std::string& fallback) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return fallback;
  return std::string(it->second.data(), it->second.size());
}

// The caller's deadline, or InfiniteFuture if it set none (gRPC reports "none" as a time
// centuries away).
inline absl::Time DeadlineOf(const grpc::ServerContextBase& context) {
  const absl::Time deadline = absl::FromChrono(context.deadline());
  return deadline > absl::Now() + absl::Hours(24 * 365 * 100) ? absl::InfiniteFuture() : deadline;
}

}  // namespace callmesh::sidecar
