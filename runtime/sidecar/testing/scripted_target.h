// A real gRPC server on a loopback port 0 that answers `callmesh.v1.Callback/OnCompletion` as a
// test scripts it: with a status code, or by holding the call until the caller gives up (cancels
// it or lets its deadline pass). Serves both as a dispatch target (the dispatcher forwards bytes
// to any method path; tests use this one) and as a callback service. Records what each call
// carried (CID, attempt number). Thread-safe.
//
//   ScriptedTarget target;
//   target.Script({ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE), ScriptedTarget::Hold()});
//   registry.AddStatic("target", target.address());
//   ASSERT_TRUE(target.AwaitCalls(2));
#pragma once

#include <grpcpp/server.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "callmesh/v1/callback.grpc.pb.h"

namespace callmesh::testing {

class ScriptedTarget final : public v1::Callback::CallbackService {
 public:
  struct Step {
    grpc::StatusCode code = grpc::StatusCode::OK;
    bool hold = false;  // never answer; end when the caller cancels
  };
  static Step Answer(grpc::StatusCode code) { return {code, false}; }
  static Step Hold() { return {grpc::StatusCode::OK, true}; }

  struct Seen {
    std::string cid;
    std::string attempt;  // the callmesh-attempt metadata
    std::string traceparent;
    std::string tracestate;
    // callmesh-source, and for event deliveries callmesh-topic and callmesh-sequence.
    std::string source;
    std::string topic;
    std::string sequence;
    // Position among the calls received by every ScriptedTarget of the process (to order the
    // calls of several targets).
    uint64_t arrival = 0;
    v1::Completion request;
  };

  // Starts serving on 127.0.0.1:0.
  ScriptedTarget();
  ~ScriptedTarget() override;

  const std::string& address() const { return address_; }

  // Appends steps; calls beyond the script are answered OK.
  void Script(std::vector<Step> steps);
  // Runs `observer` on each call as it arrives, before it is answered (on gRPC's thread).
  void Observe(std::function<void(const Seen&)> observer);
  // Calls received so far, in order.
  std::vector<Seen> calls() const;
  // Waits until `n` calls were received (a safety net of `real_timeout` for a broken test, not a
  // measurement); true if they were.
  bool AwaitCalls(size_t n, absl::Duration real_timeout = absl::Seconds(60)) const;
  // Held calls that ended because the caller cancelled them (or their deadline passed).
  size_t held_calls_cancelled() const;
  bool AwaitHeldCallsCancelled(size_t n, absl::Duration real_timeout = absl::Seconds(60)) const;

  grpc::ServerUnaryReactor* OnCompletion(grpc::CallbackServerContext* context,
                                         const v1::Completion* request,
                                         v1::OnCompletionResponse* response) override;

 private:
  class HeldReactor;

  mutable absl::Mutex mu_;
  std::deque<Step> script_ ABSL_GUARDED_BY(mu_);
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
  size_t held_cancelled_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void(const Seen&)> observer_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace callmesh::testing
