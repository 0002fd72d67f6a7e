#include "runtime/sidecar/cluster/member_table.h"

#include <algorithm>

namespace callmesh::sidecar::cluster {

bool MemberTable::HeardAt(const std::string& sidecar, absl::Time written, absl::Time now) {
  if (now - written >= ttl_) return false;
  // Counted from when it was written: an entry half a TTL old has half a TTL left.
  last_heard_[sidecar] = now - std::max(absl::ZeroDuration(), now - written);
  return true;
}

void MemberTable::BucketWorks(absl::Time now) {
  if (now - bucket_works_at_ > 2 * heartbeat_) works_since_ = now;  // a stall ended (or the start)
  bucket_works_at_ = now;
}

std::vector<std::string> MemberTable::Expire(absl::Time now) {
  std::vector<std::string> gone;
  for (auto it = last_heard_.begin(); it != last_heard_.end();) {
    const absl::Time silent_since = std::max(it->second, works_since_);
    if (now - silent_since >= ttl_ && bucket_works_at_ - silent_since >= ttl_) {
      gone.push_back(it->first);
      it = last_heard_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

}  // namespace callmesh::sidecar::cluster
