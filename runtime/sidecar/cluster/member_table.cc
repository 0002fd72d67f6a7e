#include "runtime/sidecar/cluster/member_table.h"

#include <algorithm>

namespace callmesh::sidecar::cluster {

bool MemberTable::HeardAt(const std::string& sidecar, absl::Time written, absl::Time now) {
  if (now - written >= ttl_) return false;
  // Counted from when it was written: an entry half a TTL old has half a TTL left.
  last_heard_[sidecar] = now - std::max(absl::ZeroDuration(), now - written);
  return true;
}

std::vector<std::string> MemberTable::Expire(absl::Time now) {
  std::vector<std::string> gone;
  for (auto it = last_heard_.begin(); it != last_heard_.end();) {
    if (now - it->second >= ttl_ && bucket_works_at_ - it->second >= ttl_) {
      gone.push_back(it->first);
      it = last_heard_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

}  // namespace callmesh::sidecar::cluster
