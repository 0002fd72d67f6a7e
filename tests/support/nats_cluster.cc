#include "tests/support/nats_cluster.h"

#include <signal.h>

#include <fstream>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "runtime/common/status_macros.h"

namespace callmesh::testing {
namespace {

constexpr char kNatsServer[] = "/usr/sbin/nats-server";  // Debian's nats-server (install_deps.sh)
constexpr char kCurl[] = "/usr/bin/curl";
constexpr int kClientPort = 4222;
constexpr int kRoutePort = 6222;
constexpr int kMonitorPort = 8222;

std::string NodeName(int host) { return absl::StrCat("n", host); }

// The host of a node name "n<host>", or -1.
int HostOfNode(absl::string_view name) {
  int host = 0;
  if (!absl::ConsumePrefix(&name, "n") || !absl::SimpleAtoi(name, &host)) return -1;
  return host;
}

absl::StatusOr<google::protobuf::Struct> ParseJson(const std::string& text,
                                                   const std::string& what) {
  google::protobuf::Struct parsed;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(text, &parsed, options);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat(what, " is not JSON (", status.ToString(), "): ", text.substr(0, 200)));
  }
  return parsed;
}

// fields[name] as a string, "" if absent or of another kind.
std::string StringField(const google::protobuf::Struct& object, const std::string& name) {
  const auto found = object.fields().find(name);
  return found == object.fields().end() ? "" : found->second.string_value();
}

const google::protobuf::Struct* StructField(const google::protobuf::Struct& object,
                                            const std::string& name) {
  const auto found = object.fields().find(name);
  if (found == object.fields().end() || !found->second.has_struct_value()) return nullptr;
  return &found->second.struct_value();
}

const google::protobuf::ListValue* ListField(const google::protobuf::Struct& object,
                                             const std::string& name) {
  const auto found = object.fields().find(name);
  if (found == object.fields().end() || !found->second.has_list_value()) return nullptr;
  return &found->second.list_value();
}

}  // namespace

absl::StatusOr<NatsCluster> NatsCluster::Start(const NetnsTopology& topology) {
  NatsCluster cluster(&topology);
  for (int host = 1; host <= topology.hosts(); ++host) {
    const std::string dir = NewTempDir(absl::StrCat("nats-", NodeName(host)));
    std::vector<std::string> routes;
    for (int other = 1; other <= topology.hosts(); ++other) {
      if (other != host) {
        routes.push_back(absl::StrCat("nats://", topology.Address(other), ":", kRoutePort));
      }
    }
    const std::string address = topology.Address(host);
    // Clients and routes on the host's address; monitoring on every interface of the namespace
    // (its loopback too, so a test can look at an isolated node). Route pings every second, so an
    // idle route to a vanished peer goes stale within a few seconds.
    const std::string config =
        absl::StrCat("server_name: ", NodeName(host), "\n",            //
                     "listen: \"", address, ":", kClientPort, "\"\n",  //
                     "http: \"0.0.0.0:", kMonitorPort, "\"\n",         //
                     "ping_interval: \"1s\"\n",                        //
                     "ping_max: 3\n",                                  //
                     "jetstream {\n  store_dir: \"", dir, "/store\"\n",
                     "  max_memory_store: 64MB\n  max_file_store: 1GB\n}\n",  //
                     "cluster {\n  name: callmesh-test\n  listen: \"", address, ":", kRoutePort,
                     "\"\n", "  routes: [", absl::StrJoin(routes, ", "), "]\n}\n");
    const std::string path = dir + "/nats.conf";
    std::ofstream out(path);
    out << config;
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
    cluster.config_paths_.push_back(path);
    cluster.servers_.emplace_back();
  }
  for (int host = 1; host <= topology.hosts(); ++host) {
    CALLMESH_RETURN_IF_ERROR(cluster.StartNode(host));
  }
  return cluster;
}

absl::Status NatsCluster::StartNode(int host) {
  CALLMESH_ASSIGN_OR_RETURN(Process server,
                            topology_->Start(host, kNatsServer, {"-c", config_paths_[host - 1]},
                                             absl::StrCat("nats-", NodeName(host)),
                                             ProcessOptions{.separate_stderr = false}));
  servers_[host - 1] = std::move(server);
  return absl::OkStatus();
}

bool NatsCluster::running(int host) {
  if (host < 1 || host > static_cast<int>(servers_.size())) return false;
  std::optional<Process>& server = servers_[host - 1];
  return server.has_value() && server->running();
}

void NatsCluster::Kill(int host) {
  if (host < 1 || host > static_cast<int>(servers_.size())) return;
  std::optional<Process>& server = servers_[host - 1];
  if (!server.has_value()) return;
  server->Signal(SIGKILL);
  (void)server->Wait(absl::Seconds(10));
}

absl::Status NatsCluster::Restart(int host) {
  if (host < 1 || host > static_cast<int>(servers_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("no nats node on host ", host));
  }
  if (running(host)) {
    return absl::FailedPreconditionError(
        absl::StrCat("nats node ", NodeName(host), " is still running"));
  }
  return StartNode(host);
}

std::string NatsCluster::ClientUrl(int host) const {
  return absl::StrCat("nats://", topology_->Address(host), ":", kClientPort);
}

std::string NatsCluster::Servers() const {
  std::vector<std::string> urls;
  for (int host = 1; host <= topology_->hosts(); ++host) urls.push_back(ClientUrl(host));
  return absl::StrJoin(urls, ",");
}

std::string NatsCluster::Log(int host) const {
  if (host < 1 || host > static_cast<int>(servers_.size())) return "";
  const std::optional<Process>& server = servers_[host - 1];
  return server.has_value() ? server->output() : "";
}

absl::StatusOr<std::string> NatsCluster::Monitor(int from, int host,
                                                 const std::string& path) const {
  const std::string url =
      absl::StrCat("http://", topology_->Address(host), ":", kMonitorPort, "/", path);
  CALLMESH_ASSIGN_OR_RETURN(CommandResult result,
                            topology_->RunCommand(from, kCurl, {"-s", "-f", "--max-time", "2", url},
                                                  {}, absl::Seconds(10)));
  if (result.exit_code != 0) {
    return absl::UnavailableError(absl::StrCat("curl ", url, " from ", topology_->Namespace(from),
                                               " exited with ", result.exit_code));
  }
  return result.out;
}

absl::StatusOr<int> NatsCluster::RouteCount(int host) const {
  CALLMESH_ASSIGN_OR_RETURN(const std::string body, Monitor(host, host, "routez"));
  CALLMESH_ASSIGN_OR_RETURN(const google::protobuf::Struct routez,
                            ParseJson(body, NodeName(host) + " /routez"));
  const auto found = routez.fields().find("num_routes");
  if (found == routez.fields().end() || !found->second.has_number_value()) {
    return absl::UnavailableError(NodeName(host) + " /routez has no num_routes: " + body);
  }
  return static_cast<int>(found->second.number_value());
}

absl::StatusOr<std::string> NatsCluster::MetaLeader(int host) const {
  CALLMESH_ASSIGN_OR_RETURN(const std::string body, Monitor(host, host, "jsz"));
  CALLMESH_ASSIGN_OR_RETURN(const google::protobuf::Struct jsz,
                            ParseJson(body, NodeName(host) + " /jsz"));
  const google::protobuf::Struct* meta = StructField(jsz, "meta_cluster");
  return meta == nullptr ? "" : StringField(*meta, "leader");
}

absl::Status NatsCluster::WaitReady(absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  std::string missing;
  while (true) {
    missing.clear();
    std::vector<int> live;
    for (int host = 1; host <= topology_->hosts(); ++host) {
      if (running(host)) live.push_back(host);
    }
    std::string agreed_leader;
    for (int host : live) {
      absl::StatusOr<int> routes = RouteCount(host);
      absl::StatusOr<std::string> leader = MetaLeader(host);
      if (!routes.ok() || !leader.ok()) {
        missing = absl::StrCat(NodeName(host), " does not answer: ",
                               (!routes.ok() ? routes.status() : leader.status()).ToString());
        break;
      }
      if (*routes < static_cast<int>(live.size()) - 1) {
        missing = absl::StrCat(NodeName(host), " has ", *routes, " routes of ", live.size() - 1);
        break;
      }
      if (leader->empty() || (!agreed_leader.empty() && *leader != agreed_leader)) {
        missing = absl::StrCat(NodeName(host), " names meta leader '", *leader, "'");
        break;
      }
      agreed_leader = *leader;
    }
    if (missing.empty()) return absl::OkStatus();
    if (absl::Now() > until) {
      return absl::DeadlineExceededError(absl::StrCat(
          "NATS cluster not ready after ", absl::FormatDuration(timeout), ": ", missing));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

absl::StatusOr<int> NatsCluster::StreamLeader(const std::string& stream) {
  std::string agreed;
  int holders = 0;
  for (int host = 1; host <= topology_->hosts(); ++host) {
    if (!running(host)) continue;
    CALLMESH_ASSIGN_OR_RETURN(const std::string body,
                              Monitor(host, host, "jsz?accounts=true&streams=true"));
    CALLMESH_ASSIGN_OR_RETURN(const google::protobuf::Struct jsz,
                              ParseJson(body, NodeName(host) + " /jsz"));
    // {"account_details": [{"stream_detail": [{"name": ..., "cluster": {"leader": ...}}]}]}
    const google::protobuf::ListValue* accounts = ListField(jsz, "account_details");
    if (accounts == nullptr) continue;
    for (const auto& account : accounts->values()) {
      const google::protobuf::ListValue* streams =
          ListField(account.struct_value(), "stream_detail");
      if (streams == nullptr) continue;
      for (const auto& detail : streams->values()) {
        if (StringField(detail.struct_value(), "name") != stream) continue;
        const google::protobuf::Struct* cluster = StructField(detail.struct_value(), "cluster");
        const std::string leader = cluster == nullptr ? "" : StringField(*cluster, "leader");
        if (leader.empty()) {
          return absl::UnavailableError(
              absl::StrCat(NodeName(host), " knows no leader of stream ", stream));
        }
        if (!agreed.empty() && leader != agreed) {
          return absl::UnavailableError(absl::StrCat("nodes disagree on the leader of stream ",
                                                     stream, ": ", agreed, " and ", leader));
        }
        agreed = leader;
        ++holders;
      }
    }
  }
  if (holders == 0) return absl::UnavailableError("no running node holds stream " + stream);
  const int leader_host = HostOfNode(agreed);
  if (leader_host < 1 || leader_host > topology_->hosts() || !running(leader_host)) {
    return absl::UnavailableError(
        absl::StrCat("stream ", stream, " is led by ", agreed, ", which is not running"));
  }
  return leader_host;
}

}  // namespace callmesh::testing
