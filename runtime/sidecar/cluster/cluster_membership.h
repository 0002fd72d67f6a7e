// Cluster mode's shared registry. Every sidecar keeps one entry in a JetStream key-value bucket
// (ClusterConfig.registry_bucket; key = its sidecar id, value = a SidecarAdvertisement as JSON):
//
//   - the heartbeat thread re-puts this sidecar's entry every heartbeat_interval with its
//     healthy local instances (local health probing stays local: the registry's own probes
//     decide what is healthy; instances learnt from other sidecars are never re-advertised);
//   - the watch thread watches the whole bucket and keeps the Registry's remote instances current
//     (Registry::SetRemote / RemoveRemote); a sidecar whose entry is not refreshed for
//     instance_ttl while the bucket carries this sidecar's own heartbeats is dropped
//     (MemberTable), so a killed or cut-off sidecar's instances stop being called within about a
//     TTL and a heartbeat; one that stops cleanly deletes its entry and is dropped at once. While
//     the bucket itself does not work (its stream electing a leader, NATS unreachable) nobody is
//     dropped: calls go on to the instances last known, skipping those whose sidecar cannot be
//     connected to.
//
// The bucket is created on first use (history 1, max age = instance_ttl, `replicas` replicas) or
// bound if it exists. NATS being unreachable is not fatal: both threads retry, local calls go on,
// and state() says what is missing (health service "callmesh.cluster" is NOT_SERVING meanwhile).
//
//   ClusterMembership membership({.cluster = config.cluster(), .registry = &registry,
//                                 .nats = nats.get()});
//   membership.Start();
//   ... membership.state() ...   // "sidecars: host-2, host-3; ..."
//   membership.Stop(/*leave=*/true);
//
// Thread-safe.
#pragma once

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "callmesh/v1/config.pb.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/cluster/kv_bucket.h"
#include "runtime/sidecar/cluster/nats_connection.h"
#include "runtime/sidecar/registry/registry.h"

namespace callmesh::sidecar::cluster {

class ClusterMembership {
 public:
  struct Options {
    // Complete and valid (ApplyClusterDefaults, FindClusterViolation).
    v1::ClusterConfig cluster;
    // Written into the entry (SidecarAdvertisement.version).
    std::string version;
    // Not owned; must outlive the membership.
    Registry* registry = nullptr;
    NatsConnection* nats = nullptr;
    // Time of the TTL decisions (not owned).
    Clock* clock = Clock::Real();
  };

  explicit ClusterMembership(Options options);
  // Starts the heartbeat and watch threads (once; after the registry's first health probes, so
  // that the first entry lists only instances known to be healthy).
  void Start();
  // Stop(/*leave=*/false).
  ~ClusterMembership();

  ClusterMembership(const ClusterMembership&) = delete;
  ClusterMembership& operator=(const ClusterMembership&) = delete;

  // Stops both threads (idempotent). With `leave`, first deletes this sidecar's entry (when NATS
  // is reachable) so the other sidecars stop routing here at once instead of after a TTL.
  void Stop(bool leave);

  // True once this sidecar's entry was last put successfully and the watch is running.
  bool healthy() const;
  // One line for people: the NATS connection, the other sidecars known, the last error if any.
  std::string state() const;

 private:
  void HeartbeatLoop();
  void WatchLoop();
  void NoteError(const char* who, std::string error);
  void ClearError(const char* who);

  const Options options_;
  const BucketSpec bucket_;
  absl::Notification stop_;
  std::thread heartbeat_thread_;
  std::thread watch_thread_;

  mutable absl::Mutex mu_;
  bool put_ok_ ABSL_GUARDED_BY(mu_) = false;
  bool watching_ ABSL_GUARDED_BY(mu_) = false;
  // Last failure of each thread ("" = none), by thread name.
  std::string heartbeat_error_ ABSL_GUARDED_BY(mu_);
  std::string watch_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::sidecar::cluster
