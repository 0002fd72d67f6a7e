// Pushes completions to callback services, retrying with the `callback_retry` policy, and
// dead-letters what cannot be delivered.
//
// How a completion travels: to an instance on this host, on the one long-lived
// `callmesh.v1.Callback/OnCompletions` stream kept per instance (CompletionStream), many at a
// time, each attempt ending with its ack; to an instance on another host (cluster mode, whose
// sidecar proxies unary calls only), and to an instance that answered the stream UNIMPLEMENTED,
// as one unary `OnCompletion` per attempt. "UNIMPLEMENTED" is remembered per instance for
// kAskStreamAgainAfter, or until the instance is removed and registered again (a new Instance), and
// the completions it turned away are pushed with OnCompletion at once, as the same attempt. A
// stream that breaks fails every attempt outstanding on it (they are retried like any failed
// attempt) and the next delivery to that instance opens a new stream.
//
// Every error of the callback (including "service not registered") counts as "not delivered" and
// is retried: a callback that answers an error has not taken the completion (so the policy's
// retryable codes are not consulted). What happens after an attempt is
// calls::DecideAfterAttempt, as for the dispatcher, with no overall deadline. After max_attempts
// the completion is dead-lettered (CallStore::SetDelivery DEAD_LETTERED) until Redrive. Delivery
// attempts are counted in memory: after a restart, a completion still PENDING is delivered again
// starting from attempt 1 (Completion.delivery_attempt then restarts too; the CID and outcome are
// the same, so a receiver deduplicates by CID). Time (attempt timeouts, back-off, dead-letter
// timestamps) comes from the runner's Clock. Stop (for shutdown) ends every stream and starts
// nothing more; what was not acknowledged stays PENDING, as after a crash. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"
#include "runtime/sidecar/delivery/completion_stream.h"
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
  // How long an instance that answered OnCompletions UNIMPLEMENTED gets OnCompletion only.
  static constexpr absl::Duration kAskStreamAgainAfter = absl::Minutes(5);

  // Every pointer must outlive the deliverer.
  CallbackDeliverer(CallStore* store, Invoker* invoker, TaskRunner* runner, DeliveryPolicy policy);
  // Stop()s. The runner must be stopped first (its retry tasks call the deliverer), and the
  // invoker's calls ended (Invoker::CancelAllAndWait), whose results call it too.
  ~CallbackDeliverer();

  // For shutdown, once nothing calls Deliver or Redrive any more (the dispatcher has stopped):
  // from now on starts no attempt (Deliver, Redrive's delivery and retries that come due do
  // nothing) and records no attempt's result (an ack or a unary answer arriving later changes
  // nothing in the store and schedules no retry); then cancels every completion stream (the
  // callback service sees its OnCompletions cancelled) and waits until they have ended. What was
  // not acknowledged stays PENDING in the store and is delivered again at the next start, as after
  // a crash (a receiver deduplicates by CID). Unary attempts in flight are left to the invoker's
  // CancelAllAndWait. After it returns, no attempt result reaches the store. Idempotent.
  void Stop();

  // Starts delivering `completion` (already durable with delivery PENDING) to `callback`.
  void Deliver(const v1::Completion& completion, const std::string& callback);

  // Moves a dead-lettered completion back to PENDING and delivers it again from attempt 1.
  // NOT_FOUND for an unknown CID; FAILED_PRECONDITION if it is not dead-lettered. Blocks on a
  // store write: call it from a worker, never from a gRPC callback thread.
  absl::Status Redrive(const std::string& cid);

 private:
  using Span = std::shared_ptr<tracing::CallTracer::Open>;
  // One piece of the deliverer's work (an attempt starting, or an attempt's result being
  // handled), counted while it runs so that Stop can wait for it. Not admitted once stopped: the
  // work must then be skipped.
  class Work {
   public:
    explicit Work(CallbackDeliverer* deliverer);
    ~Work();
    Work(const Work&) = delete;
    Work& operator=(const Work&) = delete;
    bool admitted() const { return admitted_; }

   private:
    CallbackDeliverer* const deliverer_;
    bool admitted_;
  };

  // Where completions for one service's instance at one address go.
  struct Route {
    // The instance the route was learnt for; another one at the same address (the instance was
    // removed from the registry and registered again) starts a fresh route.
    std::weak_ptr<Instance> instance;
    std::shared_ptr<CompletionStream> stream;
    // Until then the instance gets OnCompletion only (it answered the stream UNIMPLEMENTED).
    absl::Time unary_until = absl::InfinitePast();
  };

  void Attempt(v1::Completion completion, std::string callback, uint32_t attempt);
  // The stream to the instance the next push to `callback` goes to; null = push with unary.
  std::shared_ptr<CompletionStream> StreamFor(const std::string& callback);
  static std::string RouteKey(const std::string& callback, const std::string& address);
  // Remembers that `stream`'s instance of `callback` has no OnCompletions.
  void MarkUnaryOnly(const std::string& callback, const CompletionStream& stream);
  // Called inside an admitted Work, as is AttemptDone.
  void PushUnary(v1::Completion completion, std::string callback, uint32_t attempt, Span span);
  void EndSpan(const Span& span, const grpc::Status& status);
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
  absl::Mutex work_mu_;
  bool stopped_ ABSL_GUARDED_BY(work_mu_) = false;
  // Work objects admitted and not yet destroyed.
  int working_ ABSL_GUARDED_BY(work_mu_) = 0;
  absl::Mutex routes_mu_;
  // By RouteKey.
  std::map<std::string, Route> routes_ ABSL_GUARDED_BY(routes_mu_);
  // Every stream opened and maybe not ended yet (also those of replaced routes), for shutdown.
  std::vector<std::shared_ptr<CompletionStream>> streams_ ABSL_GUARDED_BY(routes_mu_);
};

}  // namespace callmesh::sidecar
