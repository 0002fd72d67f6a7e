#include "runtime/sidecar/cluster/kv_bucket.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar::cluster {
namespace {

// How long the watch waits before asking NATS again after a failure.
constexpr absl::Duration kRetryWait = absl::Milliseconds(500);
// How long the watch waits for an entry before it ticks (and looks at `stop`).
constexpr int64_t kWatchPollMs = 200;

struct WatcherDeleter {
  void operator()(kvWatcher* w) const { kvWatcher_Destroy(w); }
};
struct EntryDeleter {
  void operator()(kvEntry* e) const { kvEntry_Destroy(e); }
};

}  // namespace

absl::StatusOr<KvBucket> OpenBucket(const NatsConnection& nats, const BucketSpec& spec) {
  if (!nats.connected()) {
    return absl::UnavailableError(absl::StrCat("bucket ", spec.name, ": NATS ", nats.state()));
  }
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, nats.jetstream(), spec.name.c_str());
  if (s == NATS_OK) return KvBucket(kv);
  if (s != NATS_NOT_FOUND) {
    return absl::UnavailableError(NatsError(absl::StrCat("bucket ", spec.name), s));
  }
  kvConfig config;
  kvConfig_Init(&config);
  config.Bucket = spec.name.c_str();
  config.Description = spec.description.c_str();
  config.History = 1;
  config.TTL = absl::ToInt64Nanoseconds(spec.max_age);  // the C client takes nanoseconds
  config.Replicas = spec.replicas;
  config.StorageType = js_FileStorage;
  s = js_CreateKeyValue(&kv, nats.jetstream(), &config);
  if (s != NATS_OK) {
    return absl::UnavailableError(NatsError(
        absl::StrCat("creating bucket ", spec.name, " with ", spec.replicas, " replica(s)"), s));
  }
  spdlog::info("cluster: created bucket {} ({} replica(s){})", spec.name, spec.replicas,
               spec.max_age > absl::ZeroDuration()
                   ? absl::StrCat(", entries kept ", absl::FormatDuration(spec.max_age))
                   : "");
  return KvBucket(kv);
}

natsStatus PutJson(kvStore* bucket, const std::string& key,
                   const google::protobuf::Message& message) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json);
  uint64_t revision = 0;
  return kvStore_Put(&revision, bucket, key.c_str(), json.data(), static_cast<int>(json.size()));
}

bool ParseJson(const std::string& value, google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  return google::protobuf::util::JsonStringToMessage(value, message, options).ok();
}

void WatchBucket(const NatsConnection& nats, const BucketSpec& spec, absl::Notification* stop,
                 const WatchHandlers& handlers) {
  std::string last_error = "not started";
  const auto state = [&](std::string error) {
    if (error == last_error) return;
    last_error = error;
    if (handlers.on_state) handlers.on_state(error);
  };
  while (!stop->HasBeenNotified()) {
    absl::StatusOr<KvBucket> bucket = OpenBucket(nats, spec);
    kvWatcher* raw_watcher = nullptr;
    if (!bucket.ok()) {
      state(std::string(bucket.status().message()));
    } else {
      kvWatchOptions options;
      kvWatchOptions_Init(&options);
      const natsStatus s = kvStore_WatchAll(&raw_watcher, bucket->get(), &options);
      if (s != NATS_OK) state(NatsError(absl::StrCat("watching bucket ", spec.name), s));
    }
    if (raw_watcher == nullptr) {
      if (handlers.on_tick) handlers.on_tick();
      stop->WaitForNotificationWithTimeout(kRetryWait);
      continue;
    }
    std::unique_ptr<kvWatcher, WatcherDeleter> watcher(raw_watcher);
    state("");
    bool replaying = true;  // until the watcher says the current values are all delivered
    while (!stop->HasBeenNotified()) {
      kvEntry* raw_entry = nullptr;
      const natsStatus s = kvWatcher_Next(&raw_entry, watcher.get(), kWatchPollMs);
      if (handlers.on_tick) handlers.on_tick();
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        state(NatsError(absl::StrCat("watching bucket ", spec.name), s));
        break;
      }
      if (raw_entry == nullptr) {
        replaying = false;
        continue;
      }
      std::unique_ptr<kvEntry, EntryDeleter> entry(raw_entry);
      BucketEntry change;
      change.key = kvEntry_Key(entry.get());
      change.put = kvEntry_Operation(entry.get()) == kvOp_Put;
      if (change.put) {
        change.value.assign(static_cast<const char*>(kvEntry_Value(entry.get())),
                            kvEntry_ValueLen(entry.get()));
      }
      change.written = absl::FromUnixNanos(kvEntry_Created(entry.get()));
      change.replayed = replaying;
      handlers.on_entry(change);
    }
  }
}

}  // namespace callmesh::sidecar::cluster
