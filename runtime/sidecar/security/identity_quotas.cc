#include "runtime/sidecar/security/identity_quotas.h"

#include "absl/strings/str_cat.h"
#include "runtime/common/quoted.h"

namespace callmesh::sidecar::security {

absl::StatusOr<bool> IdentityQuotas::ReserveInstance(absl::string_view identity,
                                                     absl::string_view service,
                                                     absl::string_view address) {
  absl::MutexLock lock(&mu_);
  InstanceKey key{std::string(service), std::string(address)};
  if (owners_.count(key) > 0) return false;
  if (owners_.size() >= limits_.max_registered_instances) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "callmeshd holds ", owners_.size(),
        " registered instances already (limits.max_registered_instances); deregister some first"));
  }
  uint32_t& count = instances_[std::string(identity)];
  if (count >= limits_.max_instances_per_identity) {
    return absl::ResourceExhaustedError(
        absl::StrCat(Quoted(identity), " has ", count,
                     " instances registered already (limits.max_instances_per_identity)"));
  }
  ++count;
  owners_.emplace(std::move(key), std::string(identity));
  return true;
}

void IdentityQuotas::ReleaseInstance(absl::string_view service, absl::string_view address) {
  absl::MutexLock lock(&mu_);
  auto it = owners_.find(InstanceKey{std::string(service), std::string(address)});
  if (it == owners_.end()) return;
  if (auto count = instances_.find(it->second); count != instances_.end()) {
    if (--count->second == 0) instances_.erase(count);
  }
  owners_.erase(it);
}

std::optional<std::string> IdentityQuotas::OwnerOf(absl::string_view service,
                                                   absl::string_view address) const {
  absl::MutexLock lock(&mu_);
  auto it = owners_.find(InstanceKey{std::string(service), std::string(address)});
  if (it == owners_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::shared_ptr<void>> IdentityQuotas::TakeWatchSlot(const std::string& identity) {
  {
    absl::MutexLock lock(&mu_);
    uint32_t& count = watchers_[identity];
    if (count >= limits_.max_watchers_per_identity) {
      return absl::ResourceExhaustedError(
          absl::StrCat(Quoted(identity), " holds ", count,
                       " completion watchers already (limits.max_watchers_per_identity)"));
    }
    ++count;
  }
  // The handle's deleter gives the slot back; the quotas outlive every RPC that holds one.
  return std::shared_ptr<void>(static_cast<void*>(this), [this, identity](void*) {
    absl::MutexLock lock(&mu_);
    auto it = watchers_.find(identity);
    if (it != watchers_.end() && --it->second == 0) watchers_.erase(it);
  });
}

}  // namespace callmesh::sidecar::security
