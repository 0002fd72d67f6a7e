#include "runtime/sdk/context.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "runtime/common/metadata.h"

namespace callmesh {

Context Context::From(const grpc::ServerContextBase& server_context) {
  Context context;
  const absl::Time rpc_deadline = absl::FromChrono(server_context.deadline());
  if (rpc_deadline < absl::Now() + absl::Hours(24 * 365 * 100)) context.deadline_ = rpc_deadline;
  for (const auto& [key_ref, value_ref] : server_context.client_metadata()) {
    const std::string key(key_ref.data(), key_ref.size());
    std::string value(value_ref.data(), value_ref.size());
    if (key == kCidMetadata) {
      context.cid_ = std::move(value);
    } else if (key == kSourceMetadata) {
      context.source_ = std::move(value);
    } else if (key == kParentCidMetadata) {
      context.parent_cid_ = std::move(value);
    } else if (key == kTraceparentMetadata) {
      context.traceparent_ = std::move(value);
    } else if (key == kTracestateMetadata) {
      context.tracestate_ = std::move(value);
    } else if (key == kAttemptMetadata) {
      uint32_t attempt = 0;
      if (absl::SimpleAtoi(value, &attempt)) context.attempt_ = attempt;
    } else if (key == kDeadlineMetadata) {
      absl::Time deadline;
      std::string error;
      if (absl::ParseTime(absl::RFC3339_full, value, &deadline, &error)) {
        context.deadline_ = deadline;
      }
    } else if (!absl::StartsWith(key, "grpc-") && !absl::StartsWith(key, "callmesh-") &&
               !absl::StartsWith(key, ":") && key != "content-type" && key != "user-agent" &&
               key != "te" && key != "host") {
      context.headers_.emplace(key, std::move(value));
    }
  }
  return context;
}

void Context::PropagateTo(grpc::ClientContext* outbound) const {
  if (!cid_.empty()) outbound->AddMetadata(kParentCidMetadata, cid_);
  if (!traceparent_.empty()) {
    outbound->AddMetadata(kTraceparentMetadata, traceparent_);
    if (!tracestate_.empty()) outbound->AddMetadata(kTracestateMetadata, tracestate_);
  }
}

}  // namespace callmesh
