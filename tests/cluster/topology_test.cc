// The ground cluster tests stand on: hosts as network namespaces (NetnsTopology) and a 3-node NATS
// JetStream cluster across them (NatsCluster), with the faults later tests inject (isolating a
// host, SIGKILL of a stream leader) checked here on NATS itself. Needs root.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/support/nats_cluster.h"
#include "tests/support/netns_topology.h"
#include "tests/support/process.h"
#include "tests/support/wait_until.h"

namespace callmesh::testing {
namespace {

constexpr absl::Duration kReadyTimeout = absl::Seconds(60);
// How long a test waits for the cluster to notice a fault or a repair before it fails.
constexpr absl::Duration kConvergeTimeout = absl::Seconds(60);

// Polls `done` every 100 ms (a monitoring request each time) until it holds.
bool PollUntil(const std::function<bool()>& done, absl::Duration timeout) {
  return testing::WaitUntil(done, timeout, absl::Milliseconds(100));
}

std::vector<std::string> NamespaceNames() {
  std::vector<std::string> names;
  absl::StatusOr<std::string> listing = RunIp({"netns", "list"});
  if (!listing.ok()) return names;
  for (absl::string_view line : absl::StrSplit(*listing, '\n', absl::SkipEmpty())) {
    names.emplace_back(line.substr(0, line.find(' ')));
  }
  return names;
}

bool NamespaceExists(const std::string& name) {
  for (const std::string& existing : NamespaceNames()) {
    if (existing == name) return true;
  }
  return false;
}

// The names of the root namespace's interfaces ("2: eth0@if5: <...>" -> "eth0").
std::set<std::string> RootLinkNames() {
  std::set<std::string> names;
  absl::StatusOr<std::string> listing = RunIp({"-o", "link", "show"});
  if (!listing.ok()) return names;
  for (absl::string_view line : absl::StrSplit(*listing, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ": ");
    if (fields.size() >= 2) names.emplace(fields[1].substr(0, fields[1].find('@')));
  }
  return names;
}

// The one-letter state in /proc/<pid>/stat ('S' sleeping, 'T' stopped, ...); '?' if unreadable.
char ProcessState(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t end_of_name = text.rfind(')');
  return end_of_name == std::string::npos || end_of_name + 2 >= text.size() ? '?'
                                                                            : text[end_of_name + 2];
}

std::string Readlink(const std::string& path) {
  char target[4096];
  const ssize_t length = readlink(path.c_str(), target, sizeof(target) - 1);
  return length < 0 ? "" : std::string(target, length);
}

ino_t Inode(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(NetnsTopology, StartRunsTheProgramItselfInsideTheHostNamespace) {
  ASSERT_EQ(geteuid(), 0u) << "network namespaces need root";
  absl::StatusOr<NetnsTopology> topology = NetnsTopology::Create(1);
  ASSERT_TRUE(topology.ok()) << topology.status();
  absl::StatusOr<Process> sleeper = topology->Start(1, "/usr/bin/sleep", {"600"}, "sleeper");
  ASSERT_TRUE(sleeper.ok()) << sleeper.status();
  const pid_t pid = sleeper->pid();
  const std::string exe = absl::StrCat("/proc/", pid, "/exe");
  // `ip netns exec` execs the program in place: the pid we hold becomes sleep's own.
  ASSERT_TRUE(PollUntil([&] { return Readlink(exe) == "/usr/bin/sleep"; }, absl::Seconds(20)))
      << Readlink(exe);
  EXPECT_EQ(Inode(absl::StrCat("/proc/", pid, "/ns/net")),
            Inode("/run/netns/" + topology->Namespace(1)));
  EXPECT_NE(Inode(absl::StrCat("/proc/", pid, "/ns/net")), Inode("/proc/self/ns/net"));

  sleeper->Signal(SIGSTOP);
  EXPECT_TRUE(PollUntil([&] { return ProcessState(pid) == 'T'; }, absl::Seconds(20)));
  sleeper->Signal(SIGCONT);
  EXPECT_TRUE(PollUntil([&] { return ProcessState(pid) == 'S'; }, absl::Seconds(20)));
  sleeper->Signal(SIGKILL);
  absl::StatusOr<int> code = sleeper->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGKILL);
}

TEST(NetnsTopology, RejectsABadHostCountAndUnknownHosts) {
  EXPECT_EQ(NetnsTopology::Create(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NetnsTopology::Create(251).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<NetnsTopology> topology = NetnsTopology::Create(1);
  ASSERT_TRUE(topology.ok()) << topology.status();
  absl::StatusOr<Process> started = topology->Start(2, "/usr/bin/true", {}, "true");
  EXPECT_EQ(started.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(started.status().message(), "host 2 is not in this topology (hosts 1 to 1)");
  EXPECT_EQ(topology->Isolate(0).code(), absl::StatusCode::kInvalidArgument);
}

std::string namespace_of_failed_test;  // set inside EXPECT_FATAL_FAILURE, which takes no locals

TEST(NetnsTopology, DeletesEverythingItCreatedAlsoWhenTheTestFails) {
  std::vector<std::string> created;
  {
    absl::StatusOr<NetnsTopology> topology = NetnsTopology::Create(2);
    ASSERT_TRUE(topology.ok()) << topology.status();
    created = {topology->Namespace(1), topology->Namespace(2), topology->BridgeNamespace()};
    for (const std::string& name : created) EXPECT_TRUE(NamespaceExists(name)) << name;
  }
  for (const std::string& name : created) EXPECT_FALSE(NamespaceExists(name)) << name;

  EXPECT_FATAL_FAILURE(
      {
        absl::StatusOr<NetnsTopology> topology = NetnsTopology::Create(1);
        ASSERT_TRUE(topology.ok()) << topology.status();
        namespace_of_failed_test = topology->Namespace(1);
        ASSERT_TRUE(false) << "an assertion fails while the topology exists";
      },
      "an assertion fails while the topology exists");
  ASSERT_FALSE(namespace_of_failed_test.empty());
  EXPECT_FALSE(NamespaceExists(namespace_of_failed_test));
}

TEST(NetnsTopology, CreateDeletesLeftoversOfDeadRunsOnly) {
  // A pid that just ended (a reaped child) stands for a crashed earlier run.
  const pid_t dead = fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) _exit(0);
  ASSERT_EQ(waitpid(dead, nullptr, 0), dead);
  const std::string leftover = absl::StrCat("cmt", dead, "n0-h1");
  const std::string live = absl::StrCat("cmt", getpid(), "n999-h1");
  ASSERT_TRUE(RunIp({"netns", "add", leftover}).ok());
  ASSERT_TRUE(RunIp({"netns", "add", live}).ok());
  {
    absl::StatusOr<NetnsTopology> topology = NetnsTopology::Create(1);
    EXPECT_TRUE(topology.ok()) << topology.status();
  }
  EXPECT_FALSE(NamespaceExists(leftover));
  EXPECT_TRUE(NamespaceExists(live));
  (void)RunIp({"netns", "delete", leftover});
  EXPECT_TRUE(RunIp({"netns", "delete", live}).ok());
}

// A 3-host topology with a ready NATS cluster, torn down in reverse order (servers first).
class ThreeHosts : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "network namespaces need root";
    root_links_before_ = RootLinkNames();
    absl::StatusOr<NetnsTopology> topology = NetnsTopology::Create(3);
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_.emplace(*std::move(topology));
    absl::StatusOr<NatsCluster> nats = NatsCluster::Start(*topology_);
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_.emplace(*std::move(nats));
    const absl::Time start = absl::Now();
    const absl::Status ready = nats_->WaitReady(kReadyTimeout);
    ASSERT_TRUE(ready.ok()) << ready << "\n" << nats_->Log(1);
    std::cerr << "3-node NATS JetStream cluster ready after " << absl::Now() - start << "\n";
  }

  // kv_probe run inside host's namespace against `servers` (every node by default).
  CommandResult Probe(int host, const std::vector<std::string>& command,
                      const std::string& servers = "") {
    std::vector<std::string> args = {"--servers=" + (servers.empty() ? nats_->Servers() : servers)};
    args.insert(args.end(), command.begin(), command.end());
    absl::StatusOr<CommandResult> result = topology_->RunCommand(
        host, RunfilePath("tests/cluster/kv_probe"), args, {}, absl::Seconds(30));
    if (!result.ok()) return CommandResult{-1, "", result.status().ToString()};
    return *result;
  }

  // Routes of every host, "n1=2 n2=2 n3=2" (-1 where a node did not answer).
  std::string RouteCounts() {
    std::string counts;
    for (int host = 1; host <= 3; ++host) {
      absl::StatusOr<int> routes = nats_->RouteCount(host);
      absl::StrAppend(&counts, host > 1 ? " " : "", "n", host, "=", routes.ok() ? *routes : -1);
    }
    return counts;
  }

  std::set<std::string> root_links_before_;
  std::optional<NetnsTopology> topology_;
  std::optional<NatsCluster> nats_;  // declared after the topology: destroyed before it
};

TEST_F(ThreeHosts, HostsReachEachOtherAndTheRootNamespaceHasNoneOfIt) {
  EXPECT_EQ(RouteCounts(), "n1=2 n2=2 n3=2");
  for (int from = 1; from <= 3; ++from) {
    for (int to = 1; to <= 3; ++to) {
      absl::StatusOr<std::string> varz = nats_->Monitor(from, to, "varz");
      EXPECT_TRUE(varz.ok()) << from << " -> " << to << ": " << varz.status();
    }
  }
  absl::StatusOr<std::string> root_addresses = RunIp({"-o", "addr", "show"});
  ASSERT_TRUE(root_addresses.ok()) << root_addresses.status();
  EXPECT_EQ(root_addresses->find("10.213.0."), std::string::npos) << *root_addresses;
  for (const std::string& name : RootLinkNames()) {
    EXPECT_TRUE(root_links_before_.count(name)) << "new interface in the root namespace: " << name;
  }
  absl::StatusOr<std::string> root_routes = RunIp({"route", "show", "table", "all"});
  ASSERT_TRUE(root_routes.ok()) << root_routes.status();
  EXPECT_EQ(root_routes->find("10.213.0."), std::string::npos) << *root_routes;
  // From the root namespace a host's address is not the host: whatever the machine's own default
  // route leads to may answer (this machine's gateway answers every TCP connection), but not NATS.
  absl::StatusOr<CommandResult> from_root =
      RunCommand("/usr/bin/curl", {"-s", "--max-time", "2", "http://10.213.0.1:8222/varz"});
  ASSERT_TRUE(from_root.ok()) << from_root.status();
  EXPECT_EQ(from_root->out.find("\"server_name\""), std::string::npos) << from_root->out;
  absl::StatusOr<std::string> varz_inside = nats_->Monitor(2, 1, "varz");
  ASSERT_TRUE(varz_inside.ok()) << varz_inside.status();
  EXPECT_NE(varz_inside->find("\"server_name\": \"n1\""), std::string::npos) << *varz_inside;
}

TEST_F(ThreeHosts, IsolatedHostLosesEveryRouteAndHealBringsThemBack) {
  const absl::Time isolated_at = absl::Now();
  ASSERT_TRUE(topology_->Isolate(2).ok());
  EXPECT_TRUE(PollUntil([&] { return RouteCounts() == "n1=1 n2=0 n3=1"; }, kConvergeTimeout))
      << RouteCounts();
  std::cerr << "routes to the isolated host dropped after " << absl::Now() - isolated_at << "\n";
  EXPECT_FALSE(nats_->Monitor(1, 2, "varz").ok());
  EXPECT_FALSE(nats_->Monitor(2, 3, "varz").ok());
  // Inside the isolated host, its own loopback and address still work.
  absl::StatusOr<CommandResult> loopback = topology_->RunCommand(
      2, "/usr/bin/curl", {"-s", "-f", "--max-time", "2", "http://127.0.0.1:8222/varz"});
  ASSERT_TRUE(loopback.ok()) << loopback.status();
  EXPECT_EQ(loopback->exit_code, 0);
  EXPECT_TRUE(nats_->Monitor(2, 2, "varz").ok());

  const absl::Time healed_at = absl::Now();
  ASSERT_TRUE(topology_->Heal(2).ok());
  EXPECT_TRUE(PollUntil([&] { return RouteCounts() == "n1=2 n2=2 n3=2"; }, kConvergeTimeout))
      << RouteCounts();
  std::cerr << "routes back after " << absl::Now() - healed_at << "\n";
  EXPECT_TRUE(nats_->Monitor(1, 2, "varz").ok());
  const absl::Status ready = nats_->WaitReady(kReadyTimeout);
  EXPECT_TRUE(ready.ok()) << ready;
}

TEST_F(ThreeHosts, ReplicatedBucketSurvivesTheKillOfItsStreamLeader) {
  // Each operation is retried until it succeeds (the bucket's stream elects its first leader
  // right after it is created); repeating a create or put of the same value changes nothing.
  CommandResult created;
  ASSERT_TRUE(PollUntil(
      [&] {
        return (created = Probe(1, {"create", "B", "--replicas=3"})).exit_code == 0;
      },
      kConvergeTimeout))
      << created.err;
  CommandResult put;
  ASSERT_TRUE(PollUntil(
      [&] {
        return (put = Probe(2, {"put", "B", "k", "before"})).exit_code == 0;
      },
      kConvergeTimeout))
      << put.err;
  CommandResult got = Probe(3, {"get", "B", "k"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(got.out, "before\n");
  CommandResult missing = Probe(3, {"get", "B", "no-such-key"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err, "kv_probe: get B/no-such-key: Not Found\n");

  absl::StatusOr<int> leader = absl::UnavailableError("not asked yet");
  ASSERT_TRUE(
      PollUntil([&] { return (leader = nats_->StreamLeader("KV_B")).ok(); }, kConvergeTimeout))
      << leader.status();
  const int killed = *leader;
  const int survivor = killed == 1 ? 2 : 1;
  const absl::Time killed_at = absl::Now();
  nats_->Kill(killed);

  absl::StatusOr<int> new_leader = absl::UnavailableError("not asked yet");
  ASSERT_TRUE(
      PollUntil([&] { return (new_leader = nats_->StreamLeader("KV_B")).ok(); }, kConvergeTimeout))
      << new_leader.status();
  EXPECT_NE(*new_leader, killed);
  std::cerr << "new leader of KV_B (n" << *new_leader << ") after " << absl::Now() - killed_at
            << "\n";
  CommandResult after_kill;
  EXPECT_TRUE(PollUntil(
      [&] {
        return (after_kill = Probe(survivor, {"get", "B", "k"})).exit_code == 0;
      },
      kConvergeTimeout))
      << after_kill.err;
  EXPECT_EQ(after_kill.out, "before\n");
  CommandResult put_after;
  EXPECT_TRUE(PollUntil(
      [&] {
        return (put_after = Probe(survivor, {"put", "B", "k", "after"})).exit_code == 0;
      },
      kConvergeTimeout))
      << put_after.err;

  EXPECT_EQ(nats_->Restart(survivor).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(nats_->Restart(killed).ok());
  const absl::Status ready = nats_->WaitReady(kReadyTimeout);
  ASSERT_TRUE(ready.ok()) << ready << "\n" << nats_->Log(killed);
  // The restarted node serves the bucket again, with the write it missed while it was down.
  CommandResult on_restarted;
  EXPECT_TRUE(PollUntil(
      [&] {
        on_restarted = Probe(killed, {"get", "B", "k"}, nats_->ClientUrl(killed));
        return on_restarted.exit_code == 0 && on_restarted.out == "after\n";
      },
      kConvergeTimeout))
      << on_restarted.out << on_restarted.err;
}

TEST(KvProbe, BadUsageIsOneLineAndExitCode2) {
  absl::StatusOr<CommandResult> result = RunCommand(
      RunfilePath("tests/cluster/kv_probe"), {"--servers=nats://10.213.0.1:4222", "get", "B"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(result->err,
            "kv_probe: 'get' takes 2 argument(s); usage: kv_probe --servers=URL[,URL...] (create "
            "BUCKET [--replicas=N] | put BUCKET KEY VALUE | get BUCKET KEY)\n");
}

}  // namespace
}  // namespace callmesh::testing
