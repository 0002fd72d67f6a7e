// Reading callmesh's call context from an incoming RPC on the sidecar — in one place for
// Sidecar.Invoke, InvokeAsync, Cast and the transparent proxy. Values named in the request body
// win over the request's metadata (`callmesh-source`; `callmesh-parent-cid`, then `callmesh-cid`
// for the parent), which wins over the sidecar's own name as the default source; `traceparent`
// and `tracestate` only travel as metadata, and are dropped when malformed (trace_context.h).
#pragma once

#include <grpcpp/server_context.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/common/clock.h"

namespace callmesh::calls {

struct CallContext {
  std::string source;
  std::string parent_cid;
  std::string traceparent;
  std::string tracestate;
  // The caller's RPC deadline on `clock`'s time line; InfiniteFuture if it set none.
  absl::Time rpc_deadline = absl::InfiniteFuture();
};

// The first value of metadata `key` the caller sent, or `fallback`.
std::string MetadataOr(const grpc::ServerContextBase& rpc, absl::string_view key,
                       const std::string& fallback);

// The caller's gRPC deadline, moved onto `clock`'s time line (gRPC's deadlines are real time; the
// sidecar decides on its Clock); InfiniteFuture if the caller set none.
absl::Time DeadlineOf(const grpc::ServerContextBase& rpc, const Clock& clock);

// The context of a call arriving on `rpc`. `body_source` and `body_parent_cid` are the request's
// own fields ("" when it has none).
CallContext ReadCallContext(const grpc::ServerContextBase& rpc, absl::string_view body_source,
                            absl::string_view body_parent_cid, const std::string& default_source,
                            const Clock& clock);

// The context of a call another sidecar forwarded to this one (cluster mode): the accepting
// sidecar already decided source and parent, so they are taken as sent (`callmesh-source`,
// `callmesh-parent-cid`; `callmesh-cid` is the call's own CID, not a parent), and so are the
// call's CID and attempt. A malformed CID or attempt is INVALID_ARGUMENT naming the metadata.
struct ForwardedContext {
  CallContext context;
  std::string cid;
  uint32_t attempt = 1;
  // `callmesh-deadline`: the call's overall deadline; InfiniteFuture if absent.
  absl::Time call_deadline = absl::InfiniteFuture();
};
absl::StatusOr<ForwardedContext> ReadForwardedContext(const grpc::ServerContextBase& rpc,
                                                      const Clock& clock);

}  // namespace callmesh::calls
