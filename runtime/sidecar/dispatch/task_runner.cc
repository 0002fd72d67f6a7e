#include "runtime/sidecar/dispatch/task_runner.h"

namespace callmesh::sidecar {

TaskRunner::TaskRunner(int threads) {
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

TaskRunner::~TaskRunner() { Stop(); }

void TaskRunner::Post(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (!stopping_) ready_.push_back(std::move(task));
}

void TaskRunner::PostAt(absl::Time when, std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (!stopping_) timers_.emplace(when, std::move(task));
}

size_t TaskRunner::timers() const {
  absl::MutexLock lock(&mu_);
  return timers_.size();
}

void TaskRunner::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    timers_.clear();
  }
  for (std::thread& worker : workers_) worker.join();
}

void TaskRunner::Work() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        const absl::Time now = absl::Now();
        while (!timers_.empty() && timers_.begin()->first <= now) {
          ready_.push_back(std::move(timers_.begin()->second));
          timers_.erase(timers_.begin());
        }
        if (!ready_.empty()) break;
        if (stopping_) return;
        const absl::Time wake = timers_.empty() ? now + absl::Seconds(1) : timers_.begin()->first;
        // Also wake for a timer posted meanwhile that is due before `wake`.
        auto has_work = [this, wake]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !ready_.empty() || stopping_ ||
                 (!timers_.empty() && timers_.begin()->first < wake);
        };
        mu_.AwaitWithDeadline(absl::Condition(&has_work), wake);
      }
      task = std::move(ready_.front());
      ready_.pop_front();
    }
    task();
  }
}

}  // namespace callmesh::sidecar
