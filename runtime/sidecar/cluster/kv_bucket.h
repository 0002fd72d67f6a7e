// The two things cluster mode does with a JetStream key-value bucket, written once: open it
// (bind, or create it when it does not exist yet) and watch every key of it for as long as the
// sidecar runs, across lost connections and leader changes.
//
//   absl::StatusOr<KvBucket> bucket = OpenBucket(nats, {.name = "callmesh-registry", ...});
//   WatchBucket(nats, spec, &stop, {.on_entry = ..., .on_tick = ..., .on_error = ...});
//
// Thread-safe as the NATS C client is; WatchBucket blocks its caller (a thread of its own).
#pragma once

#include <nats/nats.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "runtime/sidecar/cluster/nats_connection.h"

namespace callmesh::sidecar::cluster {

struct KvStoreDeleter {
  void operator()(kvStore* kv) const { kvStore_Destroy(kv); }
};
using KvBucket = std::unique_ptr<kvStore, KvStoreDeleter>;

struct BucketSpec {
  std::string name;
  std::string description;
  // Entries older than this are removed by JetStream; zero = kept until deleted.
  absl::Duration max_age = absl::ZeroDuration();
  int replicas = 1;
};

// Binds the bucket, creating it (history 1, file storage) if it does not exist. UNAVAILABLE
// naming the bucket and NATS's answer when NATS is not connected or refuses (e.g. too few servers
// for `replicas`).
absl::StatusOr<KvBucket> OpenBucket(const NatsConnection& nats, const BucketSpec& spec);

// Entries are protobuf messages as JSON (readable with any NATS tool). Puts `message` under `key`;
// the NATS error otherwise.
natsStatus PutJson(kvStore* bucket, const std::string& key,
                   const google::protobuf::Message& message);
// Parses an entry's JSON value into `message`, ignoring fields it does not know (entries written
// by newer sidecars). False if it does not parse.
bool ParseJson(const std::string& value, google::protobuf::Message* message);

// One change of a watched bucket.
struct BucketEntry {
  std::string key;
  // False for a delete or purge marker.
  bool put = true;
  std::string value;
  // When the server stored it.
  absl::Time written;
  // Part of the current values replayed when the watch (re)started, rather than a live update.
  bool replayed = false;
};

struct WatchHandlers {
  std::function<void(const BucketEntry&)> on_entry;
  // At least every 200 ms, whether or not anything changed (and while NATS is unreachable).
  std::function<void()> on_tick;
  // The watch works again ("" ) or failed (the reason); called on changes only.
  std::function<void(const std::string& error)> on_state;
};

// Watches every key of the bucket until `stop` is notified: opens the bucket and a watcher,
// replays the current values, then passes live updates; after any failure it waits 500 ms and
// starts over (replaying again, so handlers must be idempotent).
void WatchBucket(const NatsConnection& nats, const BucketSpec& spec, absl::Notification* stop,
                 const WatchHandlers& handlers);

}  // namespace callmesh::sidecar::cluster
