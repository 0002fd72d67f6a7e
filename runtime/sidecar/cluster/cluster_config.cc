#include "runtime/sidecar/cluster/cluster_config.h"

#include <unistd.h>

#include <climits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/quoted.h"
#include "runtime/sidecar/config/source_positions.h"
#include "runtime/sidecar/security/security_config_check.h"

namespace callmesh::sidecar::cluster {
namespace {

constexpr size_t kMaxIdLength = 64;

bool IsIdChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_'; }

// nullopt if `id` is 1 to 64 of [A-Za-z0-9_-].
std::optional<std::string> IdProblem(absl::string_view id) {
  if (id.empty()) return "must not be empty";
  if (id.size() > kMaxIdLength) {
    return absl::StrCat("must be at most ", kMaxIdLength, " characters, got ", id.size());
  }
  for (char c : id) {
    if (!IsIdChar(c)) {
      return absl::StrCat("may only contain A-Z, a-z, 0-9, '-' and '_', got ", Quoted(id));
    }
  }
  return std::nullopt;
}

// nullopt if `server` is "nats://host:port", "tls://host:port" or "host:port".
std::optional<std::string> ServerProblem(absl::string_view server) {
  absl::string_view address = server;
  for (absl::string_view scheme : {"nats://", "tls://"}) {
    if (absl::StartsWith(address, scheme)) address.remove_prefix(scheme.size());
  }
  if (absl::StrContains(address, "://")) {
    return absl::StrCat("must be nats://host:port or tls://host:port, got ", Quoted(server));
  }
  if (auto problem = AddressProblem(address, PortUse::kDial)) return problem;
  return std::nullopt;
}

}  // namespace

std::string DefaultSidecarId() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "sidecar";
  std::string id(name);
  for (char& c : id) {
    if (!IsIdChar(c)) c = '-';
  }
  if (id.size() > kMaxIdLength) id.resize(kMaxIdLength);
  return id;
}

void ApplyClusterDefaults(v1::ClusterConfig* cluster) {
  if (cluster->sidecar_id().empty()) cluster->set_sidecar_id(DefaultSidecarId());
  if (cluster->peer_listen().empty()) cluster->set_peer_listen(cluster->advertise_address());
  if (cluster->replicas() == 0) cluster->set_replicas(1);
  if (!cluster->has_heartbeat_interval()) {
    *cluster->mutable_heartbeat_interval() = ToProtoDuration(absl::Seconds(1));
  }
  if (!cluster->has_instance_ttl()) {
    *cluster->mutable_instance_ttl() =
        ToProtoDuration(3 * FromProtoDuration(cluster->heartbeat_interval()));
  }
  if (cluster->registry_bucket().empty()) cluster->set_registry_bucket("callmesh-registry");
  if (cluster->subscriptions_bucket().empty()) {
    cluster->set_subscriptions_bucket("callmesh-subscriptions");
  }
}

std::optional<ClusterViolation> FindClusterViolation(const v1::SidecarConfig& config) {
  if (!config.has_cluster()) return std::nullopt;
  const v1::ClusterConfig& cluster = config.cluster();
  if (cluster.nats_servers().empty()) {
    return ClusterViolation{"cluster.nats_servers",
                            "must name at least one NATS server, e.g. nats://10.0.0.1:4222"};
  }
  for (int i = 0; i < cluster.nats_servers_size(); ++i) {
    if (auto problem = ServerProblem(cluster.nats_servers(i))) {
      return ClusterViolation{IndexPath("cluster.nats_servers", i), *problem};
    }
  }
  if (auto problem = IdProblem(cluster.sidecar_id())) {
    return ClusterViolation{"cluster.sidecar_id", *problem};
  }
  if (cluster.advertise_address().empty()) {
    return ClusterViolation{
        "cluster.advertise_address",
        "must be set: the host:port at which the other sidecars reach this one"};
  }
  if (auto problem = AddressProblem(cluster.advertise_address(), PortUse::kDial)) {
    return ClusterViolation{"cluster.advertise_address", *problem};
  }
  if (auto problem = AddressProblem(cluster.peer_listen(), PortUse::kListen)) {
    return ClusterViolation{"cluster.peer_listen", *problem};
  }
  if (cluster.peer_listen() == config.listen()) {
    return ClusterViolation{"cluster.peer_listen",
                            absl::StrCat("must differ from listen (", config.listen(),
                                         "): the peer listener serves other sidecars only")};
  }
  if (cluster.replicas() != 1 && cluster.replicas() != 3 && cluster.replicas() != 5) {
    return ClusterViolation{"cluster.replicas",
                            absl::StrCat("must be 1, 3 or 5, got ", cluster.replicas())};
  }
  if (auto problem = ProtoDurationProblem(cluster.heartbeat_interval())) {
    return ClusterViolation{"cluster.heartbeat_interval", *problem};
  }
  const absl::Duration heartbeat = FromProtoDuration(cluster.heartbeat_interval());
  if (heartbeat <= absl::ZeroDuration()) {
    return ClusterViolation{"cluster.heartbeat_interval",
                            absl::StrCat("must be > 0, got ", absl::FormatDuration(heartbeat))};
  }
  if (auto problem = ProtoDurationProblem(cluster.instance_ttl())) {
    return ClusterViolation{"cluster.instance_ttl", *problem};
  }
  const absl::Duration ttl = FromProtoDuration(cluster.instance_ttl());
  if (ttl < 2 * heartbeat) {
    return ClusterViolation{
        "cluster.instance_ttl",
        absl::StrCat("must be at least two heartbeat_intervals (",
                     absl::FormatDuration(2 * heartbeat), "), got ", absl::FormatDuration(ttl))};
  }
  for (const auto& [path, name] :
       {std::pair{"cluster.registry_bucket", cluster.registry_bucket()},
        {"cluster.subscriptions_bucket", cluster.subscriptions_bucket()}}) {
    if (auto problem = IdProblem(name)) return ClusterViolation{path, *problem};
  }
  if (!cluster.nats_token_file().empty() &&
      (!cluster.nats_user().empty() || !cluster.nats_password_file().empty())) {
    return ClusterViolation{"cluster.nats_token_file",
                            "set either nats_token_file or nats_user with nats_password_file, "
                            "not both"};
  }
  if (cluster.nats_user().empty() != cluster.nats_password_file().empty()) {
    return ClusterViolation{
        cluster.nats_user().empty() ? "cluster.nats_user" : "cluster.nats_password_file",
        "nats_user and nats_password_file go together"};
  }
  if (cluster.nats_tls().cert_file().empty() != cluster.nats_tls().key_file().empty()) {
    return ClusterViolation{cluster.nats_tls().cert_file().empty() ? "cluster.nats_tls.cert_file"
                                                                   : "cluster.nats_tls.key_file",
                            "cert_file and key_file go together"};
  }
  const bool mutual_tls =
      !config.security().tls().cert_file().empty() && !config.security().tls().ca_file().empty();
  if (!security::IsLoopbackListen(cluster.peer_listen()) && !mutual_tls &&
      !config.security().insecure_development()) {
    return ClusterViolation{
        "cluster.peer_listen",
        absl::StrCat("listens on ", cluster.peer_listen(),
                     ", off loopback: calls between hosts need mutual TLS between sidecars "
                     "(security.tls cert_file, key_file and ca_file; `callmesh certs issue --kind "
                     "sidecar`), or security.insecure_development: true on a trusted network")};
  }
  return std::nullopt;
}

}  // namespace callmesh::sidecar::cluster
