#include "runtime/sidecar/delivery/completion_hub.h"

namespace callmesh::sidecar {

uint64_t CompletionHub::AddWaiter(const std::string& cid, Wake wake) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  waiters_.emplace(cid, std::make_pair(id, std::move(wake)));
  waiter_cids_.emplace(id, cid);
  return id;
}

uint64_t CompletionHub::AddWatcher(Wake wake) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  watchers_.emplace(id, std::move(wake));
  return id;
}

void CompletionHub::RemoveWaiter(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto cid = waiter_cids_.find(id);
  if (cid == waiter_cids_.end()) return;
  auto [begin, end] = waiters_.equal_range(cid->second);
  for (auto it = begin; it != end; ++it) {
    if (it->second.first == id) {
      waiters_.erase(it);
      break;
    }
  }
  waiter_cids_.erase(cid);
}

void CompletionHub::RemoveWatcher(uint64_t id) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(id);
}

void CompletionHub::Notify(const v1::Completion& completion) {
  absl::MutexLock lock(&mu_);
  auto [begin, end] = waiters_.equal_range(completion.cid());
  for (auto it = begin; it != end; ++it) it->second.second();
  for (auto& [id, wake] : watchers_) wake();
}

size_t CompletionHub::watchers() const {
  absl::MutexLock lock(&mu_);
  return watchers_.size();
}

}  // namespace callmesh::sidecar
