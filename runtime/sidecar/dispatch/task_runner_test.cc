#include "runtime/sidecar/dispatch/task_runner.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace callmesh::sidecar {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1800000000);

// Counts the cache releases of a runner's workers.
struct Releases {
  absl::Mutex mu;
  int count ABSL_GUARDED_BY(mu) = 0;

  TaskRunner::CacheRelease After(absl::Duration idle) {
    return {.idle_after = idle, .release = [this] {
              absl::MutexLock lock(&mu);
              ++count;
            }};
  }
  // Whether `n` releases were counted within `real_timeout`.
  bool AwaitAtLeast(int n, absl::Duration real_timeout = absl::Minutes(1)) {
    absl::MutexLock lock(&mu);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return count >= n; };
    return mu.AwaitWithTimeout(absl::Condition(&reached), real_timeout);
  }
  int Count() {
    absl::MutexLock lock(&mu);
    return count;
  }
};

TEST(TaskRunner, AWorkerGivesBackItsCacheOnceEachTimeItGoesIdleAfterWork) {
  FakeClock clock(kStart);
  Releases releases;
  TaskRunner runner(1, &clock, releases.After(absl::Milliseconds(1)));
  runner.Post([] {});
  ASSERT_TRUE(releases.AwaitAtLeast(1));
  runner.Post([] {});
  ASSERT_TRUE(releases.AwaitAtLeast(2));
  // Once per idle period that follows work, not every millisecond while it stays idle: fifty
  // idle periods pass without a third.
  EXPECT_FALSE(releases.AwaitAtLeast(3, absl::Milliseconds(50)));
  runner.Stop();  // joins the worker: every release it made is counted
  EXPECT_EQ(releases.Count(), 2);
}

TEST(TaskRunner, AWorkerThatIsNotIdleLongEnoughKeepsItsCache) {
  FakeClock clock(kStart);
  Releases releases;
  TaskRunner runner(2, &clock, releases.After(absl::Hours(1)));
  std::atomic<int> ran{0};
  for (int i = 0; i < 10; ++i) runner.Post([&] { ++ran; });
  ASSERT_TRUE(runner.AwaitIdle());
  runner.Stop();
  EXPECT_EQ(ran.load(), 10);
  EXPECT_EQ(releases.Count(), 0);
}

TEST(TaskRunner, DelayedTaskRunsOnceTheClockReachesItsTime) {
  FakeClock clock(kStart);
  TaskRunner runner(2, &clock);
  std::atomic<int> ran{0};
  runner.PostAt(kStart + absl::Seconds(5), [&] { ++ran; });
  EXPECT_EQ(runner.timers(), 1u);
  clock.Advance(absl::Seconds(4));
  ASSERT_TRUE(runner.AwaitIdle());
  EXPECT_EQ(ran.load(), 0);
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(runner.AwaitIdle());
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(runner.timers(), 0u);
}

TEST(TaskRunner, PastTimeRunsAtOnce) {
  FakeClock clock(kStart);
  TaskRunner runner(1, &clock);
  absl::Notification ran;
  runner.PostAt(kStart - absl::Seconds(1), [&] { ran.Notify(); });
  ran.WaitForNotification();  // no Advance needed
  EXPECT_EQ(clock.pending_timers(), 0u);
}

TEST(TaskRunner, CancelledTimerNeverRunsAndLeavesNoTimerBehind) {
  FakeClock clock(kStart);
  TaskRunner runner(1, &clock);
  std::atomic<int> cancelled{0}, kept{0};
  const TaskRunner::TimerKey key = runner.PostAt(kStart + absl::Seconds(5), [&] { ++cancelled; });
  runner.PostAt(kStart + absl::Seconds(5), [&] { ++kept; });
  ASSERT_NE(key, TaskRunner::kNoTimer);
  EXPECT_TRUE(runner.CancelTimer(key));
  EXPECT_EQ(runner.timers(), 1u);
  EXPECT_EQ(clock.pending_timers(), 1u);  // gone from the clock too, not just skipped later
  EXPECT_FALSE(runner.CancelTimer(key));  // once only
  clock.Advance(absl::Seconds(5));
  ASSERT_TRUE(runner.AwaitIdle());
  EXPECT_EQ(cancelled.load(), 0);
  EXPECT_EQ(kept.load(), 1);
}

TEST(TaskRunner, CancelAfterTheTimerFiredIsFalse) {
  FakeClock clock(kStart);
  TaskRunner runner(1, &clock);
  std::atomic<int> ran{0};
  const TaskRunner::TimerKey key = runner.PostAt(kStart + absl::Seconds(1), [&] { ++ran; });
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(runner.AwaitIdle());
  EXPECT_FALSE(runner.CancelTimer(key));
  EXPECT_FALSE(runner.CancelTimer(TaskRunner::kNoTimer));
  EXPECT_EQ(runner.PostAt(kStart, [&] { ++ran; }), TaskRunner::kNoTimer);  // due: posted at once
  ASSERT_TRUE(runner.AwaitIdle());
  EXPECT_EQ(ran.load(), 2);
}

TEST(TaskRunner, StopRunsReadyTasksAndDropsTimersNotYetDue) {
  FakeClock clock(kStart);
  TaskRunner runner(1, &clock);
  std::atomic<int> ready{0}, delayed{0};
  for (int i = 0; i < 10; ++i) runner.Post([&] { ++ready; });
  runner.PostAt(kStart + absl::Seconds(1), [&] { ++delayed; });
  runner.Stop();
  EXPECT_EQ(ready.load(), 10);
  EXPECT_EQ(clock.pending_timers(), 0u);  // cancelled on the clock
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(delayed.load(), 0);
  runner.Post([&] { ++ready; });  // dropped after Stop
  EXPECT_EQ(ready.load(), 10);
}

}  // namespace
}  // namespace callmesh::sidecar
