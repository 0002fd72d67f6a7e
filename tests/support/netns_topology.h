// Hosts for cluster tests: each "host" is a Linux network namespace with its own private address,
// all joined by a bridge that lives in a namespace of its own, so nothing is added to the
// machine's own network (no interface, address or route in the root namespace).
//
//   NetnsTopology topology = *NetnsTopology::Create(3);       // 10.213.0.1 .. 10.213.0.3
//   Process server = *topology.Start(1, "/usr/sbin/nats-server", {"-c", conf}, "nats-n1");
//   CommandResult r = *topology.RunCommand(2, "/usr/bin/curl", {"-s", "http://10.213.0.1:8222/"});
//   ASSERT_TRUE(topology.Isolate(2).ok());   // host 2 reaches no other host, none reaches it
//   ASSERT_TRUE(topology.Heal(2).ok());
//
// Needs root (it runs `ip netns`, `ip link`, `ip addr` from iproute2). Namespaces are named
// `cmt<pid>n<sequence>-h<host>` and `cmt<pid>n<sequence>-br`; Create deletes leftovers of earlier
// runs (same `cmt<pid>` scheme) whose process is no longer alive, after killing (SIGKILL) whatever
// still runs inside them, so a test killed before its destructor ran leaves nothing behind for
// long.
//
// Ownership: the destructor deletes every namespace the topology created (which removes their
// veths and the bridge). Processes started with Start are owned by the caller; declare the topology
// BEFORE them so they are killed first (a namespace whose name was deleted lives on until its last
// process exits). Move-only. Not thread-safe: use one topology from one thread.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/process.h"

namespace callmesh::testing {

class NetnsTopology {
 public:
  // Creates `hosts` host namespaces (1..250) with lo up and address 10.213.0.<host>/24 on their
  // `eth0`, a bridge namespace with `br0`, and one veth pair per host (host end `eth0`, bridge end
  // `h<host>` enslaved to br0). In each host namespace net.ipv4.tcp_retries2 is 3 (the root
  // namespace keeps its own), so a TCP connection to a host that stopped answering fails after
  // a few seconds instead of about 15 minutes. INVALID_ARGUMENT for a bad count; INTERNAL naming
  // the failed `ip` command otherwise (what was created so far is deleted again).
  static absl::StatusOr<NetnsTopology> Create(int hosts);

  NetnsTopology(NetnsTopology&& other) noexcept;
  NetnsTopology& operator=(NetnsTopology&& other) noexcept;
  NetnsTopology(const NetnsTopology&) = delete;
  NetnsTopology& operator=(const NetnsTopology&) = delete;
  ~NetnsTopology();

  int hosts() const { return hosts_; }
  // "10.213.0.<host>": the host's address, reachable only from the topology's namespaces.
  std::string Address(int host) const;
  // The name of the host's network namespace (as `ip netns list` shows it).
  std::string Namespace(int host) const;
  // The name of the namespace that holds the bridge.
  std::string BridgeNamespace() const;

  // Start, RunCommand, Isolate and Heal return INVALID_ARGUMENT for a host outside 1..hosts().

  // Starts `binary args...` inside the host's namespace through `ip netns exec`, which execs the
  // program itself: the returned Process's pid is the program's, so Signal(SIGKILL / SIGSTOP /
  // SIGCONT) reaches it. Output goes to a log named after `label` (see process.h).
  absl::StatusOr<Process> Start(int host, const std::string& binary,
                                const std::vector<std::string>& args, const std::string& label,
                                const ProcessOptions& options = {}) const;

  // Runs `binary args...` to completion inside the host's namespace (see testing::RunCommand).
  absl::StatusOr<CommandResult> RunCommand(int host, const std::string& binary,
                                           const std::vector<std::string>& args,
                                           const ProcessOptions& options = {},
                                           absl::Duration timeout = absl::Seconds(60)) const;

  // Takes the bridge end of the host's veth down: the host can reach no other host and no other
  // host can reach it; its loopback and its own address keep working inside it. INTERNAL if `ip`
  // fails.
  absl::Status Isolate(int host);
  // Brings the bridge end of the host's veth back up (undoes Isolate).
  absl::Status Heal(int host);

 private:
  NetnsTopology(std::string prefix, int hosts) : prefix_(std::move(prefix)), hosts_(hosts) {}
  // INVALID_ARGUMENT unless 1 <= host <= hosts().
  absl::Status CheckHost(int host) const;
  absl::Status AddNamespace(const std::string& name);
  absl::Status AddHost(int host);
  void DeleteNamespaces();

  std::string prefix_;
  int hosts_ = 0;
  // Every namespace this object created, in creation order; deleted by the destructor.
  std::vector<std::string> created_;
};

// Runs `ip args...` in the test's own (root) namespace; INTERNAL with the command and its stderr
// if it exits non-zero. Used by NetnsTopology and by tests that look at the root namespace.
absl::StatusOr<std::string> RunIp(const std::vector<std::string>& args);

}  // namespace callmesh::testing
