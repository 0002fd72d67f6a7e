// A callmesh cluster for tests: hosts as network namespaces (NetnsTopology), a NATS JetStream
// cluster across them (NatsCluster), and on each host a callmeshd in cluster mode plus whatever
// apps a test starts there, all real processes.
//
//   std::unique_ptr<ClusterHosts> cluster = *ClusterHosts::Create(3);
//   ASSERT_TRUE(cluster->StartNats().ok());
//   for (int h = 1; h <= 3; ++h) ASSERT_TRUE(cluster->StartSidecar(h).ok());
//   ASSERT_TRUE(cluster->StartGreeter(3).ok());
//   CommandResult r = cluster->Cli(1, {"invoke", "greeter", "SayHello", "-d", "{\"name\":\"x\"}"});
//
// Host h's sidecar: sidecar id "h<h>", mesh name "app-h<h>", Sidecar API on 127.0.0.1:7000 inside
// the host's namespace (every namespace has its own ports), peer listener and advertised address
// 10.213.0.<h>:7100, registry bucket "callmesh-registry" at 3 replicas, heartbeat 1 s, instance
// TTL 3 s, a data directory of its own that restarts keep. Apps listen on loopback inside their
// host and register with its sidecar.
//
// Ownership: the object owns every process and namespace it starts and stops them when it is
// destroyed (apps, then sidecars, then NATS, then the namespaces), also after a failed assertion.
// Not movable (NatsCluster keeps a pointer to the topology). Not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/nats_cluster.h"
#include "tests/support/netns_topology.h"
#include "tests/support/process.h"

namespace callmesh::testing {

// Heartbeat and TTL of the shared registry in ClusterHosts' sidecars.
inline constexpr absl::Duration kClusterHeartbeat = absl::Seconds(1);
inline constexpr absl::Duration kClusterInstanceTtl = absl::Seconds(3);

// "exit N", stdout and stderr of a command, for failure messages.
std::string Describe(const CommandResult& result);

class ClusterHosts {
 public:
  // Creates `hosts` namespaces; starts nothing. INTERNAL (from NetnsTopology) if they cannot be
  // made; needs root.
  static absl::StatusOr<std::unique_ptr<ClusterHosts>> Create(int hosts);
  ClusterHosts(const ClusterHosts&) = delete;
  ClusterHosts& operator=(const ClusterHosts&) = delete;
  ~ClusterHosts();

  NetnsTopology& topology() { return *topology_; }
  // Valid after StartNats.
  NatsCluster& nats() { return *nats_; }

  // Starts one nats-server per host and waits up to a minute until they form a cluster.
  absl::Status StartNats();

  // Writes host's config (the cluster block above, `extra_yaml` appended: top-level keys such as
  // `default_retry:` or a `security:` block; without a `security:` block the sidecar runs with
  // `insecure_development: true`) and starts its callmeshd; returns once it serves. `nats_servers`
  // replaces the NATS URLs (default: every node of the cluster, started or not).
  absl::Status StartSidecar(int host, const std::string& extra_yaml = "",
                            const std::vector<std::string>& nats_servers = {});
  // SIGKILL (and reap) host's sidecar, like a crash.
  void KillSidecar(int host);
  // Starts host's sidecar again with the same config and data directory.
  absl::Status RestartSidecar(int host);
  // Host's running sidecar process (for SIGSTOP / SIGCONT).
  Process& Sidecar(int host) { return sidecars_.at(host); }

  // "127.0.0.1:7000": the Sidecar API inside each host's namespace.
  static std::string SidecarAddress();
  // "10.213.0.<host>:7100": the host's peer listener (and advertised address).
  std::string PeerAddress(int host) const;
  // The directory this object writes configs, ready files and test files to.
  const std::string& dir() const { return dir_; }

  // Starts `binary args...` on host (in its namespace) as an app the object owns, with `env`
  // ("NAME=value") added to its environment. With a `ready_file`, waits up to 30 s until the app
  // writes it (FAILED_PRECONDITION with its output if it exits first) and returns its first line;
  // else returns "" at once.
  absl::StatusOr<std::string> StartApp(int host, const std::string& binary,
                                       std::vector<std::string> args, const std::string& label,
                                       const std::string& ready_file,
                                       std::vector<std::string> env = {});
  // greeter_server registered as "greeter" with host's sidecar; its log is AppLog(label).
  absl::Status StartGreeter(int host, const std::string& label, std::vector<std::string> env = {});
  // callback_recorder serving the mesh name `name` on host, appending to `out` (see
  // callback_recorder.cc); its log is AppLog(label).
  absl::Status StartRecorder(int host, const std::string& name, const std::string& out);
  // SIGTERM to the app started as `label`; returns its exit code and output once it exited
  // (SIGKILL after 20 s). NOT_FOUND for an unknown label.
  absl::StatusOr<CommandResult> StopApp(const std::string& label);
  // What the app started as `label` wrote so far ("" for an unknown label).
  std::string AppLog(const std::string& label) const;

  // Runs the CLI inside host's namespace against host's sidecar: `callmesh --sidecar ADDR
  // --protoset <the greeter's> args...` (the CLI's server reflection dials an instance's own
  // address, which for an instance on another host is that host's loopback).
  CommandResult Cli(int host, const std::vector<std::string>& args,
                    absl::Duration timeout = absl::Seconds(60)) const;
  // Environment ("NAME=value") of every later Cli and CliAt run on host, e.g. the
  // CALLMESH_TLS_* credentials of an app when the sidecar serves TLS.
  void SetCliEnvironment(int host, std::vector<std::string> env) {
    cli_env_[host] = std::move(env);
  }
  // Like Cli, against any address.
  CommandResult CliAt(int host, const std::string& address, const std::vector<std::string>& args,
                      absl::Duration timeout = absl::Seconds(60)) const;
  // Runs tests/cluster/call_driver inside host's namespace against host's sidecar.
  CommandResult Driver(int host, const std::vector<std::string>& args) const;

  // The healthy instances of `service` that host `from` sees, as "<host> <via>" ("h1 -" for one
  // of its own), from `callmesh -o json services`; empty if the CLI fails.
  std::multiset<std::string> InstancesSeen(int from, const std::string& service) const;

  // Every sidecar's log (the last `tail_bytes` of each), for failure messages.
  std::string SidecarLogs(size_t tail_bytes = 4000) const;

 private:
  ClusterHosts() = default;
  absl::Status LaunchSidecar(int host);

  // Declared in teardown order reversed: apps die first, the namespaces last.
  std::optional<NetnsTopology> topology_;
  std::optional<NatsCluster> nats_;
  std::string dir_;
  std::map<int, Process> sidecars_;
  std::map<std::string, Process> apps_;
  std::map<int, std::vector<std::string>> cli_env_;
};

}  // namespace callmesh::testing
