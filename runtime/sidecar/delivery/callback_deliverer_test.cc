// Callback delivery on a FakeClock: retries with back-off, the per-attempt timeout, dead letters
// and redrive, against a real callback service on loopback and a real journal.
#include "runtime/sidecar/delivery/callback_deliverer.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/testing/lifecycle_harness.h"
#include "runtime/sidecar/testing/scripted_target.h"

namespace callmesh::sidecar {
namespace {

using ::callmesh::testing::LifecycleHarness;
using ::callmesh::testing::ScriptedTarget;
using ::callmesh::testing::ThreeAttemptsNoJitter;

class CallbackDelivererTest : public ::testing::Test {
 protected:
  CallbackDelivererTest()
      : deliverer_(&h_.store, &h_.invoker, &h_.runner,
                   {.retry = Plan(), .attempt_timeout = absl::Seconds(30), .jitter_seed = 7}) {
    EXPECT_TRUE(h_.registry.AddStatic("audit", callback_.address()).ok());
  }
  // The deliverer's contract: the runner stopped and the invoker's calls ended before it goes (it
  // is destroyed before the harness, whose own destructor would end them too late).
  ~CallbackDelivererTest() override {
    h_.runner.Stop();
    deliverer_.Stop();
    h_.invoker.CancelAllAndWait();
  }

  static RetryPlan Plan() {
    RetryPlan plan = ThreeAttemptsNoJitter();
    plan.retryable_codes = {14};  // ignored: callbacks retry every error
    return plan;
  }

  // A call that ended SUCCEEDED with its completion owed to "audit".
  v1::Completion Completed() { return h_.Completed("audit"); }

  // Lets the back-off after a failed attempt run out.
  void AdvancePastBackoff(absl::Duration backoff) {
    const absl::Time due = h_.clock.Now() + backoff;
    ASSERT_TRUE(h_.clock.AwaitTimerDueBy(due));
    ASSERT_EQ(h_.clock.next_timer(), due);  // jitter 0: exactly the policy's delay
    h_.clock.AdvanceTo(due);
  }

  // Delivers `completion` to "audit", which fails the first two attempts (as scripted): each
  // back-off is waited out on the clock, so the third attempt is under way on return.
  void DeliverPastTwoFailures(const v1::Completion& completion) {
    deliverer_.Deliver(completion, "audit");
    ASSERT_TRUE(callback_.AwaitCalls(1));
    AdvancePastBackoff(absl::Seconds(1));
    ASSERT_TRUE(callback_.AwaitCalls(2));
    AdvancePastBackoff(absl::Seconds(2));
  }

  ScriptedTarget callback_;
  LifecycleHarness h_;
  CallbackDeliverer deliverer_;
};

TEST_F(CallbackDelivererTest, DeliversTheStoredCompletionAndMarksItDelivered) {
  const v1::Completion completion = Completed();
  deliverer_.Deliver(completion, "audit");
  absl::StatusOr<v1::Call> done =
      h_.store.AwaitDelivery(completion.cid(), v1::DELIVERY_STATE_DELIVERED);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(callback_.calls().size(), 1u);
  EXPECT_EQ(callback_.calls()[0].cid, completion.cid());
  EXPECT_EQ(callback_.calls()[0].request.reply(), "reply");
  EXPECT_EQ(callback_.calls()[0].request.delivery_attempt(), 1u);
}

TEST_F(CallbackDelivererTest, RetriesEveryErrorWithBackoffUntilDelivered) {
  callback_.Script({ScriptedTarget::Answer(grpc::StatusCode::INTERNAL),
                    ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE)});
  const v1::Completion completion = Completed();
  DeliverPastTwoFailures(completion);
  absl::StatusOr<v1::Call> done =
      h_.store.AwaitDelivery(completion.cid(), v1::DELIVERY_STATE_DELIVERED);
  ASSERT_TRUE(done.ok()) << done.status();
  const std::vector<ScriptedTarget::Seen> calls = callback_.calls();
  ASSERT_EQ(calls.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(calls[i].request.delivery_attempt(), i + 1);
}

TEST_F(CallbackDelivererTest, DeadLettersAfterTheLastAttemptAndRedriveDeliversAgain) {
  callback_.Script({ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE),
                    ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE),
                    ScriptedTarget::Answer(grpc::StatusCode::NOT_FOUND)});
  const v1::Completion completion = Completed();
  DeliverPastTwoFailures(completion);
  const v1::DeadLetter letter = h_.OnlyDeadLetter(completion.cid());
  EXPECT_EQ(letter.callback(), "audit");
  EXPECT_EQ(letter.delivery_attempts(), 3u);
  EXPECT_EQ(letter.last_status_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(FromProtoTimestamp(letter.dead_lettered_at()), h_.clock.Now());
  EXPECT_EQ(h_.clock.pending_timers(), 0u);  // no more attempts

  ASSERT_TRUE(deliverer_.Redrive(completion.cid()).ok());
  absl::StatusOr<v1::Call> delivered =
      h_.store.AwaitDelivery(completion.cid(), v1::DELIVERY_STATE_DELIVERED);
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  ASSERT_EQ(callback_.calls().size(), 4u);
  EXPECT_EQ(callback_.calls()[3].request.delivery_attempt(), 1u);  // from attempt 1 again
  auto letters = h_.store.ListDeadLetters(0, "");
  ASSERT_TRUE(letters.ok());
  EXPECT_TRUE(letters->first.empty());
}

TEST_F(CallbackDelivererTest, RedriveRefusesWhatIsNotDeadLettered) {
  const v1::Completion completion = Completed();
  absl::Status pending = deliverer_.Redrive(completion.cid());
  EXPECT_EQ(pending.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(pending.message(), "not dead-lettered")) << pending;
  EXPECT_EQ(deliverer_.Redrive("01890000-0000-7000-8000-000000000000").code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CallbackDelivererTest, AnAttemptThatHangsTimesOutAndIsRetried) {
  callback_.Script({ScriptedTarget::Hold()});
  const v1::Completion completion = Completed();
  deliverer_.Deliver(completion, "audit");
  ASSERT_TRUE(callback_.AwaitCalls(1));
  h_.clock.Advance(absl::Seconds(30));  // the policy's attempt timeout
  ASSERT_TRUE(callback_.AwaitHeldCallsCancelled(1));
  AdvancePastBackoff(absl::Seconds(1));
  absl::StatusOr<v1::Call> done =
      h_.store.AwaitDelivery(completion.cid(), v1::DELIVERY_STATE_DELIVERED);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(callback_.calls().size(), 2u);
}

// After Stop (Sidecar::Shutdown, before the invoker's calls are cancelled), the result of a unary
// attempt still in flight is not recorded: its CANCELLED schedules no retry and the completion
// stays PENDING for the next start.
TEST_F(CallbackDelivererTest, AfterStopAnAttemptsResultIsNeitherRecordedNorRetried) {
  callback_.Script({ScriptedTarget::Hold()});
  const v1::Completion completion = Completed();
  deliverer_.Deliver(completion, "audit");
  ASSERT_TRUE(callback_.AwaitCalls(1));
  deliverer_.Stop();
  h_.invoker.CancelAllAndWait();
  ASSERT_TRUE(callback_.AwaitHeldCallsCancelled(1));
  ASSERT_TRUE(h_.runner.AwaitIdle());
  EXPECT_EQ(h_.clock.pending_timers(), 0u);
  absl::StatusOr<v1::Call> call = h_.store.GetCall(completion.cid());
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->callback_delivery(), v1::DELIVERY_STATE_PENDING);
  EXPECT_EQ(callback_.calls().size(), 1u);
}

}  // namespace
}  // namespace callmesh::sidecar
