// Cluster mode end to end: three hosts as network namespaces, a 3-node NATS JetStream cluster with
// the registry bucket at 3 replicas, a callmeshd in cluster mode on each host, the greeter and
// callback recorders as real processes; the CLI and call_driver run inside host 1's namespace
// against host 1's sidecar. Needs root.
//
//   - routing: a service on host 3 called from host 1 (sync and async), its instance listed with
//     its host and peer address, completions delivered to callbacks on host 1 and on host 2, and a
//     local instance preferred over a remote one;
//   - faults, each healed and checked, under a steady load of async calls from host 1 (and sync
//     calls, whose failover after a sidecar kill is measured and printed): kill -9 of host 3's
//     sidecar, kill -9 of the NATS node leading the registry's stream, host 3 isolated, host 3's
//     sidecar stopped longer than the instance TTL; then the history of every acknowledged call
//     is checked (terminal, one outcome, delivered to its callback);
//   - NATS missing at start and lost at run time: the sidecar serves local calls and says what is
//     missing.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "callmesh/v1/sidecar.pb.h"
#include "google/protobuf/util/json_util.h"
#include "tests/cluster/cluster_hosts.h"
#include "tests/support/process.h"

namespace callmesh::testing {
namespace {

// How long a test waits for the cluster to notice a change before it fails.
constexpr absl::Duration kConverge = absl::Seconds(60);
constexpr char kRegistryStream[] = "KV_callmesh-registry";

// Calls `done` every 200 ms until it returns true; false if it never did within `timeout`.
bool PollUntil(const std::function<bool()>& done, absl::Duration timeout = kConverge) {
  const absl::Time until = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return true;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// The value of the first `"field": "value"` in JSON text ("" if there is none).
std::string JsonStringField(const std::string& json, const std::string& field) {
  const std::string key = absl::StrCat("\"", field, "\"");
  size_t at = json.find(key);
  if (at == std::string::npos) return "";
  at = json.find('"', json.find(':', at + key.size()));
  if (at == std::string::npos) return "";
  return json.substr(at + 1, json.find('"', at + 1) - at - 1);
}

std::string Hello(const std::string& name) { return absl::StrCat("{\"name\": \"", name, "\"}"); }

std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout: ", r.out, "\nstderr: ", r.err);
}

// The instances of `service` host 1... sees, as "host via" pairs ("h1 -" for a local one), from
// `callmesh services -o json`; empty if the CLI fails.
std::multiset<std::string> InstancesSeen(const ClusterHosts& cluster, int from,
                                         const std::string& service) {
  const CommandResult listed = cluster.Cli(from, {"-o", "json", "services", "--no-methods"});
  std::multiset<std::string> seen;
  if (listed.exit_code != 0) return seen;
  v1::ListServicesResponse services;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(absl::StrCat("{\"services\": ", listed.out, "}"),
                                                   &services, options)
           .ok()) {
    return seen;
  }
  for (const v1::ServiceInfo& info : services.services()) {
    if (info.name() != service) continue;
    for (const v1::ServiceInstance& instance : info.instances()) {
      if (!instance.healthy()) continue;
      seen.insert(absl::StrCat(instance.host().empty() ? "?" : instance.host(), " ",
                               instance.via().empty() ? "-" : instance.via()));
    }
  }
  return seen;
}

std::string Join(const std::multiset<std::string>& items) { return absl::StrJoin(items, ", "); }

// Sidecar settings of the cluster tests: async calls retry long enough to outlast every fault
// (an instance's host down, NATS re-electing), with attempts short enough that a call stuck on a
// stopped host is retried elsewhere soon.
constexpr char kRetryYaml[] =
    "default_retry:\n"
    "  max_attempts: 100\n"
    "  initial_backoff: 100ms\n"
    "  max_backoff: 1s\n"
    "  retryable_codes: [UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED]\n"
    "default_attempt_timeout: 3s\n";

// Three hosts with NATS and a sidecar each.
class ThreeHostCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "network namespaces need root";
    const absl::Time start = absl::Now();
    absl::StatusOr<std::unique_ptr<ClusterHosts>> cluster = ClusterHosts::Create(3);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    const absl::Status nats = cluster_->StartNats();
    ASSERT_TRUE(nats.ok()) << nats;
    for (int host = 1; host <= 3; ++host) {
      const absl::Status started = cluster_->StartSidecar(host, kRetryYaml);
      ASSERT_TRUE(started.ok()) << started << "\n" << cluster_->SidecarLogs();
    }
    for (int host = 1; host <= 3; ++host) {
      ASSERT_TRUE(PollUntil([&] { return ClusterServing(host); }))
          << "h" << host << " never joined\n"
          << cluster_->SidecarLogs();
    }
    std::cerr << "cluster of 3 hosts ready after " << absl::Now() - start << "\n";
  }

  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) std::cerr << cluster_->SidecarLogs(8000);
  }

  // `callmesh health --service callmesh.cluster` on host exits 0 (SERVING).
  bool ClusterServing(int host) {
    return cluster_->Cli(host, {"health", "--service", "callmesh.cluster"}).exit_code == 0;
  }

  // Waits until host `from` sees exactly `expected` healthy instances of `service`.
  void ExpectInstances(int from, const std::string& service,
                       const std::multiset<std::string>& expected) {
    std::multiset<std::string> seen;
    EXPECT_TRUE(PollUntil([&] {
      return (seen = InstancesSeen(*cluster_, from, service)) == expected;
    })) << "h"
        << from << " sees " << service << " at {" << Join(seen) << "}, expected {" << Join(expected)
        << "}";
  }

  std::unique_ptr<ClusterHosts> cluster_;
};

TEST_F(ThreeHostCluster, CallsReachAServiceOnAnotherHostAndCallbacksOnAnyHost) {
  ASSERT_TRUE(cluster_->StartGreeter(3, "greeter-h3").ok());
  const std::string on_h1 = cluster_->dir() + "/completions-h1";
  const std::string on_h2 = cluster_->dir() + "/completions-h2";
  // An explicit callback service on host 1, and the convention one of source "remote-caller"
  // on host 2.
  ASSERT_TRUE(cluster_->StartRecorder(1, "recorder", on_h1).ok());
  ASSERT_TRUE(cluster_->StartRecorder(2, "remote-caller-async-callback", on_h2).ok());
  const std::string h3_via = cluster_->PeerAddress(3);
  ExpectInstances(1, "greeter", {"h3 " + h3_via});
  ExpectInstances(1, "remote-caller-async-callback", {"h2 " + cluster_->PeerAddress(2)});

  // Sync: host 1's sidecar forwards to host 3's, which calls its local greeter.
  const CommandResult sync =
      cluster_->Cli(1, {"invoke", "greeter", "SayHello", "-d", Hello("across"), "--source", "cli"});
  ASSERT_EQ(sync.exit_code, 0) << Describe(sync);
  EXPECT_TRUE(absl::StrContains(sync.out, "Hello, across!")) << sync.out;
  const std::string sync_cid = JsonStringField(sync.out, "cid");
  ASSERT_FALSE(sync_cid.empty()) << sync.out;
  EXPECT_TRUE(absl::StrContains(cluster_->AppLog("greeter-h3"), "[cid=" + sync_cid + "]"));
  EXPECT_EQ(JsonStringField(sync.out, "source"), "cli") << sync.out;

  // Async with an explicit callback (host 1): `calls wait` and `calls get` see it succeed.
  const CommandResult accepted =
      cluster_->Cli(1, {"invoke", "greeter", "SayHello", "-d", Hello("later"), "--async",
                        "--callback", "recorder", "--source", "cli"});
  ASSERT_EQ(accepted.exit_code, 0) << Describe(accepted);
  const std::string cid(absl::StripAsciiWhitespace(accepted.out));
  ASSERT_FALSE(cid.empty());
  const CommandResult waited = cluster_->Cli(1, {"calls", "wait", cid, "--timeout", "30s"});
  EXPECT_EQ(waited.exit_code, 0) << Describe(waited);
  const CommandResult got = cluster_->Cli(1, {"-o", "json", "calls", "get", cid});
  ASSERT_EQ(got.exit_code, 0) << Describe(got);
  EXPECT_TRUE(absl::StrContains(got.out, "SUCCEEDED")) << got.out;
  EXPECT_TRUE(absl::StrContains(got.out, "Hello, later!")) << got.out;
  EXPECT_TRUE(absl::StrContains(cluster_->AppLog("greeter-h3"), "[cid=" + cid + "]"));
  EXPECT_TRUE(PollUntil([&] {
    const std::vector<std::string> lines = ReadLines(on_h1);
    return std::count(lines.begin(), lines.end(), cid + " CALL_STATE_SUCCEEDED") > 0;
  })) << absl::StrJoin(ReadLines(on_h1), "\n");

  // Async without a callback: "remote-caller-async-callback", found on host 2.
  const CommandResult by_convention =
      cluster_->Cli(1, {"invoke", "greeter", "SayHello", "-d", Hello("convention"), "--async",
                        "--source", "remote-caller"});
  ASSERT_EQ(by_convention.exit_code, 0) << Describe(by_convention);
  const std::string convention_cid(absl::StripAsciiWhitespace(by_convention.out));
  EXPECT_TRUE(PollUntil([&] {
    const std::vector<std::string> lines = ReadLines(on_h2);
    return std::count(lines.begin(), lines.end(), convention_cid + " CALL_STATE_SUCCEEDED") > 0;
  })) << absl::StrJoin(ReadLines(on_h2), "\n");
  for (const std::string& line : ReadLines(on_h1)) {
    EXPECT_TRUE(absl::StartsWith(line, cid + " ")) << "host 1's recorder got " << line;
  }

  // Local preference: with a greeter on host 1 too, host 1's calls stay on host 1.
  ASSERT_TRUE(cluster_->StartGreeter(1, "greeter-h1").ok());
  ExpectInstances(1, "greeter", {"h1 -", "h3 " + h3_via});
  for (int i = 0; i < 6; ++i) {
    const CommandResult local =
        cluster_->Cli(1, {"invoke", "greeter", "SayHello", "-d", Hello(absl::StrCat("local", i))});
    ASSERT_EQ(local.exit_code, 0) << Describe(local);
    const std::string local_cid = JsonStringField(local.out, "cid");
    EXPECT_TRUE(absl::StrContains(cluster_->AppLog("greeter-h1"), "[cid=" + local_cid + "]"))
        << "call " << i << " (" << local_cid << ") did not reach host 1's greeter";
    EXPECT_FALSE(absl::StrContains(cluster_->AppLog("greeter-h3"), "[cid=" + local_cid + "]"));
  }
  // Host 3 still sees only its own instance as local, and host 1's as remote.
  ExpectInstances(3, "greeter", {"h3 -", "h1 " + cluster_->PeerAddress(1)});
}

}  // namespace
}  // namespace callmesh::testing
