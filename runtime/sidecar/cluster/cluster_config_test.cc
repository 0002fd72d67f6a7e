#include "runtime/sidecar/cluster/cluster_config.h"

#include "gtest/gtest.h"
#include "runtime/common/proto_time.h"

namespace callmesh::sidecar::cluster {
namespace {

v1::SidecarConfig Clustered() {
  v1::SidecarConfig config;
  config.set_listen("127.0.0.1:4770");
  v1::ClusterConfig* cluster = config.mutable_cluster();
  cluster->add_nats_servers("nats://127.0.0.1:4222");
  cluster->set_sidecar_id("h1");
  cluster->set_advertise_address("127.0.0.1:7100");
  ApplyClusterDefaults(cluster);
  return config;
}

// The violation of `config` as "path: problem", or "" if none.
std::string Problem(const v1::SidecarConfig& config) {
  std::optional<ClusterViolation> v = FindClusterViolation(config);
  return v.has_value() ? v->path + ": " + v->problem : "";
}

TEST(ClusterConfig, DefaultsFillWhatIsUnset) {
  v1::SidecarConfig config = Clustered();
  const v1::ClusterConfig& cluster = config.cluster();
  EXPECT_EQ(cluster.peer_listen(), "127.0.0.1:7100");
  EXPECT_EQ(cluster.replicas(), 1u);
  EXPECT_EQ(FromProtoDuration(cluster.heartbeat_interval()), absl::Seconds(1));
  EXPECT_EQ(FromProtoDuration(cluster.instance_ttl()), absl::Seconds(3));
  EXPECT_EQ(cluster.registry_bucket(), "callmesh-registry");
  EXPECT_EQ(Problem(config), "");
}

TEST(ClusterConfig, TtlDefaultFollowsTheHeartbeat) {
  v1::ClusterConfig cluster;
  *cluster.mutable_heartbeat_interval() = ToProtoDuration(absl::Seconds(2));
  ApplyClusterDefaults(&cluster);
  EXPECT_EQ(FromProtoDuration(cluster.instance_ttl()), absl::Seconds(6));
}

TEST(ClusterConfig, DefaultSidecarIdIsTheHostNameMadeValid) {
  v1::ClusterConfig cluster;
  ApplyClusterDefaults(&cluster);
  EXPECT_EQ(cluster.sidecar_id(), DefaultSidecarId());
  for (char c : cluster.sidecar_id()) EXPECT_TRUE(isalnum(c) || c == '-' || c == '_') << c;
}

TEST(ClusterConfig, NoClusterBlockHasNoViolation) { EXPECT_EQ(Problem(v1::SidecarConfig()), ""); }

TEST(ClusterConfig, EachRuleNamesItsKey) {
  struct Case {
    std::function<void(v1::SidecarConfig*)> edit;
    std::string expected_prefix;
  };
  const std::vector<Case> cases = {
      {[](v1::SidecarConfig* c) { c->mutable_cluster()->clear_nats_servers(); },
       "cluster.nats_servers: must name at least one NATS server"},
      {[](v1::SidecarConfig* c) { c->mutable_cluster()->add_nats_servers("http://x:1"); },
       "cluster.nats_servers[1]: must be nats://host:port"},
      {[](v1::SidecarConfig* c) { c->mutable_cluster()->set_sidecar_id("a.b"); },
       "cluster.sidecar_id: may only contain"},
      {[](v1::SidecarConfig* c) { c->mutable_cluster()->set_advertise_address(""); },
       "cluster.advertise_address: must be set"},
      {[](v1::SidecarConfig* c) { c->mutable_cluster()->set_peer_listen("127.0.0.1:4770"); },
       "cluster.peer_listen: must differ from listen"},
      {[](v1::SidecarConfig* c) { c->mutable_cluster()->set_replicas(2); },
       "cluster.replicas: must be 1, 3 or 5, got 2"},
      {[](v1::SidecarConfig* c) {
         *c->mutable_cluster()->mutable_instance_ttl() = ToProtoDuration(absl::Seconds(1));
       },
       "cluster.instance_ttl: must be at least two heartbeat_intervals (2s), got 1s"},
      {[](v1::SidecarConfig* c) {
         c->mutable_cluster()->set_nats_token_file("/t");
         c->mutable_cluster()->set_nats_user("u");
       },
       "cluster.nats_token_file: set either"},
      {[](v1::SidecarConfig* c) { c->mutable_cluster()->set_nats_user("u"); },
       "cluster.nats_password_file: nats_user and nats_password_file go together"},
      {[](v1::SidecarConfig* c) {
         c->mutable_cluster()->set_advertise_address("10.0.0.1:7100");
         c->mutable_cluster()->set_peer_listen("10.0.0.1:7100");
       },
       "cluster.peer_listen: listens on 10.0.0.1:7100, off loopback: calls between hosts need "
       "mutual TLS"},
  };
  for (const Case& c : cases) {
    v1::SidecarConfig config = Clustered();
    c.edit(&config);
    const std::string problem = Problem(config);
    EXPECT_EQ(problem.substr(0, c.expected_prefix.size()), c.expected_prefix) << problem;
  }
}

TEST(ClusterConfig, OffLoopbackPeerListenerIsAllowedWithMutualTlsOrInsecureDevelopment) {
  v1::SidecarConfig config = Clustered();
  config.mutable_cluster()->set_advertise_address("10.0.0.1:7100");
  config.mutable_cluster()->set_peer_listen("0.0.0.0:7100");
  config.mutable_security()->set_insecure_development(true);
  EXPECT_EQ(Problem(config), "");
  config.mutable_security()->set_insecure_development(false);
  v1::TlsConfig* tls = config.mutable_security()->mutable_tls();
  tls->set_cert_file("sidecar.crt");
  tls->set_key_file("sidecar.key");
  tls->set_ca_file("ca.crt");
  EXPECT_EQ(Problem(config), "");
}

}  // namespace
}  // namespace callmesh::sidecar::cluster
