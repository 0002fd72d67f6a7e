// Tells whoever waits for completions that one was persisted: WaitCall long polls (by CID) and
// WatchCompletions streams (any). Completions themselves are read from the journal; the hub only
// carries the wake-up, so a slow listener never makes it hold data.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "callmesh/v1/call.pb.h"

namespace callmesh::sidecar {

class CompletionHub {
 public:
  using Wake = std::function<void()>;

  // `wake` runs (with the hub's lock held: it must be quick and must not call the hub) after each
  // persisted completion of `cid`, until RemoveWaiter. Returns a handle for RemoveWaiter.
  uint64_t AddWaiter(const std::string& cid, Wake wake);
  // `wake` runs after every persisted completion, until RemoveWatcher. Same rules.
  uint64_t AddWatcher(Wake wake);
  // After it returns, the `wake` of `id` is not running and will not run again.
  void RemoveWaiter(uint64_t id);
  void RemoveWatcher(uint64_t id);

  // Called by the dispatcher once `completion` is durable.
  void Notify(const v1::Completion& completion);

  size_t watchers() const;

 private:
  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::multimap<std::string, std::pair<uint64_t, Wake>> waiters_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> waiter_cids_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Wake> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::sidecar
