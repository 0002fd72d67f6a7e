#include "runtime/common/clock.h"

namespace callmesh {
namespace {

// absl::Now and a timer thread. The only place in the sidecar that waits for real time to pass.
class RealClock final : public Clock {
 public:
  RealClock() {
    std::thread([this] {
      while (true) {
        timers_.AwaitDueInRealTime();
        timers_.RunOneDueBy(absl::Now(), nullptr);
      }
    }).detach();
  }

  absl::Time Now() const override { return absl::Now(); }
  TimerId ScheduleAt(absl::Time when, std::function<void()> fn) override {
    return timers_.Add(when, std::move(fn));
  }
  bool Cancel(TimerId id) override { return timers_.Cancel(id); }

 private:
  TimerQueue timers_;
};

}  // namespace

Clock* Clock::Real() {
  static Clock* const clock = new RealClock();
  return clock;
}

Clock::TimerId TimerQueue::Add(absl::Time when, std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  const Clock::TimerId id = next_id_++;
  timers_.emplace(std::make_pair(when, id), std::move(fn));
  when_.emplace(id, when);
  return id;
}

bool TimerQueue::Cancel(Clock::TimerId id) {
  absl::MutexLock lock(&mu_);
  auto when = when_.find(id);
  if (when != when_.end()) {
    timers_.erase(std::make_pair(when->second, id));
    when_.erase(when);
    return true;
  }
  if (running_ == id && running_thread_ != std::this_thread::get_id()) {
    auto done = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ != id; };
    mu_.Await(absl::Condition(&done));
  }
  return false;
}

bool TimerQueue::RunOneDueBy(absl::Time limit, const std::function<void(absl::Time)>& starting) {
  std::function<void()> fn;
  {
    absl::MutexLock lock(&mu_);
    if (timers_.empty() || timers_.begin()->first.first > limit) return false;
    auto first = timers_.begin();
    running_ = first->first.second;
    running_thread_ = std::this_thread::get_id();
    if (starting) starting(first->first.first);
    fn = std::move(first->second);
    when_.erase(running_);
    timers_.erase(first);
  }
  fn();
  absl::MutexLock lock(&mu_);
  running_ = 0;
  return true;
}

absl::Time TimerQueue::EarliestLocked() const {
  return timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first.first;
}

absl::Time TimerQueue::Earliest() const {
  absl::MutexLock lock(&mu_);
  return EarliestLocked();
}

size_t TimerQueue::size() const {
  absl::MutexLock lock(&mu_);
  return timers_.size();
}

void TimerQueue::AwaitDueInRealTime() const {
  absl::MutexLock lock(&mu_);
  while (true) {
    const absl::Time earliest = EarliestLocked();
    if (earliest <= absl::Now()) return;
    // Wake at the earliest timer, or sooner if an earlier one is added.
    auto earlier = [this, earliest]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return EarliestLocked() < earliest; };
    if (earliest == absl::InfiniteFuture()) {
      mu_.Await(absl::Condition(&earlier));
    } else {
      mu_.AwaitWithDeadline(absl::Condition(&earlier), earliest);
    }
  }
}

bool TimerQueue::AwaitDueBy(absl::Time by, absl::Duration real_timeout) const {
  absl::MutexLock lock(&mu_);
  auto due = [this, by]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return EarliestLocked() <= by; };
  return mu_.AwaitWithTimeout(absl::Condition(&due), real_timeout);
}

bool TimerQueue::AwaitDueAt(absl::Time when, absl::Duration real_timeout) const {
  absl::MutexLock lock(&mu_);
  auto scheduled = [this, when]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto at = timers_.lower_bound(std::make_pair(when, Clock::TimerId{0}));
    return at != timers_.end() && at->first.first == when;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&scheduled), real_timeout);
}

FakeClock::FakeClock(absl::Time start) : now_(start) {}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

Clock::TimerId FakeClock::ScheduleAt(absl::Time when, std::function<void()> fn) {
  return timers_.Add(when, std::move(fn));
}

bool FakeClock::Cancel(TimerId id) { return timers_.Cancel(id); }

void FakeClock::Advance(absl::Duration delta) { AdvanceTo(Now() + delta); }

void FakeClock::AdvanceTo(absl::Time when) {
  // A timer that is already overdue runs at the current time: time never goes back.
  auto starting = [this](absl::Time due) {
    absl::MutexLock lock(&mu_);
    now_ = std::max(now_, due);
  };
  while (timers_.RunOneDueBy(when, starting)) {
  }
  absl::MutexLock lock(&mu_);
  now_ = std::max(now_, when);
}

bool FakeClock::AwaitTimerDueBy(absl::Time by, absl::Duration real_timeout) const {
  return timers_.AwaitDueBy(by, real_timeout);
}

bool FakeClock::AwaitTimerAt(absl::Time when, absl::Duration real_timeout) const {
  return timers_.AwaitDueAt(when, real_timeout);
}

}  // namespace callmesh
