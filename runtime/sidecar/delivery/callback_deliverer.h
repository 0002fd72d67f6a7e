// Pushes completions to callback services through `callmesh.v1.Callback/OnCompletion`, retrying
// with the `callback_retry` policy, and dead-letters what cannot be delivered.
//
// Every error of the callback (including "service not registered") counts as "not delivered" and
// is retried: a callback that answers an error has not taken the completion. After max_attempts
// the completion is dead-lettered (Journal::SetDelivery DEAD_LETTERED) until Redrive. Delivery
// attempts are counted in memory: after a restart, a completion still PENDING is delivered again
// starting from attempt 1 (Completion.delivery_attempt then restarts too; the CID and outcome are
// the same, so a receiver deduplicates by CID). Thread-safe.
#pragma once

#include <string>

#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "callmesh/v1/call.pb.h"
#include "runtime/sidecar/dispatch/retry_policy.h"
#include "runtime/sidecar/dispatch/task_runner.h"
#include "runtime/sidecar/invoke/invoker.h"
#include "runtime/sidecar/journal/journal.h"

namespace callmesh::sidecar {

// The callback a terminal call's completion goes to: the resolved one, else the explicit one,
// else the convention's.
std::string CallbackOf(const v1::Call& call);

class CallbackDeliverer {
 public:
  // Every pointer must outlive the deliverer.
  CallbackDeliverer(Journal* journal, Invoker* invoker, TaskRunner* runner, RetryPlan policy);

  // Starts delivering `completion` (already durable with delivery PENDING) to `callback`.
  void Deliver(const v1::Completion& completion, const std::string& callback);

  // Moves a dead-lettered completion back to PENDING and delivers it again from attempt 1.
  // NOT_FOUND for an unknown CID; FAILED_PRECONDITION if it is not dead-lettered.
  absl::Status Redrive(const std::string& cid);

 private:
  void Attempt(v1::Completion completion, std::string callback, uint32_t attempt);
  void AttemptDone(v1::Completion completion, std::string callback, uint32_t attempt,
                   const grpc::Status& status);

  Journal* const journal_;
  Invoker* const invoker_;
  TaskRunner* const runner_;
  const RetryPlan policy_;
  absl::Mutex mu_;
  absl::BitGen random_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::sidecar
