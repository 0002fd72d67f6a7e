// A NATS JetStream cluster for cluster tests: one `nats-server` (Debian's 2.9.10) per host of a
// NetnsTopology, each listening on its host's address only (clients 4222, routes 6222, monitoring
// 8222), routed to every other host, with JetStream storing into a fresh directory per node.
//
//   NetnsTopology topology = *NetnsTopology::Create(3);
//   NatsCluster nats = *NatsCluster::Start(topology);
//   ASSERT_TRUE(nats.WaitReady(absl::Seconds(30)).ok());
//   ... kv_probe --servers=nats.Servers() create B --replicas=3 ...
//   int leader = *nats.StreamLeader("KV_B");
//   nats.Kill(leader);                      // SIGKILL
//   ASSERT_TRUE(nats.Restart(leader).ok()); // same store directory, same ports
//
// Node `h` is named `n<h>` (its server_name) and its config file is `<temp dir>/nats.conf`. Route
// pings go out every second, so a node cut off by NetnsTopology::Isolate drops its routes within a
// few seconds instead of NATS's default minutes.
//
// Ownership: the cluster owns its servers (killed when it is destroyed) and keeps a reference to
// `topology`, which must outlive it and must not be moved while it exists. Not thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/netns_topology.h"
#include "tests/support/process.h"

namespace callmesh::testing {

class NatsCluster {
 public:
  // Writes one config per host and starts every node (it does not wait for them: WaitReady).
  // INTERNAL if a config cannot be written or a server cannot be started.
  static absl::StatusOr<NatsCluster> Start(const NetnsTopology& topology);

  NatsCluster(NatsCluster&&) = default;
  NatsCluster& operator=(NatsCluster&&) = default;

  // Waits until every running node answers its monitoring endpoint, has a route to every other
  // running node and names the same elected JetStream meta leader. DEADLINE_EXCEEDED after
  // `timeout`, saying what was still missing.
  absl::Status WaitReady(absl::Duration timeout);

  // Kills host's node with SIGKILL and reaps it (its store directory stays); nothing for a host
  // outside the topology.
  void Kill(int host);
  // Starts host's node again with the same config, store directory and ports. FAILED_PRECONDITION
  // if it is still running, INVALID_ARGUMENT for a host outside the topology.
  absl::Status Restart(int host);
  bool running(int host);

  // "nats://10.213.0.1:4222,nats://10.213.0.2:4222,...": every node's client URL.
  std::string Servers() const;
  // Host's client URL, "nats://10.213.0.<host>:4222".
  std::string ClientUrl(int host) const;

  // The body of GET http://<host address>:8222/<path> asked from inside `from`'s namespace
  // (curl, 2 s limit). UNAVAILABLE with curl's exit code if it got no answer.
  absl::StatusOr<std::string> Monitor(int from, int host, const std::string& path) const;
  // num_routes of host's /routez, asked from inside host's own namespace.
  absl::StatusOr<int> RouteCount(int host) const;
  // The host whose node leads JetStream stream `stream` (a key-value bucket B is stream "KV_B"),
  // from /jsz?accounts=true&streams=true of every running node. UNAVAILABLE unless every running
  // node that holds the stream names the same leader and that leader is a running node (during an
  // election they disagree or name none; poll).
  absl::StatusOr<int> StreamLeader(const std::string& stream);
  // The node's log (stdout and stderr so far), for failure messages.
  std::string Log(int host) const;

 private:
  explicit NatsCluster(const NetnsTopology* topology) : topology_(topology) {}
  absl::Status StartNode(int host);
  // The meta leader's server_name as host's /jsz reports it ("" while there is none).
  absl::StatusOr<std::string> MetaLeader(int host) const;

  const NetnsTopology* topology_;
  std::vector<std::string> config_paths_;        // index host - 1
  std::vector<std::optional<Process>> servers_;  // index host - 1; empty when not started
};

}  // namespace callmesh::testing
