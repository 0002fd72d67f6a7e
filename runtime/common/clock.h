// Where the sidecar's time comes from: the current time and one-shot timers. Everything that
// decides by time — deadlines, retry back-off, per-attempt timeouts, EXPIRED, purging — asks a
// Clock, so that tests can drive it with a FakeClock instead of sleeping.
//
//   Clock* clock = Clock::Real();
//   Clock::TimerId timer = clock->ScheduleAfter(absl::Seconds(5), [] { Expire(); });
//   clock->Cancel(timer);  // if it has not run yet, it never will
//
//   FakeClock fake;                       // starts at the real now, then moves only on Advance
//   fake.ScheduleAfter(absl::Seconds(5), [&] { fired = true; });
//   fake.Advance(absl::Seconds(5));       // runs the timer on this thread, before returning
//
// Timer callbacks must be quick (they run on the clock's one timer thread, or inside Advance):
// hand real work to a TaskRunner. All methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace callmesh {

class Clock {
 public:
  using TimerId = uint64_t;

  virtual ~Clock() = default;

  // The current time.
  virtual absl::Time Now() const = 0;

  // Runs `fn` once at `when` (a real clock: as soon as possible if it has passed; a FakeClock:
  // at its next Advance). Never runs `fn` on the calling thread before returning. Returns an id
  // for Cancel (never 0).
  virtual TimerId ScheduleAt(absl::Time when, std::function<void()> fn) = 0;
  TimerId ScheduleAfter(absl::Duration delay, std::function<void()> fn) {
    return ScheduleAt(Now() + delay, std::move(fn));
  }

  // Cancels a timer. True if it had not started: then it never runs. False if it already ran
  // or is running; in the latter case Cancel waits until it has returned — unless called from
  // that very callback.
  virtual bool Cancel(TimerId id) = 0;

  // The process-wide real clock (absl::Now, one timer thread started on first use). Never
  // destroyed.
  static Clock* Real();
};

// Timers kept in time order, shared by the real and the fake clock. Internal.
class TimerQueue {
 public:
  Clock::TimerId Add(absl::Time when, std::function<void()> fn);
  // See Clock::Cancel.
  bool Cancel(Clock::TimerId id);
  // Runs the earliest timer if it is due at or before `limit`, first calling `starting` with its
  // time (under the queue's lock). False if no timer was due.
  bool RunOneDueBy(absl::Time limit, const std::function<void(absl::Time)>& starting);
  // Time of the earliest timer; InfiniteFuture if none.
  absl::Time Earliest() const;
  size_t size() const;
  // Blocks until the earliest timer is due by the real clock (for the real clock's thread).
  void AwaitDueInRealTime() const;
  // Blocks until a timer is due at or before `by`, or `real_timeout` passes; true if one is.
  bool AwaitDueBy(absl::Time by, absl::Duration real_timeout) const;
  // Blocks until a timer is due exactly at `when`, or `real_timeout` passes; true if one is.
  bool AwaitDueAt(absl::Time when, absl::Duration real_timeout) const;

 private:
  absl::Time EarliestLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  Clock::TimerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::pair<absl::Time, Clock::TimerId>, std::function<void()>> timers_
      ABSL_GUARDED_BY(mu_);
  std::map<Clock::TimerId, absl::Time> when_ ABSL_GUARDED_BY(mu_);
  // The timer whose callback runs now (0 = none), and on which thread.
  Clock::TimerId running_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread::id running_thread_ ABSL_GUARDED_BY(mu_);
};

// A clock for tests: time stands still until Advance moves it, and Advance runs every timer that
// becomes due, in time order (ties in scheduling order), on the calling thread.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::Now());

  absl::Time Now() const override;
  TimerId ScheduleAt(absl::Time when, std::function<void()> fn) override;
  bool Cancel(TimerId id) override;

  // Moves time forward by `delta` (or to `when`), stopping at each due timer to run it with
  // Now() equal to its time. Timers scheduled by those callbacks run too if they fall due.
  void Advance(absl::Duration delta);
  void AdvanceTo(absl::Time when);

  // Timers not yet run, and the time of the earliest (InfiniteFuture if none).
  size_t pending_timers() const { return timers_.size(); }
  absl::Time next_timer() const { return timers_.Earliest(); }

  // Blocks the test until some thread has scheduled a timer due at or before `by` — e.g. a retry
  // that a worker thread is about to schedule — or `real_timeout` has passed (a safety net for a
  // broken test, not a measurement). True if such a timer is pending.
  bool AwaitTimerDueBy(absl::Time by, absl::Duration real_timeout = absl::Seconds(60)) const;
  // The same for a timer due exactly at `when`: tells one timer from others due earlier.
  bool AwaitTimerAt(absl::Time when, absl::Duration real_timeout = absl::Seconds(60)) const;

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  TimerQueue timers_;
};

}  // namespace callmesh
