#include "runtime/sidecar/dispatch/task_runner.h"

#include <utility>

#include "runtime/common/thread_name.h"

namespace callmesh::sidecar {

TaskRunner::TaskRunner(int threads, Clock* clock) : TaskRunner(threads, clock, CacheRelease()) {}

TaskRunner::TaskRunner(int threads, Clock* clock, CacheRelease cache_release)
    : clock_(clock), cache_release_(std::move(cache_release)) {
  for (int i = 0; i < threads; ++i) {
    workers_.emplace_back([this] {
      NameThisThread("task-runner");
      Work();
    });
  }
}

TaskRunner::~TaskRunner() { Stop(); }

void TaskRunner::Post(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (!stopping_) ready_.push_back(std::move(task));
}

TaskRunner::TimerKey TaskRunner::PostAt(absl::Time when, std::function<void()> task) {
  if (when <= clock_->Now()) {
    Post(std::move(task));
    return kNoTimer;
  }
  absl::MutexLock lock(&mu_);
  if (stopping_) return kNoTimer;
  const uint64_t key = next_timer_++;
  // The clock's callback only moves the task to the ready queue (timer callbacks must be quick).
  // Scheduling under mu_ is safe: clocks never run a callback inside ScheduleAt.
  timers_[key] = clock_->ScheduleAt(when, [this, key, task = std::move(task)]() mutable {
    absl::MutexLock lock(&mu_);
    if (timers_.erase(key) == 0 || stopping_) return;
    ready_.push_back(std::move(task));
  });
  return key;
}

bool TaskRunner::CancelTimer(TimerKey key) {
  Clock::TimerId id;
  {
    absl::MutexLock lock(&mu_);
    auto timer = timers_.find(key);
    if (timer == timers_.end()) return false;
    id = timer->second;
    timers_.erase(timer);
  }
  // Outside mu_: Cancel waits for a callback that is running, which takes mu_. A callback that
  // runs meanwhile finds its key gone and drops the task.
  clock_->Cancel(id);
  return true;
}

size_t TaskRunner::timers() const {
  absl::MutexLock lock(&mu_);
  return timers_.size();
}

bool TaskRunner::idle() const {
  absl::MutexLock lock(&mu_);
  return ready_.empty() && running_ == 0;
}

bool TaskRunner::AwaitIdle(absl::Duration real_timeout) const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ready_.empty() && running_ == 0; };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), real_timeout);
}

void TaskRunner::Stop() {
  std::map<uint64_t, Clock::TimerId> timers;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    timers.swap(timers_);
  }
  // Outside mu_: Cancel waits for a callback that is running, which takes mu_.
  for (const auto& [key, id] : timers) clock_->Cancel(id);
  for (std::thread& worker : workers_) worker.join();
}

void TaskRunner::Work() {
  bool cached = false;  // ran a task since it last gave back its cache
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !ready_.empty() || stopping_;
      };
      // Real time: this is about memory, not about when tasks run.
      if (!cached || mu_.AwaitWithTimeout(absl::Condition(&has_work), cache_release_.idle_after)) {
        mu_.Await(absl::Condition(&has_work));
        if (ready_.empty()) return;  // stopping, and nothing left to run
        task = std::move(ready_.front());
        ready_.pop_front();
        ++running_;
      }
    }
    if (!task) {
      cache_release_.release();
      cached = false;
      continue;
    }
    cached = true;
    task();
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

}  // namespace callmesh::sidecar
