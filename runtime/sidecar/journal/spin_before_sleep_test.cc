// SpinBeforeSleep's rule is a function of the waits recorded, tested without a clock; Spin is
// tested on its two ends (ready at once, never ready) and with work arriving from another thread.
#include "runtime/sidecar/journal/spin_before_sleep.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace callmesh::sidecar {
namespace {

using std::chrono::microseconds;

TEST(SpinBeforeSleep, SpinsWhileWaitsEndWithinTheWindowAndSleepsAfterALongerOne) {
  SpinBeforeSleep spin(absl::Microseconds(300));
  EXPECT_EQ(spin.NextSpin(), absl::Microseconds(300));  // nothing recorded yet
  spin.WaitEnded(microseconds(120));
  EXPECT_EQ(spin.NextSpin(), absl::Microseconds(300));
  spin.WaitEnded(microseconds(300));  // the window's end still counts as within
  EXPECT_EQ(spin.NextSpin(), absl::Microseconds(300));
  spin.WaitEnded(microseconds(301));  // sparse traffic: the next wait sleeps at once
  EXPECT_EQ(spin.NextSpin(), absl::ZeroDuration());
  spin.WaitEnded(std::chrono::seconds(5));
  EXPECT_EQ(spin.NextSpin(), absl::ZeroDuration());
  spin.WaitEnded(microseconds(40));  // work came back quickly: spin again
  EXPECT_EQ(spin.NextSpin(), absl::Microseconds(300));
}

TEST(SpinBeforeSleep, AZeroOrNegativeWindowNeverSpins) {
  for (absl::Duration window : {absl::ZeroDuration(), absl::Microseconds(-5)}) {
    SpinBeforeSleep spin(window);
    EXPECT_EQ(spin.NextSpin(), absl::ZeroDuration());
    spin.WaitEnded(microseconds(0));
    EXPECT_EQ(spin.NextSpin(), absl::ZeroDuration());
    int looks = 0;
    EXPECT_FALSE(spin.Spin([&] { return ++looks > 5; }));
    EXPECT_EQ(looks, 1);  // looked once, did not loop
  }
}

TEST(SpinBeforeSleep, SpinReturnsAtOnceWhenReadyAndGivesUpAfterTheWindow) {
  SpinBeforeSleep spin(absl::Milliseconds(2));
  int looks = 0;
  EXPECT_TRUE(spin.Spin([&] { return ++looks > 0; }));
  EXPECT_EQ(looks, 1);
  const auto start = SpinBeforeSleep::Clock::now();
  EXPECT_FALSE(spin.Spin([] { return false; }));
  EXPECT_GE(SpinBeforeSleep::Clock::now() - start, std::chrono::milliseconds(2));
}

TEST(SpinBeforeSleep, SeesWorkHandedOverByAnotherThread) {
  SpinBeforeSleep spin(absl::Seconds(30));  // a safety net: the other thread ends the spin
  std::atomic<bool> has_work{false};
  std::thread producer([&] { has_work.store(true, std::memory_order_release); });
  EXPECT_TRUE(spin.Spin([&] { return has_work.load(std::memory_order_acquire); }));
  producer.join();
}

}  // namespace
}  // namespace callmesh::sidecar
