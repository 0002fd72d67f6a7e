// Runs durable calls (InvokeAsync and Cast) in the background: admission against the pending
// limit, bounded concurrency per target, attempts through the Invoker with `callmesh-cid` and
// `callmesh-attempt`, retries with back-off, per-attempt timeouts, the overall deadline (EXPIRED),
// cancellation (CANCELLED), and the one terminal outcome written to the journal before anyone
// hears of it.
//
//   Dispatcher dispatcher(&store, &invoker, &registry, &policies, &runner, options, on_done);
//   store.ForEachUnfinished([&](const v1::Call& call) { dispatcher.Resume(call); });
//   dispatcher.Submit(std::move(envelope), [reactor](absl::StatusOr<CallStore::AcceptResult> r)
//   {..});
//
// Time comes from the runner's Clock (deadlines, back-off, the parking check); what to do after
// an attempt is calls::DecideAfterAttempt; the back-off jitter is drawn from a generator seeded
// with Options::jitter_seed, so a test with a FakeClock sees the same delays every run.
//
// Life of a call: Submit journals it (ACCEPTED) and acknowledges; it waits for a slot of its
// target (LimitsConfig.max_in_flight_per_target / ServiceConfig.max_in_flight); before each attempt
// the attempt number is journaled (state RUNNING), so an attempt after a crash always carries a
// higher number than any the target saw. When the target has an instance and a free slot at
// Submit, the slot is taken then and attempt 1 is journaled in the accept's own write (state
// RUNNING from the start), and starts once that write is durable. A call parked after that (its
// instance went away meanwhile) then starts with attempt 2: numbers only ever grow. A failed
// attempt whose code the retry policy lists is tried again after the back-off while attempts and
// the deadline allow; otherwise the call ends FAILED with the last status. While the target has no
// registered or healthy instance the call is parked (without using up attempts) until an instance
// appears or its deadline passes, so calls wait out a target that is restarting, or services
// re-registering after this sidecar restarts. Parked calls cost no work: one check per target every
// 250 ms, not one per call (with 100k calls waiting, per-call polling starved the accept path).
// Casts are deleted from the journal once they end (no result is kept); InvokeAsync outcomes are
// journaled and handed to `on_done`.
//
// No thread waits for the journal: every write of a call's life (the attempt number before an
// attempt, the back-off state, the outcome) is submitted with a callback, and the call continues
// in that callback once the write is done (the outcome once it is durable). A call's record —
// envelope and payload as stored — is held in memory from Submit (or Resume) to its end while the
// records held stay within Options::held_record_bytes, so its attempts and outcome need no read of
// the journal; beyond that budget a record is read from the journal, on a worker, when an attempt
// starts or ends. Attempts start, and their replies are handled, on whichever thread the previous
// step ended on (the journal's, or gRPC's): no hand-off to a worker unless a record must be read.
//
// Memory: per pending call a few dozen bytes (CID, target, deadline) plus its record while
// within the budget. Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "callmesh/v1/call.pb.h"
#include "runtime/sidecar/dispatch/retry_policy.h"
#include "runtime/sidecar/dispatch/task_runner.h"
#include "runtime/sidecar/invoke/invoker.h"
#include "runtime/sidecar/metrics/sidecar_metrics.h"
#include "runtime/sidecar/registry/registry.h"
#include "runtime/sidecar/store/call_store.h"
#include "runtime/sidecar/tracing/call_tracer.h"

namespace callmesh::sidecar {

class Dispatcher {
 public:
  struct Options {
    // LimitsConfig.max_pending_calls: InvokeAsync/Cast beyond it get RESOURCE_EXHAUSTED.
    uint64_t max_pending_calls = 1000000;
    // Seed of the back-off jitter.
    uint64_t jitter_seed = 0;
    // Counts attempts, retries and completions (not owned; must outlive the dispatcher).
    // nullptr = not counted.
    metrics::SidecarMetrics* metrics = nullptr;
    // Records the accept, attempt and completion spans (not owned; must outlive the
    // dispatcher). nullptr = no spans; the trace context is carried on unchanged.
    tracing::CallTracer* tracer = nullptr;
    // Bytes of call records (payload included) held in memory at most; a call beyond it is read
    // from the store when an attempt starts or ends. 0 = none held.
    size_t held_record_bytes = 16 << 20;
  };
  // Runs after a terminal outcome of an InvokeAsync is durable, on a worker thread, with the
  // stored completion and the callback service it must be pushed to ("" = none).
  using OnCompleted = std::function<void(const v1::Completion&, const std::string& callback)>;

  // Every pointer must outlive the dispatcher.
  Dispatcher(CallStore* store, Invoker* invoker, Registry* registry,
             const DispatchPolicies* policies, TaskRunner* runner, Options options,
             OnCompleted on_completed);
  // Stop()s.
  ~Dispatcher();

  // For shutdown: from now on starts no attempt and drops the replies of attempts in flight (the
  // calls resume from the journal at the next start, as after a crash), then waits until every
  // write it submitted has reported. Idempotent; the destructor calls it.
  void Stop();

  // Stores `envelope` (built by calls::BuildEnvelope) and schedules it. `done` runs once the call
  // is durable (or refused), on the store's thread: keep it short. Errors: RESOURCE_EXHAUSTED at
  // the pending limit (nothing persisted), UNAVAILABLE if the store cannot write, as
  // CallStore::Accept otherwise.
  void Submit(v1::CallEnvelope envelope,
              std::function<void(absl::StatusOr<CallStore::AcceptResult>)> done);

  // Re-schedules a call found unfinished in the journal at start (non-terminal state).
  void Resume(const v1::Call& call);

  // Ends a non-terminal call CANCELLED (cancelling its running attempt) and returns the call as
  // stored. A call already terminal is returned unchanged. NOT_FOUND for an unknown CID. Blocks
  // for a durable write: call it from a worker, never from a gRPC callback thread.
  absl::StatusOr<v1::Call> Cancel(const std::string& cid, const std::string& reason);

  // Calls held in memory (pending or running); for stats and tests.
  size_t active() const;

  // Fills `call->waiting_for` and `call->last_instance` (see call.proto) from what this
  // dispatcher knows of a call it holds; leaves `call` unchanged for any other (terminal, or not
  // yet picked up after a restart). Memory only: nothing of it is journaled.
  void DescribeProgress(v1::Call* call) const;

  // Attempts in flight, per target service that has had any (for the metrics).
  std::vector<std::pair<std::string, uint32_t>> InFlightByTarget() const;

 private:
  struct Active {
    std::string service;
    absl::Time deadline;
    // The attempt in flight, if any, to cancel it.
    std::shared_ptr<ForwardedCall> rpc;
    // The deadline timer (Expire), cancelled when the call ends so that finished calls leave
    // nothing in the runner's and the clock's timer queues.
    TaskRunner::TimerKey expiry = TaskRunner::kNoTimer;
    // What the call waits for now and where its last attempt went (Call.waiting_for and
    // Call.last_instance).
    std::string waiting_for = "its first attempt";
    std::string last_instance;
    // In its target's parked list, waiting for an instance.
    bool parked = false;
    // The last attempt whose reply was handled (AttemptDone). A reply can be handled before the
    // code that started its attempt records it; that record is then stale and skipped.
    uint32_t attempts_done = 0;
    // The call as stored (envelope with payload, attempts, state), if held (see "Memory").
    // Changed only by the step that owns the call at the time (RunAttempt, then AttemptDone):
    // one call's steps never overlap.
    std::shared_ptr<v1::Call> record;
    // Its size when it was taken, counted in held_bytes_.
    size_t record_bytes = 0;
  };
  struct Target {
    uint32_t in_flight = 0;
    // Waiting for a free slot of this target.
    std::deque<std::string> waiting;
    // Waiting for an instance of this target; `wake_scheduled` while a check is pending.
    std::deque<std::string> parked;
    bool wake_scheduled = false;
  };

  // Registers the call in memory (with its record, if given and within the budget) and queues it
  // for a slot — or, with `first_attempt_journaled` (its slot taken by TakeSlotNow and attempt 1
  // written with the accept), starts that attempt from `record`.
  void Track(const std::string& cid, const std::string& service, absl::Time deadline,
             std::shared_ptr<v1::Call> record, bool first_attempt_journaled);
  // Takes a slot of `service` if it has an instance and a free slot now (and the dispatcher is
  // not stopping); false otherwise, nothing taken.
  bool TakeSlotNow(const std::string& service);
  // The held record of `cid`, or nullptr.
  std::shared_ptr<v1::Call> HeldRecord(const std::string& cid);
  // Holds `record` for `cid` if the budget allows.
  void Hold(const std::string& cid, std::shared_ptr<v1::Call> record);
  // Starts RunAttempt at once if the call's record is held, else on a worker (it reads it).
  void Launch(const std::string& cid, const std::string& service);
  // A store write's callback, counted from now until it has run (Stop waits for it).
  template <typename Result>
  std::function<void(Result)> Counted(std::function<void(Result)> done);
  // Set by Stop: start no attempt, take no reply.
  bool Stopping();
  // Removes `cid` from memory and cancels its deadline timer; returns its attempt in flight (or
  // nullptr). Does nothing for a call no longer held.
  std::shared_ptr<ForwardedCall> Forget(const std::string& cid);
  // Queues `cid` for a slot of its target, or starts it if one is free.
  void MakeReady(const std::string& cid);
  // Parks `cid` until `service` has an instance, scheduling the target's check if none is.
  void Park(const std::string& cid, const std::string& service);
  // The target's check: moves its parked calls on once it has an instance, else checks later.
  void WakeParked(const std::string& service);
  // Frees a slot of `service` and starts the next waiting call.
  void ReleaseSlot(const std::string& service);
  // Journals the attempt number, then (in the write's callback) StartAttempt.
  void RunAttempt(const std::string& cid, const std::string& service);
  // StartAttempt for an attempt whose number is already journaled (written with the accept).
  void StartJournaledAttempt(const std::string& cid, const std::string& service,
                             std::shared_ptr<v1::Call> record);
  // The call's deadline if an attempt can start now (the caller holds a slot). Otherwise frees
  // the slot and ends the call EXPIRED (its deadline passed) or parks it (no instance), and
  // returns nullopt.
  std::optional<absl::Time> ReadyToStart(const std::string& cid, const std::string& service,
                                         const v1::Call& record);
  void StartAttempt(const std::string& cid, const std::string& service,
                    std::shared_ptr<v1::Call> record, absl::Time deadline);
  // `record`: the call's held record, or nullptr to read it from the store.
  void AttemptDone(const std::string& cid, const std::string& service, uint32_t attempt,
                   const grpc::Status& status, std::string reply, std::shared_ptr<v1::Call> record);
  // Persists the outcome (or deletes a cast), forgets the call, reports it; `finished` (if any)
  // runs once the store has answered. Ignores a call that is already terminal.
  void Finish(const v1::Call& call, v1::CallState state, int code, const std::string& message,
              std::string reply, std::function<void()> finished = nullptr);
  void Expire(const std::string& cid);
  // Sets the Active.waiting_for of `cid`, if it is still held.
  void SetWaitingFor(const std::string& cid, std::string waiting_for);
  // A uniform draw from [0, 1) for the back-off jitter.
  double Draw();

  CallStore* const store_;
  Invoker* const invoker_;
  Registry* const registry_;
  const DispatchPolicies* const policies_;
  TaskRunner* const runner_;
  const Options options_;
  const OnCompleted on_completed_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  std::map<std::string, Active> active_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Target, std::less<>> targets_ ABSL_GUARDED_BY(mu_);
  // Accepted by Submit but not yet reported by the journal (counts against the pending limit).
  uint64_t submitting_ ABSL_GUARDED_BY(mu_) = 0;
  // Bytes of the records held in active_.
  size_t held_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Writes submitted whose callback has not run yet; set by Stop.
  uint64_t writes_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::sidecar
