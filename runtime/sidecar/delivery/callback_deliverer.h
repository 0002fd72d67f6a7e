// Pushes completions to callback services through `callmesh.v1.Callback/OnCompletion`, retrying
// with the `callback_retry` policy, and dead-letters what cannot be delivered.
//
// Every error of the callback (including "service not registered") counts as "not delivered" and
// is retried: a callback that answers an error has not taken the completion (so the policy's
// retryable codes are not consulted). What happens after an attempt is
// calls::DecideAfterAttempt, as for the dispatcher, with no overall deadline. After max_attempts
// the completion is dead-lettered (CallStore::SetDelivery DEAD_LETTERED) until Redrive. Delivery
// attempts are counted in memory: after a restart, a completion still PENDING is delivered again
// starting from attempt 1 (Completion.delivery_attempt then restarts too; the CID and outcome are
// the same, so a receiver deduplicates by CID). Time (attempt timeouts, back-off, dead-letter
// timestamps) comes from the runner's Clock. Thread-safe.
#pragma once

#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"
#include "runtime/sidecar/dispatch/retry_policy.h"
#include "runtime/sidecar/dispatch/task_runner.h"
#include "runtime/sidecar/invoke/invoker.h"
#include "runtime/sidecar/store/call_store.h"
#include "runtime/sidecar/tracing/call_tracer.h"

namespace callmesh::sidecar {

struct DeliveryPolicy {
  // SidecarConfig.callback_retry (its retryable codes are ignored: every error is retried).
  RetryPlan retry;
  // How long one OnCompletion attempt may take.
  absl::Duration attempt_timeout = absl::Seconds(30);
  // Seed of the back-off jitter.
  uint64_t jitter_seed = 0;
  // Records a span per delivery attempt and sends it as the callback's traceparent (not owned;
  // must outlive the deliverer). nullptr = no spans; the call's trace context is sent as is.
  tracing::CallTracer* tracer = nullptr;
};

class CallbackDeliverer {
 public:
  // Every pointer must outlive the deliverer.
  CallbackDeliverer(CallStore* store, Invoker* invoker, TaskRunner* runner, DeliveryPolicy policy);

  // Starts delivering `completion` (already durable with delivery PENDING) to `callback`.
  void Deliver(const v1::Completion& completion, const std::string& callback);

  // Moves a dead-lettered completion back to PENDING and delivers it again from attempt 1.
  // NOT_FOUND for an unknown CID; FAILED_PRECONDITION if it is not dead-lettered. Blocks on a
  // store write: call it from a worker, never from a gRPC callback thread.
  absl::Status Redrive(const std::string& cid);

 private:
  void Attempt(v1::Completion completion, std::string callback, uint32_t attempt);
  void AttemptDone(v1::Completion completion, std::string callback, uint32_t attempt,
                   const grpc::Status& status);
  double Draw();

  CallStore* const store_;
  Invoker* const invoker_;
  TaskRunner* const runner_;
  Clock* const clock_;
  DeliveryPolicy policy_;
  absl::Mutex mu_;
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::sidecar
