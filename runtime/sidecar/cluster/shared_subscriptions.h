// Publish/subscribe across hosts. In cluster mode a subscription is cluster-wide: it is kept in a
// JetStream key-value bucket (ClusterConfig.subscriptions_bucket; key "<topic>/<service>", value
// a SharedSubscription as JSON), and every sidecar mirrors every entry into a subscription of its
// own TopicLog. An event stays with the sidecar that took its publish — durable there, acknowledged
// after its fsync, exactly as on one host — and that sidecar's EventFanOut delivers it to the
// subscribing service wherever its instances run (through the registry, sidecar to sidecar). So
// each event reaches each subscribing service once (at least once, as on one host), whichever
// sidecar took the publish and whichever hosts the service runs on.
//
// Why not a JetStream stream of events with one durable consumer per subscription: JetStream on
// nats-server 2.9 does not fsync before its acknowledgement, which would weaken the publish
// contract (acknowledged = on disk), and delivery, retries, ORDERED mode, replay and dead letters
// would need a second implementation. The cost of this design is the one of async calls: a
// host's undelivered events wait for that host (its disk holds them).
//
//   SharedSubscriptions shared({.cluster = ..., .nats = ..., .topics = ..., .fan_out = ...});
//   shared.Start();
//   shared.Share(info, start);             // a subscription made through this sidecar
//   shared.Withdraw("orders", "billing");  // removed through this sidecar: everywhere
//
// A subscription learnt from the bucket starts at its `start_time` (sequences are per sidecar), or
// from every retained event if it was made with ALL. Shares and withdrawals made while NATS is
// unreachable are kept in memory and written when it is back (a restart before that loses them;
// the subscriber re-registers). Thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "callmesh/v1/cluster.pb.h"
#include "callmesh/v1/config.pb.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/cluster/kv_bucket.h"
#include "runtime/sidecar/cluster/nats_connection.h"
#include "runtime/sidecar/pubsub/event_fan_out.h"
#include "runtime/sidecar/pubsub/topic_log.h"

namespace callmesh::sidecar::cluster {

class SharedSubscriptions {
 public:
  struct Options {
    v1::ClusterConfig cluster;
    // Not owned; must outlive this object.
    NatsConnection* nats = nullptr;
    pubsub::TopicLog* topics = nullptr;
    pubsub::EventFanOut* fan_out = nullptr;
    Clock* clock = Clock::Real();
  };

  explicit SharedSubscriptions(Options options);
  // Stop().
  ~SharedSubscriptions();

  // Starts the thread that watches the bucket and writes what Share and Withdraw queued.
  void Start();
  void Stop();

  // A subscription made through this sidecar (RegisterService, the config): shared with every
  // sidecar. `subscription` as requested (its start).
  void Share(const std::string& service, const v1::Subscription& subscription);
  // A subscription removed through this sidecar: removed everywhere.
  void Withdraw(const std::string& topic, const std::string& service);

  // "" when the bucket is watched and nothing waits to be written; else what is wrong.
  std::string problem() const;

 private:
  void Loop();
  // Writes the queued shares and withdrawals; false if NATS refused (they stay queued).
  bool Flush(kvStore* bucket);
  // Mirrors one entry of the bucket into the TopicLog and the fan-out.
  void Apply(const BucketEntry& entry);

  const Options options_;
  const BucketSpec bucket_;
  absl::Notification stop_;
  std::thread watch_thread_;
  std::thread write_thread_;
  mutable absl::Mutex mu_;
  // Key -> the entry to put, or nullopt for a delete; in the order they were asked for per key.
  std::map<std::string, std::optional<v1::SharedSubscription>> queued_ ABSL_GUARDED_BY(mu_);
  std::string watch_error_ ABSL_GUARDED_BY(mu_) = "not started";
  std::string write_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::sidecar::cluster
