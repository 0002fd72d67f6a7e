#include "tests/cluster/cluster_hosts.h"

#include <signal.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "callmesh/v1/sidecar.pb.h"
#include "google/protobuf/util/json_util.h"

namespace callmesh::testing {
namespace {

constexpr char kSidecarAddress[] = "127.0.0.1:7000";
constexpr int kPeerPort = 7100;
constexpr absl::Duration kStartTimeout = absl::Seconds(30);
// Long-running processes write stdout and stderr to one log.
ProcessOptions OneLog() { return {.separate_stderr = false}; }

std::string ConfigPath(const std::string& dir, int host) {
  return absl::StrCat(dir, "/callmeshd-h", host, ".yaml");
}
std::string ReadyPath(const std::string& dir, int host) {
  return absl::StrCat(dir, "/callmeshd-h", host, ".ready");
}
std::string DataDir(const std::string& dir, int host) { return absl::StrCat(dir, "/data-h", host); }

}  // namespace

std::string Describe(const CommandResult& result) {
  return absl::StrCat("exit ", result.exit_code, "\nstdout: ", result.out,
                      "\nstderr: ", result.err);
}

absl::StatusOr<std::unique_ptr<ClusterHosts>> ClusterHosts::Create(int hosts) {
  absl::StatusOr<NetnsTopology> topology = NetnsTopology::Create(hosts);
  if (!topology.ok()) return topology.status();
  std::unique_ptr<ClusterHosts> cluster(new ClusterHosts());
  cluster->topology_.emplace(*std::move(topology));
  cluster->dir_ = NewTempDir("cluster");
  return cluster;
}

ClusterHosts::~ClusterHosts() {
  // Apps first (they deregister from live sidecars), then sidecars (SIGKILL: a test that ends
  // mid-fault must not wait for drains), then NATS and the namespaces (members' destructors).
  for (auto& [label, app] : apps_) {
    if (app.running()) {
      app.Signal(SIGCONT);
      app.Signal(SIGTERM);
      if (!app.Wait(absl::Seconds(10)).ok()) app.Signal(SIGKILL);
    }
  }
  apps_.clear();
  for (auto& [host, sidecar] : sidecars_) {
    sidecar.Signal(SIGCONT);
    sidecar.Signal(SIGKILL);
  }
  sidecars_.clear();
  nats_.reset();
}

absl::Status ClusterHosts::StartNats() {
  absl::StatusOr<NatsCluster> nats = NatsCluster::Start(*topology_);
  if (!nats.ok()) return nats.status();
  nats_.emplace(*std::move(nats));
  absl::Status ready = nats_->WaitReady(absl::Seconds(60));
  if (!ready.ok()) {
    return absl::Status(ready.code(), absl::StrCat(ready.message(), "\n", nats_->Log(1)));
  }
  return absl::OkStatus();
}

std::string ClusterHosts::SidecarAddress() { return kSidecarAddress; }

std::string ClusterHosts::PeerAddress(int host) const {
  return absl::StrCat(topology_->Address(host), ":", kPeerPort);
}

absl::Status ClusterHosts::StartSidecar(int host, const std::string& extra_yaml,
                                        const std::vector<std::string>& nats_servers) {
  std::vector<std::string> servers = nats_servers;
  if (servers.empty()) {
    for (int h = 1; h <= topology_->hosts(); ++h) {
      servers.push_back(absl::StrCat("nats://", topology_->Address(h), ":4222"));
    }
  }
  std::string yaml = absl::StrCat("name: app-h", host,
                                  "\n"
                                  "cluster:\n"
                                  "  nats_servers: [",
                                  absl::StrJoin(servers, ", "),
                                  "]\n"
                                  "  sidecar_id: h",
                                  host,
                                  "\n"
                                  "  advertise_address: ",
                                  PeerAddress(host),
                                  "\n"
                                  "  replicas: 3\n"
                                  "  heartbeat_interval: ",
                                  absl::ToInt64Seconds(kClusterHeartbeat),
                                  "s\n"
                                  "  instance_ttl: ",
                                  absl::ToInt64Seconds(kClusterInstanceTtl),
                                  "s\n"
                                  "  registry_bucket: callmesh-registry\n",
                                  extra_yaml);
  if (!absl::StrContains(extra_yaml, "security:")) {
    absl::StrAppend(&yaml, "security:\n  insecure_development: true\n");
  }
  std::ofstream(ConfigPath(dir_, host)) << yaml;
  return LaunchSidecar(host);
}

absl::Status ClusterHosts::LaunchSidecar(int host) {
  const std::string ready = ReadyPath(dir_, host);
  std::remove(ready.c_str());
  sidecars_.erase(host);
  absl::StatusOr<Process> process =
      topology_->Start(host, RunfilePath("runtime/sidecar/callmeshd"),
                       {"--config", ConfigPath(dir_, host), "--listen", kSidecarAddress,
                        "--data-dir", DataDir(dir_, host), "--ready-file", ready},
                       absl::StrCat("callmeshd-h", host), OneLog());
  if (!process.ok()) return process.status();
  absl::StatusOr<std::string> address = process->WaitReady(ready, kStartTimeout);
  sidecars_.emplace(host, *std::move(process));
  return address.status();
}

void ClusterHosts::KillSidecar(int host) {
  auto it = sidecars_.find(host);
  if (it == sidecars_.end()) return;
  it->second.Signal(SIGKILL);
  (void)it->second.Wait(absl::Seconds(10));
}

absl::Status ClusterHosts::RestartSidecar(int host) {
  if (auto it = sidecars_.find(host); it != sidecars_.end() && it->second.running()) {
    return absl::FailedPreconditionError(absl::StrCat("sidecar h", host, " is still running"));
  }
  return LaunchSidecar(host);
}

absl::StatusOr<std::string> ClusterHosts::StartApp(int host, const std::string& binary,
                                                   std::vector<std::string> args,
                                                   const std::string& label,
                                                   const std::string& ready_file,
                                                   std::vector<std::string> env) {
  if (apps_.count(label) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("an app labelled ", label, " exists"));
  }
  ProcessOptions options = OneLog();
  options.env = std::move(env);
  absl::StatusOr<Process> process = topology_->Start(host, binary, args, label, options);
  if (!process.ok()) return process.status();
  absl::StatusOr<std::string> ready =
      ready_file.empty() ? std::string() : process->WaitReady(ready_file, kStartTimeout);
  apps_.emplace(label, *std::move(process));
  return ready;
}

absl::Status ClusterHosts::StartGreeter(int host, const std::string& label,
                                        std::vector<std::string> env) {
  const std::string ready = absl::StrCat(dir_, "/", label, ".ready");
  return StartApp(host, RunfilePath("services/greeter/greeter_server"),
                  {"--listen", "127.0.0.1:0", "--sidecar", kSidecarAddress, "--ready_file", ready},
                  label, ready, std::move(env))
      .status();
}

absl::Status ClusterHosts::StartRecorder(int host, const std::string& name,
                                         const std::string& out) {
  const std::string label = absl::StrCat("recorder-", name);
  const std::string ready = absl::StrCat(dir_, "/", label, ".ready");
  return StartApp(
             host, RunfilePath("tests/cluster/callback_recorder"),
             {"--sidecar", kSidecarAddress, "--name", name, "--out", out, "--ready_file", ready},
             label, ready)
      .status();
}

absl::StatusOr<CommandResult> ClusterHosts::StopApp(const std::string& label) {
  auto it = apps_.find(label);
  if (it == apps_.end()) return absl::NotFoundError(absl::StrCat("no app labelled ", label));
  it->second.Signal(SIGTERM);
  absl::StatusOr<int> code = it->second.Wait(absl::Seconds(20));
  if (!code.ok()) {
    it->second.Signal(SIGKILL);
    code = it->second.Wait(absl::Seconds(10));
  }
  CommandResult result{code.ok() ? *code : -1, it->second.output(), ""};
  apps_.erase(it);
  return result;
}

std::string ClusterHosts::AppLog(const std::string& label) const {
  auto it = apps_.find(label);
  return it == apps_.end() ? "" : it->second.output();
}

CommandResult ClusterHosts::Cli(int host, const std::vector<std::string>& args,
                                absl::Duration timeout) const {
  return CliAt(host, kSidecarAddress, args, timeout);
}

CommandResult ClusterHosts::CliAt(int host, const std::string& address,
                                  const std::vector<std::string>& args,
                                  absl::Duration timeout) const {
  std::vector<std::string> command = {"--sidecar", address, "--protoset",
                                      RunfilePath("tests/cli/testdata/greeter.protoset")};
  command.insert(command.end(), args.begin(), args.end());
  ProcessOptions options;
  if (auto it = cli_env_.find(host); it != cli_env_.end()) options.env = it->second;
  absl::StatusOr<CommandResult> result =
      topology_->RunCommand(host, RunfilePath("cli/callmesh"), command, options, timeout);
  if (!result.ok()) return CommandResult{-1, "", result.status().ToString()};
  return *result;
}

CommandResult ClusterHosts::Driver(int host, const std::vector<std::string>& args) const {
  std::vector<std::string> command = {"--sidecar", kSidecarAddress};
  command.insert(command.end(), args.begin(), args.end());
  absl::StatusOr<CommandResult> result = topology_->RunCommand(
      host, RunfilePath("tests/cluster/call_driver"), command, {}, absl::Seconds(120));
  if (!result.ok()) return CommandResult{-1, "", result.status().ToString()};
  return *result;
}

std::multiset<std::string> ClusterHosts::InstancesSeen(int from, const std::string& service) const {
  const CommandResult listed = Cli(from, {"-o", "json", "services", "--no-methods"});
  std::multiset<std::string> seen;
  if (listed.exit_code != 0) return seen;
  v1::ListServicesResponse services;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // the CLI's additions
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

std::string ClusterHosts::SidecarLogs(size_t tail_bytes) const {
  std::string logs;
  for (const auto& [host, sidecar] : sidecars_) {
    const std::string log = sidecar.output();
    absl::StrAppend(&logs, "--- callmeshd h", host, " (last ", tail_bytes, " bytes)\n",
                    log.size() > tail_bytes ? log.substr(log.size() - tail_bytes) : log, "\n");
  }
  return logs;
}

}  // namespace callmesh::testing
