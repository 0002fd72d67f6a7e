#include "runtime/sidecar/cluster/cluster_membership.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "callmesh/v1/cluster.pb.h"
#include "google/protobuf/util/json_util.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/cluster/member_table.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar::cluster {
namespace {

// How long a thread waits before asking NATS again after a failure.
constexpr absl::Duration kRetryWait = absl::Milliseconds(500);
// How long the watch waits for an entry before it checks the TTLs (and for stop).
constexpr int64_t kWatchPollMs = 200;

struct KvDeleter {
  void operator()(kvStore* kv) const { kvStore_Destroy(kv); }
};
struct WatcherDeleter {
  void operator()(kvWatcher* w) const { kvWatcher_Destroy(w); }
};
struct EntryDeleter {
  void operator()(kvEntry* e) const { kvEntry_Destroy(e); }
};

constexpr char kHeartbeat[] = "heartbeat";
constexpr char kWatch[] = "watch";

}  // namespace

ClusterMembership::ClusterMembership(Options options) : options_(std::move(options)) {}

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
  kvStore* raw = nullptr;
  if (js_KeyValue(&raw, options_.nats->jetstream(), options_.cluster.registry_bucket().c_str()) !=
      NATS_OK) {
    return;
  }
  std::unique_ptr<kvStore, KvDeleter> kv(raw);
  natsStatus s = kvStore_Delete(kv.get(), options_.cluster.sidecar_id().c_str());
  if (s == NATS_OK) {
    spdlog::info("cluster: left the cluster (entry {} deleted)", options_.cluster.sidecar_id());
  } else {
    spdlog::warn("{}", NatsError("cluster: deleting this sidecar's registry entry", s));
  }
}

kvStore* ClusterMembership::BindBucket(const char* who) {
  if (!options_.nats->connected()) {
    NoteError(who, options_.nats->state());
    return nullptr;
  }
  const std::string& bucket = options_.cluster.registry_bucket();
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, options_.nats->jetstream(), bucket.c_str());
  if (s == NATS_OK) return kv;
  if (s != NATS_NOT_FOUND) {
    NoteError(who, NatsError(absl::StrCat("registry bucket ", bucket), s));
    return nullptr;
  }
  kvConfig config;
  kvConfig_Init(&config);
  config.Bucket = bucket.c_str();
  config.Description = "callmesh: the sidecars of the cluster and their healthy instances";
  config.History = 1;
  config.TTL = absl::ToInt64Nanoseconds(FromProtoDuration(options_.cluster.instance_ttl()));
  config.Replicas = static_cast<int>(options_.cluster.replicas());
  config.StorageType = js_FileStorage;
  s = js_CreateKeyValue(&kv, options_.nats->jetstream(), &config);
  if (s != NATS_OK) {
    NoteError(who, NatsError(absl::StrCat("creating registry bucket ", bucket, " with ",
                                          options_.cluster.replicas(), " replica(s)"),
                             s));
    return nullptr;
  }
  spdlog::info("cluster: created registry bucket {} ({} replica(s), entries kept {})", bucket,
               options_.cluster.replicas(),
               absl::FormatDuration(FromProtoDuration(options_.cluster.instance_ttl())));
  return kv;
}

void ClusterMembership::HeartbeatLoop() {
  const absl::Duration interval = FromProtoDuration(options_.cluster.heartbeat_interval());
  std::unique_ptr<kvStore, KvDeleter> kv;
  do {
    if (kv == nullptr) kv.reset(BindBucket(kHeartbeat));
    if (kv == nullptr) {
      absl::MutexLock lock(&mu_);
      put_ok_ = false;
      continue;
    }
    v1::SidecarAdvertisement advertisement;
    advertisement.set_sidecar(options_.cluster.sidecar_id());
    advertisement.set_peer_address(options_.cluster.advertise_address());
    advertisement.set_version(options_.version);
    for (v1::AdvertisedService& service : options_.registry->HealthyLocal()) {
      *advertisement.add_services() = std::move(service);
    }
    *advertisement.mutable_sent_at() = ToProtoTimestamp(options_.clock->Now());
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(advertisement, &json);
    uint64_t revision = 0;
    const natsStatus s = kvStore_Put(&revision, kv.get(), options_.cluster.sidecar_id().c_str(),
                                     json.data(), static_cast<int>(json.size()));
    if (s == NATS_OK) {
      ClearError(kHeartbeat);
      absl::MutexLock lock(&mu_);
      put_ok_ = true;
    } else {
      NoteError(kHeartbeat, NatsError("putting this sidecar's registry entry", s));
      absl::MutexLock lock(&mu_);
      put_ok_ = false;
      // Bind again next time: the bucket may have been deleted, or its stream moved.
      kv.reset();
    }
  } while (!stop_.WaitForNotificationWithTimeout(kv == nullptr ? std::min(interval, kRetryWait)
                                                               : interval));
}

void ClusterMembership::WatchLoop() {
  MemberTable members(FromProtoDuration(options_.cluster.instance_ttl()));
  const std::string& self = options_.cluster.sidecar_id();
  auto expire = [&] {
    for (const std::string& gone : members.Expire(options_.clock->Now())) {
      spdlog::warn("cluster: sidecar {} not heard of for {}; its instances are no longer called",
                   gone, absl::FormatDuration(FromProtoDuration(options_.cluster.instance_ttl())));
      options_.registry->RemoveRemote(gone);
    }
  };
  while (!stop_.HasBeenNotified()) {
    std::unique_ptr<kvStore, KvDeleter> kv(BindBucket(kWatch));
    kvWatcher* raw_watcher = nullptr;
    natsStatus s = NATS_OK;
    if (kv != nullptr) {
      kvWatchOptions watch_options;
      kvWatchOptions_Init(&watch_options);
      s = kvStore_WatchAll(&raw_watcher, kv.get(), &watch_options);
      if (s != NATS_OK) NoteError(kWatch, NatsError("watching the registry bucket", s));
    }
    if (raw_watcher == nullptr) {
      {
        absl::MutexLock lock(&mu_);
        watching_ = false;
      }
      expire();
      stop_.WaitForNotificationWithTimeout(kRetryWait);
      continue;
    }
    std::unique_ptr<kvWatcher, WatcherDeleter> watcher(raw_watcher);
    {
      absl::MutexLock lock(&mu_);
      watching_ = true;
    }
    ClearError(kWatch);
    bool replaying = true;  // until the watcher says the initial values are all delivered
    while (!stop_.HasBeenNotified()) {
      kvEntry* raw_entry = nullptr;
      s = kvWatcher_Next(&raw_entry, watcher.get(), kWatchPollMs);
      expire();
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        NoteError(kWatch, NatsError("watching the registry bucket", s));
        break;
      }
      if (raw_entry == nullptr) {
        replaying = false;
        continue;
      }
      std::unique_ptr<kvEntry, EntryDeleter> entry(raw_entry);
      const std::string key = kvEntry_Key(entry.get());
      if (key == self) continue;
      if (kvEntry_Operation(entry.get()) != kvOp_Put) {
        if (members.Forget(key)) spdlog::info("cluster: sidecar {} left the cluster", key);
        options_.registry->RemoveRemote(key);
        continue;
      }
      v1::SidecarAdvertisement advertisement;
      const std::string json(static_cast<const char*>(kvEntry_Value(entry.get())),
                             kvEntry_ValueLen(entry.get()));
      google::protobuf::util::JsonParseOptions parse;
      parse.ignore_unknown_fields = true;  // entries of newer sidecars
      if (!google::protobuf::util::JsonStringToMessage(json, &advertisement, parse).ok()) {
        spdlog::warn("cluster: registry entry {} is not a sidecar advertisement; ignored", key);
        continue;
      }
      advertisement.set_sidecar(key);  // the key is the id, whatever the value claims
      const absl::Time now = options_.clock->Now();
      if (replaying) {
        const absl::Time written = absl::FromUnixNanos(kvEntry_Created(entry.get()));
        if (!members.HeardAt(key, written, now)) continue;
      } else {
        members.Heard(key, now);
      }
      options_.registry->SetRemote(advertisement);
    }
    absl::MutexLock lock(&mu_);
    watching_ = false;
  }
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
  if (!slot.empty()) spdlog::info("cluster: {} works again", who);
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
  absl::MutexLock lock(&mu_);
  for (const std::string* error : {&heartbeat_error_, &watch_error_}) {
    if (!error->empty()) absl::StrAppend(&state, "; ", *error);
  }
  return state;
}

}  // namespace callmesh::sidecar::cluster
