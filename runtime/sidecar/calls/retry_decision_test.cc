#include "runtime/sidecar/calls/retry_decision.h"

#include "gtest/gtest.h"

namespace callmesh::calls {
namespace {

constexpr int kUnavailable = 14;
constexpr int kInvalidArgument = 3;
const absl::Time kNow = absl::FromUnixSeconds(1700000000);

sidecar::RetryPlan Plan() {
  sidecar::RetryPlan plan;
  plan.max_attempts = 3;
  plan.initial_backoff = absl::Seconds(1);
  plan.max_backoff = absl::Seconds(10);
  plan.multiplier = 2;
  plan.jitter = 0;
  plan.retryable_codes = {kUnavailable};
  return plan;
}

TEST(DecideAfterAttempt, Table) {
  const struct {
    const char* why;
    uint32_t attempt;
    absl::Time deadline;
    int code;
    Step want;
    absl::Duration delay;
  } kCases[] = {
      {"success ends it", 1, kNow + absl::Hours(1), 0, Step::kSucceed, absl::ZeroDuration()},
      {"success even at the deadline", 3, kNow, 0, Step::kSucceed, absl::ZeroDuration()},
      {"retryable, attempts left", 1, kNow + absl::Hours(1), kUnavailable, Step::kRetry,
       absl::Seconds(1)},
      {"back-off doubles", 2, kNow + absl::Hours(1), kUnavailable, Step::kRetry, absl::Seconds(2)},
      {"no attempts left", 3, kNow + absl::Hours(1), kUnavailable, Step::kFail,
       absl::ZeroDuration()},
      {"not retryable", 1, kNow + absl::Hours(1), kInvalidArgument, Step::kFail,
       absl::ZeroDuration()},
      {"deadline passed", 1, kNow, kUnavailable, Step::kExpire, absl::ZeroDuration()},
      {"deadline passed, not retryable", 1, kNow - absl::Seconds(1), kInvalidArgument,
       Step::kExpire, absl::ZeroDuration()},
      {"next attempt would start after the deadline", 1, kNow + absl::Milliseconds(500),
       kUnavailable, Step::kFail, absl::Seconds(1)},
      {"no deadline (callbacks)", 2, absl::InfiniteFuture(), kUnavailable, Step::kRetry,
       absl::Seconds(2)},
  };
  for (const auto& c : kCases) {
    const Decision d = DecideAfterAttempt({.attempt = c.attempt, .deadline = c.deadline}, c.code,
                                          kNow, Plan(), 0.5);
    EXPECT_EQ(d.step, c.want) << c.why;
    if (c.want == Step::kRetry) {
      EXPECT_EQ(d.delay, c.delay) << c.why;
      EXPECT_EQ(d.retry_at, kNow + c.delay) << c.why;
    }
  }
}

TEST(DecideAfterAttempt, EmptyRetryableCodesRetryEveryError) {
  sidecar::RetryPlan plan = Plan();
  plan.retryable_codes.clear();
  EXPECT_EQ(DecideAfterAttempt({.attempt = 1}, kInvalidArgument, kNow, plan, 0).step, Step::kRetry);
}

TEST(BackoffDelay, GrowsIsCappedAndJittered) {
  sidecar::RetryPlan plan;
  plan.initial_backoff = absl::Milliseconds(100);
  plan.max_backoff = absl::Seconds(1);
  plan.multiplier = 2;
  plan.jitter = 0;
  const struct {
    uint32_t failed;
    absl::Duration want;
  } kCases[] = {{1, absl::Milliseconds(100)},
                {2, absl::Milliseconds(200)},
                {4, absl::Milliseconds(800)},
                {5, absl::Seconds(1)},
                {60, absl::Seconds(1)}};
  for (const auto& c : kCases) EXPECT_EQ(BackoffDelay(plan, c.failed, 0.7), c.want) << c.failed;
  plan.jitter = 0.5;
  EXPECT_EQ(BackoffDelay(plan, 2, 0.0), absl::Milliseconds(100));
  EXPECT_EQ(BackoffDelay(plan, 2, 0.5), absl::Milliseconds(200));
  EXPECT_EQ(BackoffDelay(plan, 2, 0.75), absl::Milliseconds(250));
}

}  // namespace
}  // namespace callmesh::calls
