// A small pool of worker threads with timers: where the dispatcher and the callback deliverer do
// their blocking work (journal writes wait for fsync), off gRPC's threads.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace callmesh::sidecar {

class TaskRunner {
 public:
  explicit TaskRunner(int threads);
  // Stops (see Stop).
  ~TaskRunner();

  // Runs `task` on a worker as soon as one is free.
  void Post(std::function<void()> task);
  // Runs `task` on a worker at `when` (at once if it has passed).
  void PostAt(absl::Time when, std::function<void()> task);
  // Drops timers not yet due, finishes the tasks that are running and the ready ones, joins the
  // workers. Posts after Stop are dropped.
  void Stop();

  size_t timers() const;

 private:
  void Work();

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> ready_ ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, std::function<void()>> timers_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace callmesh::sidecar
