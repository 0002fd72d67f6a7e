// Quotas that keep one identity from crowding out the others: registered instances (per
// identity, and all together) and WatchCompletions streams (per identity). Counting only; the
// caller decides who the identity is.
//
//   absl::Status s = quotas.ReserveInstance("orders", "orders", "127.0.0.1:50051");
//   if (s.ok() && !registry.Register(request).ok()) quotas.ReleaseInstance("orders", "127.0...");
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace callmesh::sidecar::security {

class IdentityQuotas {
 public:
  struct Limits {
    uint32_t max_instances_per_identity = UINT32_MAX;
    uint32_t max_registered_instances = UINT32_MAX;
    uint32_t max_watchers_per_identity = UINT32_MAX;
  };

  explicit IdentityQuotas(Limits limits) : limits_(limits) {}

  // Counts the instance `service` at `address` for `identity`, unless it is counted already (a
  // registration refreshed). RESOURCE_EXHAUSTED naming the limit when a new instance would pass
  // limits.max_instances_per_identity or limits.max_registered_instances. True if the instance
  // was counted now, false if it was counted already.
  absl::StatusOr<bool> ReserveInstance(absl::string_view identity, absl::string_view service,
                                       absl::string_view address);
  // Forgets the instance (deregistered, or its registration failed). No-op if not counted.
  void ReleaseInstance(absl::string_view service, absl::string_view address);
  // Who registered the instance; nullopt if it is not counted (e.g. from the config file).
  std::optional<std::string> OwnerOf(absl::string_view service, absl::string_view address) const;

  // One WatchCompletions slot of `identity`, given back when the returned handle is destroyed;
  // RESOURCE_EXHAUSTED naming limits.max_watchers_per_identity when it holds them all.
  absl::StatusOr<std::shared_ptr<void>> TakeWatchSlot(const std::string& identity);

 private:
  using InstanceKey = std::pair<std::string, std::string>;  // service, address

  const Limits limits_;
  mutable absl::Mutex mu_;
  std::map<InstanceKey, std::string> owners_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint32_t, std::less<>> instances_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint32_t, std::less<>> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::sidecar::security
