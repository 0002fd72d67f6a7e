#include "runtime/common/clock.h"

#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace callmesh {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1700000000);

TEST(FakeClock, StandsStillUntilAdvanced) {
  FakeClock clock(kStart);
  EXPECT_EQ(clock.Now(), kStart);
  clock.Advance(absl::Seconds(3));
  EXPECT_EQ(clock.Now(), kStart + absl::Seconds(3));
  clock.AdvanceTo(kStart + absl::Seconds(1));  // never backwards
  EXPECT_EQ(clock.Now(), kStart + absl::Seconds(3));
}

TEST(FakeClock, AdvanceRunsDueTimersInTimeOrderAtTheirTime) {
  FakeClock clock(kStart);
  std::vector<std::pair<int, absl::Time>> ran;
  clock.ScheduleAfter(absl::Seconds(2), [&] { ran.emplace_back(2, clock.Now()); });
  clock.ScheduleAfter(absl::Seconds(1), [&] { ran.emplace_back(1, clock.Now()); });
  clock.ScheduleAfter(absl::Seconds(1), [&] { ran.emplace_back(11, clock.Now()); });
  clock.ScheduleAfter(absl::Seconds(5), [&] { ran.emplace_back(5, clock.Now()); });
  clock.Advance(absl::Seconds(2));
  ASSERT_EQ(ran.size(), 3u);
  EXPECT_EQ(ran[0], std::make_pair(1, kStart + absl::Seconds(1)));
  EXPECT_EQ(ran[1], std::make_pair(11, kStart + absl::Seconds(1)));
  EXPECT_EQ(ran[2], std::make_pair(2, kStart + absl::Seconds(2)));
  EXPECT_EQ(clock.pending_timers(), 1u);
  EXPECT_EQ(clock.next_timer(), kStart + absl::Seconds(5));
}

TEST(FakeClock, TimersScheduledByTimersRunWhenDueWithinTheSameAdvance) {
  FakeClock clock(kStart);
  std::vector<absl::Time> ran;
  clock.ScheduleAfter(absl::Seconds(1), [&] {
    ran.push_back(clock.Now());
    clock.ScheduleAfter(absl::Seconds(1), [&] { ran.push_back(clock.Now()); });
    clock.ScheduleAfter(absl::Seconds(10), [&] { ran.push_back(clock.Now()); });
  });
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(ran, (std::vector<absl::Time>{kStart + absl::Seconds(1), kStart + absl::Seconds(2)}));
  EXPECT_EQ(clock.pending_timers(), 1u);
}

TEST(FakeClock, CancelledTimerNeverRuns) {
  FakeClock clock(kStart);
  bool ran = false;
  Clock::TimerId id = clock.ScheduleAfter(absl::Seconds(1), [&] { ran = true; });
  EXPECT_TRUE(clock.Cancel(id));
  EXPECT_FALSE(clock.Cancel(id));
  clock.Advance(absl::Seconds(2));
  EXPECT_FALSE(ran);
}

TEST(FakeClock, OverdueTimerRunsAtTheNextAdvance) {
  FakeClock clock(kStart);
  bool ran = false;
  clock.ScheduleAt(kStart - absl::Seconds(1), [&] { ran = true; });
  EXPECT_FALSE(ran);
  clock.Advance(absl::ZeroDuration());
  EXPECT_TRUE(ran);
  EXPECT_EQ(clock.Now(), kStart);
}

TEST(FakeClock, AwaitTimerDueBySeesATimerScheduledOnAnotherThread) {
  FakeClock clock(kStart);
  EXPECT_FALSE(clock.AwaitTimerDueBy(kStart + absl::Seconds(1), absl::ZeroDuration()));
  std::thread scheduler([&] { clock.ScheduleAfter(absl::Seconds(1), [] {}); });
  EXPECT_TRUE(clock.AwaitTimerDueBy(kStart + absl::Seconds(1)));
  scheduler.join();
  EXPECT_FALSE(clock.AwaitTimerAt(kStart + absl::Seconds(2), absl::ZeroDuration()));
  std::thread later([&] { clock.ScheduleAfter(absl::Seconds(2), [] {}); });
  EXPECT_TRUE(clock.AwaitTimerAt(kStart + absl::Seconds(2)));
  later.join();
}

TEST(RealClock, RunsATimerAndCancelsAnother) {
  Clock* clock = Clock::Real();
  absl::Notification fired;
  bool cancelled_ran = false;
  Clock::TimerId cancelled = clock->ScheduleAfter(absl::Hours(1), [&] { cancelled_ran = true; });
  clock->ScheduleAt(absl::InfinitePast(), [&] { fired.Notify(); });
  fired.WaitForNotification();
  EXPECT_TRUE(clock->Cancel(cancelled));
  EXPECT_FALSE(cancelled_ran);
}

}  // namespace
}  // namespace callmesh
