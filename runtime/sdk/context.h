// The callmesh context of a call, as a service handler sees it.
//
//   grpc::Status SayHello(grpc::ServerContext* server_context, const HelloRequest* request,
//                         HelloReply* reply) override {
//     callmesh::Context context = callmesh::Context::From(*server_context);
//     spdlog::info("cid={} from {} attempt {}", context.cid(), context.source(),
//     context.attempt());
//     ...
//     grpc::ClientContext onward;
//     context.PropagateTo(&onward);  // the next call is linked to this one
//     // or, through callmesh::Mesh (runtime/sdk/mesh.h) and the generated clients:
//     world.GreetAsync(greet, {.parent = &context});
//   }
//
// A value type: cheap to copy, immutable, safe to read from any thread.
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include <cstdint>
#include <map>
#include <string>

#include "absl/time/time.h"

namespace callmesh {

class Context {
 public:
  // Reads the metadata the sidecar attached (callmesh-cid, callmesh-source, callmesh-attempt,
  // callmesh-deadline, callmesh-parent-cid, traceparent, tracestate) and the application headers.
  // Missing values are empty (attempt 0); a malformed attempt or deadline is ignored.
  static Context From(const grpc::ServerContextBase& server_context);

  // Correlation ID of the call; the same on every attempt. Empty when not called through a sidecar.
  const std::string& cid() const { return cid_; }
  // Mesh name of the caller.
  const std::string& source() const { return source_; }
  // CID of the call whose handler made this one, if any.
  const std::string& parent_cid() const { return parent_cid_; }
  // W3C trace context: with tracing on in the sidecar, the span of this attempt (or callback
  // delivery), so that work done here joins the caller's trace.
  const std::string& traceparent() const { return traceparent_; }
  const std::string& tracestate() const { return tracestate_; }
  // 1 on the first delivery, higher on retries; 0 when not called through a sidecar.
  uint32_t attempt() const { return attempt_; }
  // Overall deadline of the call (`callmesh-deadline`), else the RPC's deadline, else
  // InfiniteFuture.
  absl::Time deadline() const { return deadline_; }
  // Application metadata (everything that is not gRPC's or callmesh's own).
  const std::map<std::string, std::string>& headers() const { return headers_; }

  // Marks `outbound` as made while handling this call: its CID becomes the new call's parent and
  // the trace context flows on. Call before the outbound RPC starts.
  void PropagateTo(grpc::ClientContext* outbound) const;

 private:
  std::string cid_;
  std::string source_;
  std::string parent_cid_;
  std::string traceparent_;
  std::string tracestate_;
  uint32_t attempt_ = 0;
  absl::Time deadline_ = absl::InfiniteFuture();
  std::map<std::string, std::string> headers_;
};

}  // namespace callmesh
