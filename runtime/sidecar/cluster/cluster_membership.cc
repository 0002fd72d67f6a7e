#include "runtime/sidecar/cluster/cluster_membership.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "callmesh/v1/cluster.pb.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/cluster/member_table.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar::cluster {
namespace {

// How long the heartbeat waits before asking NATS again after a failure.
constexpr absl::Duration kRetryWait = absl::Milliseconds(500);

constexpr char kHeartbeat[] = "heartbeat";
constexpr char kWatch[] = "watch";

}  // namespace

ClusterMembership::ClusterMembership(Options options)
    : options_(std::move(options)),
      bucket_{.name = options_.cluster.registry_bucket(),
              .description = "callmesh: the sidecars of the cluster and their healthy instances",
              .max_age = FromProtoDuration(options_.cluster.instance_ttl()),
              .replicas = static_cast<int>(options_.cluster.replicas())} {}

void ClusterMembership::Start() {
  if (heartbeat_thread_.joinable() || stop_.HasBeenNotified()) return;
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  watch_thread_ = std::thread([this] { WatchLoop(); });
}

ClusterMembership::~ClusterMembership() { Stop(/*leave=*/false); }

void ClusterMembership::Stop(bool leave) {
  if (stop_.HasBeenNotified()) return;
  stop_.Notify();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (!leave || !options_.nats->connected()) return;
  absl::StatusOr<KvBucket> bucket = OpenBucket(*options_.nats, bucket_);
  if (!bucket.ok()) return;
  const natsStatus s = kvStore_Delete(bucket->get(), options_.cluster.sidecar_id().c_str());
  if (s == NATS_OK) {
    spdlog::info("cluster: left the cluster (entry {} deleted)", options_.cluster.sidecar_id());
  } else {
    spdlog::warn("{}", NatsError("cluster: deleting this sidecar's registry entry", s));
  }
}

void ClusterMembership::HeartbeatLoop() {
  const absl::Duration interval = FromProtoDuration(options_.cluster.heartbeat_interval());
  KvBucket bucket;
  do {
    if (bucket == nullptr) {
      absl::StatusOr<KvBucket> opened = OpenBucket(*options_.nats, bucket_);
      if (!opened.ok()) {
        NoteError(kHeartbeat, std::string(opened.status().message()));
        absl::MutexLock lock(&mu_);
        put_ok_ = false;
        continue;
      }
      bucket = *std::move(opened);
    }
    v1::SidecarAdvertisement advertisement;
    advertisement.set_sidecar(options_.cluster.sidecar_id());
    advertisement.set_peer_address(options_.cluster.advertise_address());
    advertisement.set_version(options_.version);
    for (v1::AdvertisedService& service : options_.registry->HealthyLocal()) {
      *advertisement.add_services() = std::move(service);
    }
    *advertisement.mutable_sent_at() = ToProtoTimestamp(options_.clock->Now());
    const natsStatus s = PutJson(bucket.get(), options_.cluster.sidecar_id(), advertisement);
    if (s == NATS_OK) {
      ClearError(kHeartbeat);
      absl::MutexLock lock(&mu_);
      put_ok_ = true;
    } else {
      NoteError(kHeartbeat, NatsError("putting this sidecar's registry entry", s));
      absl::MutexLock lock(&mu_);
      put_ok_ = false;
      // Open again next time: the bucket may have been deleted, or its stream moved.
      bucket.reset();
    }
  } while (!stop_.WaitForNotificationWithTimeout(bucket == nullptr ? std::min(interval, kRetryWait)
                                                                   : interval));
}

void ClusterMembership::WatchLoop() {
  MemberTable members(FromProtoDuration(options_.cluster.instance_ttl()),
                      FromProtoDuration(options_.cluster.heartbeat_interval()));
  const std::string& self = options_.cluster.sidecar_id();
  WatchHandlers handlers;
  handlers.on_tick = [&] {
    for (const std::string& gone : members.Expire(options_.clock->Now())) {
      spdlog::warn("cluster: sidecar {} not heard of for {}; its instances are no longer called",
                   gone, absl::FormatDuration(FromProtoDuration(options_.cluster.instance_ttl())));
      options_.registry->RemoveRemote(gone);
    }
  };
  handlers.on_state = [&](const std::string& error) {
    if (error.empty()) {
      ClearError(kWatch);
    } else {
      NoteError(kWatch, error);
    }
    absl::MutexLock lock(&mu_);
    watching_ = error.empty();
  };
  handlers.on_entry = [&](const BucketEntry& entry) {
    if (entry.key == self) {
      if (!entry.put || entry.replayed) return;
      // Our own heartbeat came back: the bucket works, so silence of the others means something.
      // Unless another sidecar writes under our id: then both entries flap, say so.
      v1::SidecarAdvertisement own;
      if (ParseJson(entry.value, &own) &&
          own.peer_address() != options_.cluster.advertise_address()) {
        NoteError(kWatch, absl::StrCat("another sidecar (peer address ", own.peer_address(),
                                       ") uses this sidecar's id ", self,
                                       "; give every sidecar its own cluster.sidecar_id"));
        return;
      }
      ClearError(kWatch);
      members.BucketWorks(options_.clock->Now());
      return;
    }
    if (!entry.put) {
      if (members.Forget(entry.key))
        spdlog::info("cluster: sidecar {} left the cluster", entry.key);
      options_.registry->RemoveRemote(entry.key);
      return;
    }
    v1::SidecarAdvertisement advertisement;
    if (!ParseJson(entry.value, &advertisement)) {
      spdlog::warn("cluster: registry entry {} is not a sidecar advertisement; ignored", entry.key);
      return;
    }
    advertisement.set_sidecar(entry.key);  // the key is the id, whatever the value claims
    const absl::Time now = options_.clock->Now();
    if (entry.replayed) {
      if (!members.HeardAt(entry.key, entry.written, now)) return;
    } else {
      members.Heard(entry.key, now);
    }
    options_.registry->SetRemote(advertisement);
  };
  WatchBucket(*options_.nats, bucket_, &stop_, handlers);
}

void ClusterMembership::NoteError(const char* who, std::string error) {
  absl::MutexLock lock(&mu_);
  std::string& slot = who == kHeartbeat ? heartbeat_error_ : watch_error_;
  if (slot != error) spdlog::warn("cluster: {}", error);
  slot = std::move(error);
}

void ClusterMembership::ClearError(const char* who) {
  absl::MutexLock lock(&mu_);
  std::string& slot = who == kHeartbeat ? heartbeat_error_ : watch_error_;
  if (!slot.empty()) spdlog::info("cluster: the registry {} works again", who);
  slot.clear();
}

bool ClusterMembership::healthy() const {
  absl::MutexLock lock(&mu_);
  return put_ok_ && watching_;
}

std::string ClusterMembership::state() const {
  const std::vector<std::string> sidecars = options_.registry->RemoteSidecars();
  std::string state =
      absl::StrCat("sidecar ", options_.cluster.sidecar_id(), "; NATS ", options_.nats->state(),
                   "; other sidecars: ", sidecars.empty() ? "none" : absl::StrJoin(sidecars, ", "));
  // Without NATS every error says only that again.
  if (!options_.nats->connected()) return state;
  absl::MutexLock lock(&mu_);
  if (!heartbeat_error_.empty()) absl::StrAppend(&state, "; ", heartbeat_error_);
  if (!watch_error_.empty() && watch_error_ != heartbeat_error_) {
    absl::StrAppend(&state, "; ", watch_error_);
  }
  return state;
}

}  // namespace callmesh::sidecar::cluster
