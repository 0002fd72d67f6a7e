// Routes pushed completions (`callmesh.v1.Callback.OnCompletion`, and the same on the
// `OnCompletions` stream the sidecar prefers) to typed handlers, one per gRPC service that the
// receiver called. Generated `FooCallbacks` classes (protoc-gen-callmesh) are
// such handlers; ServiceHost::AddCallbacks serves them.
//
//   class MyWorldCallbacks : public world::v1::WorldCallbacks {
//     void OnGreet(const callmesh::CallInfo& call, const world::v1::GreetReply& reply) override;
//     void OnGreetError(const callmesh::CallInfo& call, const absl::Status& error) override;
//   };
//   MyWorldCallbacks callbacks;
//   callmesh::CallbackRouter router;
//   router.Add(&callbacks);   // completions of "world.v1.World/..." go to `callbacks`
//
// Thread-safety: Add only before serving; OnCompletion is called concurrently by gRPC and calls the
// handlers concurrently, so handlers must be thread-safe. On an OnCompletions stream, up to
// kStreamConcurrency completions are handled at once (on threads of the stream's own, started as
// needed); the next ones wait, which makes gRPC's flow control slow the sidecar down.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "callmesh/v1/callback.grpc.pb.h"

namespace callmesh {

// What a callback learns about the call whose outcome it receives.
struct CallInfo {
  std::string cid;
  // Mesh name of the caller (the service that made the async call).
  std::string source;
  // Mesh name of the target service.
  std::string service;
  // gRPC method "package.Service/Method".
  std::string method;
  // Attempts made against the target.
  uint32_t attempts = 0;
  // 1 on the first delivery, higher on redelivery of the same outcome (delivery is at least once).
  uint32_t delivery_attempt = 0;
  std::string parent_cid;
  std::string idempotency_key;
  std::map<std::string, std::string> headers;
  v1::CallState state = v1::CALL_STATE_UNSPECIFIED;

  static CallInfo From(const v1::Completion& completion);
};

// The terminal outcome as a status: OK when SUCCEEDED; FAILED keeps the target's code and
// message; CANCELLED is CANCELLED; EXPIRED is DEADLINE_EXCEEDED with a message saying the call
// expired; anything else is UNKNOWN.
absl::Status CompletionStatus(const v1::Completion& completion);

// Receives the completions of calls made to one gRPC service. Implemented by generated code.
class CallbackHandler {
 public:
  virtual ~CallbackHandler() = default;
  // Full name of the gRPC service whose completions this handler takes ("package.Service").
  virtual const char* callmesh_grpc_service() const = 0;
  // Handles one completion (its method belongs to callmesh_grpc_service()). A non-OK status is
  // returned to the sidecar, which then redelivers later (and finally dead-letters).
  virtual absl::Status HandleCompletion(const v1::Completion& completion) = 0;
};

class CallbackRouter final : public v1::Callback::Service {
 public:
  // How many completions of one OnCompletions stream are handled at once.
  static constexpr int kStreamConcurrency = 64;

  // Not owned; must outlive the router. A second handler for the same gRPC service replaces the
  // first.
  void Add(CallbackHandler* handler);
  bool empty() const;

  // Dispatches by the service part of `completion.method`. A completion no handler takes is
  // answered NOT_FOUND (naming the method), so the sidecar keeps it and, after its retries,
  // dead-letters it where it can be listed and re-driven.
  grpc::Status OnCompletion(grpc::ServerContext* context, const v1::Completion* completion,
                            v1::OnCompletionResponse* response) override;

  // The same for each completion of the stream, answered with a CompletionAck carrying its CID,
  // delivery attempt and the handler's status, in the order the handlers finish. Ends OK when the
  // sidecar closes the stream, after the completions in hand are handled (their acks are lost if
  // the stream is gone: the sidecar redelivers them).
  grpc::Status OnCompletions(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::CompletionAck, v1::Completion>* stream) override;

 private:
  // Hands `completion` to its handler; NOT_FOUND when no handler takes it.
  absl::Status Route(const v1::Completion& completion);

  mutable absl::Mutex mu_;
  std::map<std::string, CallbackHandler*, std::less<>> handlers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh
