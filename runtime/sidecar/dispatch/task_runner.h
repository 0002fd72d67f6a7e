// A small pool of worker threads with timers: where the dispatcher and the callback deliverer do
// their blocking work (journal writes wait for fsync), off gRPC's threads. Timers come from a
// Clock, so a FakeClock decides when delayed tasks become ready. Thread-safe.
//
// A worker that ran tasks and then finds none for `CacheRelease::idle_after` (real time) gives
// back its thread's allocator cache (ReleaseThreadCache) once before it sleeps on: each of
// callmeshd's 64 workers otherwise kept the freed memory of the last tasks it ran, some 0.6-2 MB
// of an idle sidecar's resident memory (bench/README.md "Round eight"). A busy worker never does.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/common/clock.h"
#include "runtime/common/thread_cache.h"

namespace callmesh::sidecar {

class TaskRunner {
 public:
  // When an idle worker gives back its allocator cache, and how (tests count the calls).
  struct CacheRelease {
    absl::Duration idle_after = absl::Seconds(1);
    std::function<void()> release = ReleaseThreadCache;
  };

  // `clock` must outlive the runner. Workers give back their cache after CacheRelease's
  // defaults.
  explicit TaskRunner(int threads, Clock* clock = Clock::Real());
  TaskRunner(int threads, Clock* clock, CacheRelease cache_release);
  // Stops (see Stop).
  ~TaskRunner();

  // Runs `task` on a worker as soon as one is free.
  void Post(std::function<void()> task);
  // Identifies a delayed task for CancelTimer; kNoTimer when the task was not delayed (posted at
  // once, or dropped after Stop).
  using TimerKey = uint64_t;
  static constexpr TimerKey kNoTimer = 0;

  // Runs `task` on a worker once the clock reaches `when` (at once if it has passed). Returns the
  // key to cancel it with.
  TimerKey PostAt(absl::Time when, std::function<void()> task);
  // Drops a delayed task that has not become ready yet, and its timer on the clock (so neither it
  // nor what it captured stays in memory). True if it was dropped; false if it already became
  // ready or ran, was dropped, or `key` is kNoTimer. Never waits for the task itself.
  bool CancelTimer(TimerKey key);
  // Drops timers not yet due, finishes the tasks that are running and the ready ones, joins the
  // workers. Posts after Stop are dropped.
  void Stop();

  // Delayed tasks not yet due.
  size_t timers() const;
  // True when no task is ready or running (delayed ones may be pending). For tests that must
  // know that the work an event started has finished.
  bool idle() const;
  // Blocks until idle() or `real_timeout` passes; true if idle.
  bool AwaitIdle(absl::Duration real_timeout = absl::Seconds(60)) const;

  Clock* clock() const { return clock_; }

 private:
  void Work();

  Clock* const clock_;
  const CacheRelease cache_release_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> ready_ ABSL_GUARDED_BY(mu_);
  // The clock's timers of delayed tasks, by a key of ours.
  std::map<uint64_t, Clock::TimerId> timers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_timer_ ABSL_GUARDED_BY(mu_) = kNoTimer + 1;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace callmesh::sidecar
