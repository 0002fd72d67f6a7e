// The dispatcher on a FakeClock: every back-off, timeout and deadline is reached by advancing the
// clock, never by sleeping. Targets are real gRPC servers on loopback and the store a real
// journal; tests wait only for events (a call arriving, a write to the store, a timer scheduled).
#include "runtime/sidecar/dispatch/dispatcher.h"

#include <random>

#include "absl/random/distributions.h"
#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/calls/retry_decision.h"
#include "runtime/sidecar/testing/lifecycle_harness.h"
#include "runtime/sidecar/testing/scripted_target.h"
#include "tests/support/wait_until.h"

namespace callmesh::sidecar {
namespace {

using ::callmesh::testing::LifecycleHarness;
using ::callmesh::testing::ScriptedTarget;
using ::callmesh::testing::WaitUntil;

constexpr uint64_t kSeed = 42;
constexpr char kPolicy[] = R"(
default_retry:
  max_attempts: 3
  initial_backoff: 1s
  max_backoff: 10s
  backoff_multiplier: 2
  jitter: 0.2
  retryable_codes: [UNAVAILABLE]
default_attempt_timeout: 5s
)";

// A time as a record stores it (whole nanoseconds).
absl::Time Stored(absl::Time t) { return FromProtoTimestamp(ToProtoTimestamp(t)); }

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest()
      : h_(kPolicy),
        dispatcher_(&h_.store, &h_.invoker, &h_.registry, &h_.policies, &h_.runner,
                    {.jitter_seed = kSeed},
                    [this](const v1::Completion& completion, const std::string& callback) {
                      absl::StatusOr<v1::Call> stored = h_.store.GetCall(completion.cid());
                      absl::MutexLock lock(&mu_);
                      completed_.push_back(completion);
                      state_stored_when_reported_[completion.cid()] =
                          stored.ok() ? stored->state() : v1::CALL_STATE_UNSPECIFIED;
                    }) {}
  ~DispatcherTest() override { h_.runner.Stop(); }

  // Submits an InvokeAsync to `service` and returns its CID once it is durable.
  std::string Submit(const std::string& service, absl::Duration timeout = absl::Hours(1),
                     v1::CallKind kind = v1::CALL_KIND_INVOKE_ASYNC) {
    absl::Notification accepted;
    std::string cid;
    dispatcher_.Submit(h_.Envelope(service, kind, timeout),
                       [&](absl::StatusOr<CallStore::AcceptResult> result) {
                         EXPECT_TRUE(result.ok()) << result.status();
                         if (result.ok()) cid = result->cid;
                         accepted.Notify();
                       });
    accepted.WaitForNotification();
    return cid;
  }

  std::vector<v1::Completion> completed() {
    absl::MutexLock lock(&mu_);
    return completed_;
  }

  ScriptedTarget target_;
  LifecycleHarness h_;
  Dispatcher dispatcher_;
  absl::Mutex mu_;
  std::vector<v1::Completion> completed_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::CallState> state_stored_when_reported_ ABSL_GUARDED_BY(mu_);
};

TEST_F(DispatcherTest, RetriesWithSeededBackoffThenSucceeds) {
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  target_.Script({ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE),
                  ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE)});
  // The delays the dispatcher must draw: one uniform draw per finished attempt, from the seed.
  std::mt19937_64 random(kSeed);
  const RetryPlan& plan = h_.policies.Retry("target", "callmesh.v1.Callback/OnCompletion");
  const absl::Duration first = calls::BackoffDelay(plan, 1, absl::Uniform(random, 0.0, 1.0));
  const absl::Duration second = calls::BackoffDelay(plan, 2, absl::Uniform(random, 0.0, 1.0));
  const absl::Time start = h_.clock.Now();

  const std::string cid = Submit("target");
  absl::StatusOr<v1::Call> waiting =
      h_.store.AwaitCall(cid, [](const v1::Call& c) { return c.has_next_attempt_at(); });
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_EQ(waiting->attempts(), 1u);
  EXPECT_EQ(waiting->last_status_code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_EQ(FromProtoTimestamp(waiting->next_attempt_at()), Stored(start + first));

  // Just before the back-off ends nothing happens; at its end attempt 2 starts.
  ASSERT_TRUE(h_.clock.AwaitTimerDueBy(start + first));
  h_.clock.AdvanceTo(start + first - absl::Milliseconds(1));
  ASSERT_TRUE(h_.runner.AwaitIdle());
  EXPECT_EQ(target_.calls().size(), 1u);
  h_.clock.AdvanceTo(start + first);
  ASSERT_TRUE(target_.AwaitCalls(2));

  waiting = h_.store.AwaitCall(
      cid, [](const v1::Call& c) { return c.attempts() == 2 && c.has_next_attempt_at(); });
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_EQ(FromProtoTimestamp(waiting->next_attempt_at()), Stored(start + first + second));
  ASSERT_TRUE(h_.clock.AwaitTimerDueBy(start + first + second));
  h_.clock.AdvanceTo(start + first + second);

  absl::StatusOr<v1::Call> done = h_.store.AwaitState(cid, v1::CALL_STATE_SUCCEEDED);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->attempts(), 3u);
  const std::vector<ScriptedTarget::Seen> calls = target_.calls();
  ASSERT_EQ(calls.size(), 3u);
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].cid, cid);  // the same CID on every attempt
    EXPECT_EQ(calls[i].attempt, std::to_string(i + 1));
  }
  ASSERT_TRUE(h_.runner.AwaitIdle());
  ASSERT_EQ(completed().size(), 1u);
  EXPECT_EQ(completed()[0].state(), v1::CALL_STATE_SUCCEEDED);
}

// The rules the dispatcher's speed relies on (no thread waits for the journal): an attempt goes
// out only once its number is in the journal, and an outcome is reported only once stored.
TEST_F(DispatcherTest, AttemptsStartAfterTheirNumberIsStoredAndOutcomesAreReportedAfterStoring) {
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  absl::Mutex mu;
  std::vector<std::pair<std::string, uint32_t>>
      stored_at_arrival;  // (attempt sent, attempts stored)
  target_.Observe([&](const ScriptedTarget::Seen& seen) {
    absl::StatusOr<v1::Call> call = h_.store.GetCall(seen.cid);
    absl::MutexLock lock(&mu);
    stored_at_arrival.emplace_back(seen.attempt, call.ok() ? call->attempts() : 0);
  });
  target_.Script({ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE)});
  const std::string cid = Submit("target");
  ASSERT_TRUE(target_.AwaitCalls(1));
  ASSERT_TRUE(h_.clock.AwaitTimerDueBy(h_.clock.Now() + absl::Seconds(2)));
  h_.clock.Advance(absl::Seconds(2));
  ASSERT_TRUE(h_.store.AwaitState(cid, v1::CALL_STATE_SUCCEEDED).ok());
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(stored_at_arrival.size(), 2u);
    EXPECT_EQ(stored_at_arrival[0], std::make_pair(std::string("1"), 1u));
    EXPECT_EQ(stored_at_arrival[1], std::make_pair(std::string("2"), 2u));
  }
  ASSERT_TRUE(WaitUntil([&] { return completed().size() == 1; }));
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(state_stored_when_reported_[cid], v1::CALL_STATE_SUCCEEDED);
}

// With a free slot at Submit, attempt 1 is journaled by the accept's own write: the call is
// stored RUNNING with attempt 1 once it is durable, and the attempt needs no write of its own.
TEST_F(DispatcherTest, FirstAttemptIsJournaledWithTheAcceptWhenTheTargetHasAFreeSlot) {
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  target_.Script({ScriptedTarget::Hold()});
  const uint64_t writes = h_.store.stats().writes;
  const absl::Time submitted = h_.clock.Now();
  const std::string cid = Submit("target");
  absl::StatusOr<v1::Call> stored = h_.store.GetCall(cid);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::CALL_STATE_RUNNING);
  EXPECT_EQ(stored->attempts(), 1u);
  EXPECT_EQ(FromProtoTimestamp(stored->started_at()), Stored(submitted));
  ASSERT_TRUE(target_.AwaitCalls(1));
  EXPECT_EQ(target_.calls()[0].attempt, "1");
  EXPECT_EQ(h_.store.stats().writes, writes + 1);  // the accept only
  ASSERT_TRUE(dispatcher_.Cancel(cid, "").ok());
  ASSERT_TRUE(target_.AwaitHeldCallsCancelled(1));
}

// A call that finds no free slot at Submit is stored ACCEPTED and gets its attempt number
// written when a slot frees; a slot taken at Submit goes back when the accept is deduplicated.
TEST(DispatcherSlotsTest, ACallWaitingForASlotIsJournaledWhenItStartsAndDuplicatesKeepNoSlot) {
  LifecycleHarness h(std::string(kPolicy) + "limits:\n  max_in_flight_per_target: 1\n");
  ScriptedTarget target;
  target.Script({ScriptedTarget::Hold()});
  ASSERT_TRUE(h.registry.AddStatic("target", target.address()).ok());
  Dispatcher dispatcher(&h.store, &h.invoker, &h.registry, &h.policies, &h.runner,
                        {.jitter_seed = kSeed}, [](const v1::Completion&, const std::string&) {});
  const auto submit = [&](const std::string& key) {
    v1::CallEnvelope envelope = h.Envelope("target", v1::CALL_KIND_INVOKE_ASYNC);
    envelope.set_idempotency_key(key);
    absl::Notification accepted;
    std::string cid;
    dispatcher.Submit(std::move(envelope), [&](absl::StatusOr<CallStore::AcceptResult> result) {
      EXPECT_TRUE(result.ok()) << result.status();
      if (result.ok()) cid = result->cid;
      accepted.Notify();
    });
    accepted.WaitForNotification();
    return cid;
  };
  const std::string held = submit("key-1");
  ASSERT_TRUE(target.AwaitCalls(1));
  const std::string waiting = submit("");
  absl::StatusOr<v1::Call> stored = h.store.GetCall(waiting);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::CALL_STATE_ACCEPTED);
  EXPECT_EQ(stored->attempts(), 0u);

  ASSERT_TRUE(dispatcher.Cancel(held, "").ok());
  absl::StatusOr<v1::Call> done = h.store.AwaitState(waiting, v1::CALL_STATE_SUCCEEDED);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->attempts(), 1u);
  ASSERT_EQ(target.calls().size(), 2u);
  EXPECT_EQ(target.calls()[1].attempt, "1");

  // Deduplicated to the first call: the slot it took goes back, so the next call runs.
  EXPECT_EQ(submit("key-1"), held);
  const std::string next = submit("");
  ASSERT_TRUE(h.store.AwaitState(next, v1::CALL_STATE_SUCCEEDED).ok());
  h.runner.Stop();
}

// Beyond Options::held_record_bytes a call's record is read from the journal for each attempt
// and each reply; the call runs the same.
TEST_F(DispatcherTest, CallsWhoseRecordIsNotHeldRunTheSame) {
  Dispatcher unheld(&h_.store, &h_.invoker, &h_.registry, &h_.policies, &h_.runner,
                    {.jitter_seed = kSeed, .held_record_bytes = 0},
                    [](const v1::Completion&, const std::string&) {});
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  target_.Script({ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE)});
  absl::Notification accepted;
  std::string cid;
  unheld.Submit(h_.Envelope("target", v1::CALL_KIND_INVOKE_ASYNC, absl::Hours(1)),
                [&](absl::StatusOr<CallStore::AcceptResult> result) {
                  ASSERT_TRUE(result.ok()) << result.status();
                  cid = result->cid;
                  accepted.Notify();
                });
  accepted.WaitForNotification();
  ASSERT_TRUE(target_.AwaitCalls(1));
  ASSERT_TRUE(
      h_.store.AwaitCall(cid, [](const v1::Call& c) { return c.has_next_attempt_at(); }).ok());
  ASSERT_TRUE(h_.clock.AwaitTimerDueBy(h_.clock.Now() + absl::Seconds(2)));
  h_.clock.Advance(absl::Seconds(2));
  absl::StatusOr<v1::Call> done = h_.store.AwaitState(cid, v1::CALL_STATE_SUCCEEDED);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->attempts(), 2u);
  EXPECT_EQ(done->last_status_code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
  EXPECT_EQ(target_.calls()[1].attempt, "2");
  h_.runner.Stop();
}

TEST_F(DispatcherTest, NonRetryableCodeFailsAtOnceWithTheTargetsStatus) {
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  target_.Script({ScriptedTarget::Answer(grpc::StatusCode::INVALID_ARGUMENT)});
  const std::string cid = Submit("target");
  absl::StatusOr<v1::Call> done = h_.store.AwaitState(cid, v1::CALL_STATE_FAILED);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->attempts(), 1u);
  EXPECT_EQ(done->completion().status_code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
}

TEST_F(DispatcherTest, AttemptsRunOutThenFailed) {
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  target_.Script({ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE),
                  ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE),
                  ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE)});
  const std::string cid = Submit("target");
  for (uint32_t attempt = 1; attempt < 3; ++attempt) {
    absl::StatusOr<v1::Call> waiting = h_.store.AwaitCall(cid, [attempt](const v1::Call& c) {
      return c.attempts() == attempt && c.has_next_attempt_at();
    });
    ASSERT_TRUE(waiting.ok()) << waiting.status();
    // The record keeps whole nanoseconds; the timer may be due a fraction later.
    const absl::Time next = FromProtoTimestamp(waiting->next_attempt_at()) + absl::Nanoseconds(1);
    ASSERT_TRUE(h_.clock.AwaitTimerDueBy(next));
    h_.clock.AdvanceTo(next);
  }
  absl::StatusOr<v1::Call> done = h_.store.AwaitState(cid, v1::CALL_STATE_FAILED);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->attempts(), 3u);
  EXPECT_EQ(done->completion().status_code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
}

TEST_F(DispatcherTest, PerAttemptTimeoutEndsTheAttemptWithDeadlineExceeded) {
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  target_.Script({ScriptedTarget::Hold()});
  const std::string cid = Submit("target");
  ASSERT_TRUE(target_.AwaitCalls(1));
  // default_attempt_timeout 5s: the invoker's timer on the clock, well before the deadline.
  h_.clock.Advance(absl::Seconds(5));
  ASSERT_TRUE(target_.AwaitHeldCallsCancelled(1));
  absl::StatusOr<v1::Call> done = h_.store.AwaitState(cid, v1::CALL_STATE_FAILED);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->completion().status_code(),
            static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
  EXPECT_EQ(done->attempts(), 1u);
}

TEST_F(DispatcherTest, ExpiresAtTheDeadlineCancellingTheRunningAttempt) {
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  target_.Script({ScriptedTarget::Hold()});
  const std::string cid = Submit("target", absl::Seconds(2));
  ASSERT_TRUE(target_.AwaitCalls(1));
  h_.clock.Advance(absl::Seconds(2));
  absl::StatusOr<v1::Call> done = h_.store.AwaitState(cid, v1::CALL_STATE_EXPIRED);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->completion().status_code(),
            static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
  ASSERT_TRUE(target_.AwaitHeldCallsCancelled(1));
}

TEST_F(DispatcherTest, ExpiresWhenTheDeadlinePassedWhileTheSidecarWasDown) {
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  // Accepted before "the restart", resumed after its deadline.
  absl::StatusOr<CallStore::AcceptResult> accepted =
      h_.store.AcceptSync(h_.Envelope("target", v1::CALL_KIND_INVOKE_ASYNC, absl::Seconds(10)));
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  h_.clock.Advance(absl::Minutes(5));
  absl::StatusOr<v1::Call> stored = h_.store.GetCall(accepted->cid);
  ASSERT_TRUE(stored.ok());
  dispatcher_.Resume(*stored);
  absl::StatusOr<v1::Call> done = h_.store.AwaitState(accepted->cid, v1::CALL_STATE_EXPIRED);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->attempts(), 0u);
  ASSERT_TRUE(h_.runner.AwaitIdle());
  EXPECT_TRUE(target_.calls().empty());
}

TEST_F(DispatcherTest, CancelEndsTheCallAndItsRunningAttempt) {
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  target_.Script({ScriptedTarget::Hold()});
  const std::string cid = Submit("target");
  ASSERT_TRUE(target_.AwaitCalls(1));
  absl::StatusOr<v1::Call> cancelled = dispatcher_.Cancel(cid, "changed my mind");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::CALL_STATE_CANCELLED);
  EXPECT_EQ(cancelled->completion().status_message(), "cancelled: changed my mind");
  ASSERT_TRUE(target_.AwaitHeldCallsCancelled(1));
  // Cancelling again returns the stored outcome unchanged; an unknown CID is NOT_FOUND.
  absl::StatusOr<v1::Call> again = dispatcher_.Cancel(cid, "again");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->completion().sequence(), cancelled->completion().sequence());
  EXPECT_EQ(dispatcher_.Cancel("01890000-0000-7000-8000-000000000000", "").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(DispatcherTest, ParksWhileTheTargetHasNoInstanceWithoutSpendingAttempts) {
  const std::string cid = Submit("target");
  // Checked every 250 ms of clock time; an hour of checks spends no attempt.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(h_.clock.AwaitTimerDueBy(h_.clock.Now() + absl::Milliseconds(250)));
    h_.clock.Advance(absl::Milliseconds(250));
    ASSERT_TRUE(h_.runner.AwaitIdle());
  }
  absl::StatusOr<v1::Call> parked = h_.store.GetCall(cid);
  ASSERT_TRUE(parked.ok());
  EXPECT_EQ(parked->state(), v1::CALL_STATE_ACCEPTED);
  EXPECT_EQ(parked->attempts(), 0u);

  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  ASSERT_TRUE(h_.clock.AwaitTimerDueBy(h_.clock.Now() + absl::Milliseconds(250)));
  h_.clock.Advance(absl::Milliseconds(250));
  absl::StatusOr<v1::Call> done = h_.store.AwaitState(cid, v1::CALL_STATE_SUCCEEDED);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->attempts(), 1u);
  ASSERT_EQ(target_.calls().size(), 1u);
  EXPECT_EQ(target_.calls()[0].attempt, "1");
}

// What GetCall shows of a call that is not finished: what it waits for and where it last went.
TEST_F(DispatcherTest, DescribesWhatAPendingCallWaitsFor) {
  const auto progress = [this](const std::string& cid) {
    absl::StatusOr<v1::Call> call = h_.store.GetCall(cid);
    EXPECT_TRUE(call.ok()) << call.status();
    dispatcher_.DescribeProgress(&*call);
    return *call;
  };
  const std::string cid = Submit("target");
  ASSERT_TRUE(h_.runner.AwaitIdle());
  v1::Call parked = progress(cid);
  EXPECT_TRUE(absl::StartsWith(parked.waiting_for(),
                               "an instance of service \"target\": unknown service \"target\""))
      << parked.waiting_for();
  EXPECT_EQ(parked.last_instance(), "");

  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  target_.Script({ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE), ScriptedTarget::Hold()});
  ASSERT_TRUE(h_.clock.AwaitTimerDueBy(h_.clock.Now() + absl::Milliseconds(250)));
  h_.clock.Advance(absl::Milliseconds(250));
  absl::StatusOr<v1::Call> backing_off =
      h_.store.AwaitCall(cid, [](const v1::Call& c) { return c.has_next_attempt_at(); });
  ASSERT_TRUE(backing_off.ok()) << backing_off.status();
  ASSERT_TRUE(h_.runner.AwaitIdle());
  v1::Call retrying = progress(cid);
  EXPECT_TRUE(absl::StartsWith(retrying.waiting_for(), "attempt 2 at ")) << retrying.waiting_for();
  EXPECT_TRUE(absl::StrContains(retrying.waiting_for(), "back-off after UNAVAILABLE"))
      << retrying.waiting_for();
  // Noted by the thread that started the attempt, which may return from it after the reply.
  EXPECT_TRUE(WaitUntil([&] { return progress(cid).last_instance() == target_.address(); }));

  // The stored time is truncated to whole nanoseconds; the timer may sit a fraction later.
  const absl::Time retry_at =
      FromProtoTimestamp(backing_off->next_attempt_at()) + absl::Nanoseconds(1);
  ASSERT_TRUE(h_.clock.AwaitTimerDueBy(retry_at));
  h_.clock.AdvanceTo(retry_at);
  ASSERT_TRUE(target_.AwaitCalls(2));
  // The attempt started on the journal's thread once its number was written; it notes the
  // attempt right after handing it to gRPC.
  const std::string awaited = "the reply of attempt 2 from " + target_.address();
  EXPECT_TRUE(WaitUntil([&] { return progress(cid).waiting_for() == awaited; }))
      << progress(cid).waiting_for();

  ASSERT_TRUE(dispatcher_.Cancel(cid, "done looking").ok());
  const v1::Call finished = progress(cid);
  EXPECT_EQ(finished.waiting_for(), "");  // terminal: nothing to wait for
}

TEST_F(DispatcherTest, ParkedCallStillExpiresAtItsDeadline) {
  const std::string cid = Submit("nobody", absl::Seconds(1));
  ASSERT_TRUE(h_.clock.AwaitTimerDueBy(h_.clock.Now() + absl::Seconds(1)));
  h_.clock.Advance(absl::Seconds(1));
  absl::StatusOr<v1::Call> done = h_.store.AwaitState(cid, v1::CALL_STATE_EXPIRED);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->attempts(), 0u);
}

TEST_F(DispatcherTest, FinishedCastIsDeletedAndNotReported) {
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  const std::string cid = Submit("target", absl::Hours(1), v1::CALL_KIND_CAST);
  ASSERT_TRUE(target_.AwaitCalls(1));
  EXPECT_TRUE(h_.store.AwaitGone(cid));
  ASSERT_TRUE(h_.runner.AwaitIdle());
  EXPECT_TRUE(completed().empty());
}

// A finished call leaves no timer behind: its deadline timer (here an hour away) is cancelled
// when it ends, so memory returns to idle once calls are done instead of holding one timer per
// call until its deadline.
TEST_F(DispatcherTest, FinishedCallsCancelTheirDeadlineTimers) {
  ASSERT_TRUE(h_.registry.AddStatic("target", target_.address()).ok());
  const size_t timers_before = h_.runner.timers();
  std::vector<std::string> cids;
  for (int i = 0; i < 3; ++i) cids.push_back(Submit("target", absl::Hours(1)));
  const std::string cast = Submit("target", absl::Hours(1), v1::CALL_KIND_CAST);
  for (const std::string& cid : cids) {
    absl::StatusOr<v1::Call> done = h_.store.AwaitState(cid, v1::CALL_STATE_SUCCEEDED);
    ASSERT_TRUE(done.ok()) << done.status();
  }
  EXPECT_TRUE(h_.store.AwaitGone(cast));
  ASSERT_TRUE(h_.runner.AwaitIdle());
  EXPECT_EQ(dispatcher_.active(), 0u);
  EXPECT_EQ(h_.runner.timers(), timers_before);
}

TEST_F(DispatcherTest, CancelledCallCancelsItsDeadlineTimer) {
  const size_t timers_before = h_.runner.timers();
  const std::string cid = Submit("nobody", absl::Hours(1));  // parked: no instance
  ASSERT_TRUE(h_.runner.AwaitIdle());
  absl::StatusOr<v1::Call> cancelled = dispatcher_.Cancel(cid, "test");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::CALL_STATE_CANCELLED);
  // Left: at most the target's parking check (one per target, not per call).
  EXPECT_LE(h_.runner.timers(), timers_before + 1);
  h_.clock.Advance(absl::Seconds(1));  // the parking check runs, finds nothing parked, stops
  ASSERT_TRUE(h_.runner.AwaitIdle());
  EXPECT_EQ(h_.runner.timers(), timers_before);
}

TEST_F(DispatcherTest, PendingLimitRefusesWithResourceExhausted) {
  Dispatcher limited(&h_.store, &h_.invoker, &h_.registry, &h_.policies, &h_.runner,
                     {.max_pending_calls = 1}, [](const v1::Completion&, const std::string&) {});
  Submit("nobody");  // parked: stays pending
  absl::Notification refused;
  limited.Submit(h_.Envelope("nobody", v1::CALL_KIND_INVOKE_ASYNC),
                 [&](absl::StatusOr<CallStore::AcceptResult> result) {
                   EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted);
                   EXPECT_TRUE(absl::StrContains(result.status().message(), "max_pending_calls"));
                   refused.Notify();
                 });
  refused.WaitForNotification();
}

}  // namespace
}  // namespace callmesh::sidecar
