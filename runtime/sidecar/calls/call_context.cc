#include "runtime/sidecar/calls/call_context.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/metadata.h"
#include "runtime/common/names.h"
#include "runtime/sidecar/calls/trace_context.h"

namespace callmesh::calls {

std::string MetadataOr(const grpc::ServerContextBase& rpc, absl::string_view key,
                       const std::string& fallback) {
  const auto& metadata = rpc.client_metadata();
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return fallback;
  return std::string(it->second.data(), it->second.size());
}

absl::Time DeadlineOf(const grpc::ServerContextBase& rpc, const Clock& clock) {
  // gRPC reports "no deadline" as a time centuries away. The real now is read only to measure
  // what is left of a deadline that gRPC keeps on the real clock.
  const absl::Duration left = absl::FromChrono(rpc.deadline()) - absl::Now();
  return left > absl::Hours(24 * 365 * 100) ? absl::InfiniteFuture() : clock.Now() + left;
}

namespace {

// The parts of a call's context that only travel as metadata: the trace context (dropped when
// malformed) and the caller's deadline.
void ReadTraceAndDeadline(const grpc::ServerContextBase& rpc, const Clock& clock,
                          CallContext* context) {
  TraceContext trace = CheckTraceContext(MetadataOr(rpc, kTraceparentMetadata, ""),
                                         MetadataOr(rpc, kTracestateMetadata, ""));
  context->traceparent = std::move(trace.traceparent);
  context->tracestate = std::move(trace.tracestate);
  context->rpc_deadline = DeadlineOf(rpc, clock);
}

}  // namespace

CallContext ReadCallContext(const grpc::ServerContextBase& rpc, absl::string_view body_source,
                            absl::string_view body_parent_cid, const std::string& default_source,
                            const Clock& clock) {
  CallContext context;
  context.source = !body_source.empty() ? std::string(body_source)
                                        : MetadataOr(rpc, kSourceMetadata, default_source);
  // The parent: named in the body, else `callmesh-parent-cid`, else `callmesh-cid` — the CID of
  // the call the caller is handling, which a service forwards with the rest of its context.
  context.parent_cid = !body_parent_cid.empty()
                           ? std::string(body_parent_cid)
                           : MetadataOr(rpc, kParentCidMetadata, MetadataOr(rpc, kCidMetadata, ""));
  ReadTraceAndDeadline(rpc, clock, &context);
  return context;
}

absl::StatusOr<ForwardedContext> ReadForwardedContext(const grpc::ServerContextBase& rpc,
                                                      const Clock& clock) {
  ForwardedContext forwarded;
  forwarded.context.source = MetadataOr(rpc, kSourceMetadata, "");
  forwarded.context.parent_cid = MetadataOr(rpc, kParentCidMetadata, "");
  if (absl::Status s = ValidateCallContext(forwarded.context.source, forwarded.context.parent_cid);
      !s.ok()) {
    return s;
  }
  ReadTraceAndDeadline(rpc, clock, &forwarded.context);
  forwarded.cid = MetadataOr(rpc, kCidMetadata, "");
  if (absl::Status s = ValidateCallContext("", forwarded.cid); !s.ok() || forwarded.cid.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCidMetadata,
                     ": a call forwarded by another sidecar needs a CID of 1 to 128 printable "
                     "ASCII characters"));
  }
  const std::string attempt = MetadataOr(rpc, kAttemptMetadata, "1");
  if (!absl::SimpleAtoi(attempt, &forwarded.attempt) || forwarded.attempt == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kAttemptMetadata, ": must be a positive number, got \"", attempt, "\""));
  }
  const std::string deadline = MetadataOr(rpc, kDeadlineMetadata, "");
  std::string error;
  if (!deadline.empty() &&
      !absl::ParseTime(absl::RFC3339_full, deadline, &forwarded.call_deadline, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kDeadlineMetadata, ": not an RFC 3339 time (", error, ")"));
  }
  return forwarded;
}

}  // namespace callmesh::calls
