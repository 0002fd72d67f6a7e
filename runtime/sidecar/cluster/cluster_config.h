// The defaults and rules of SidecarConfig.cluster (cluster mode on NATS JetStream), applied and
// checked with the rest of the config (runtime/sidecar/config/), which places an error at its
// file, line and key.
//
//   ApplyClusterDefaults(config.mutable_cluster());   // only when config.has_cluster()
//   if (auto v = FindClusterViolation(config)) return Violation{v->path, v->problem};
//
// Defaults: sidecar_id = the host name (characters outside [A-Za-z0-9_-] become "-"),
// peer_listen = advertise_address, replicas 1, heartbeat_interval 1s, instance_ttl 3 heartbeats,
// registry_bucket "callmesh-registry", subscriptions_bucket "callmesh-subscriptions".
//
// Rules: at least one NATS server, each "nats://host:port" or "tls://host:port" (or host:port);
// sidecar_id 1 to 64 of [A-Za-z0-9_-] (it is a key of the bucket); advertise_address an address
// to dial and peer_listen one to listen on; replicas 1, 3 or 5; heartbeat_interval > 0;
// instance_ttl at least two heartbeats; bucket names of [A-Za-z0-9_-]; nats_user and
// nats_password_file together, not with nats_token_file; nats_tls cert_file and key_file together.
// A peer listener off loopback carries calls between hosts: it needs security.tls with a ca_file
// (mutual TLS between sidecars) unless security.insecure_development is true.
//
// Thread-safe (pure, apart from reading the host name).
#pragma once

#include <optional>
#include <string>

#include "callmesh/v1/config.pb.h"

namespace callmesh::sidecar::cluster {

struct ClusterViolation {
  std::string path;     // e.g. "cluster.replicas"
  std::string problem;  // e.g. "must be 1, 3 or 5, got 2"
};

void ApplyClusterDefaults(v1::ClusterConfig* cluster);

// Problems of config.cluster (none when it is absent).
std::optional<ClusterViolation> FindClusterViolation(const v1::SidecarConfig& config);

// The default sidecar id: this machine's host name, characters outside [A-Za-z0-9_-] as "-".
std::string DefaultSidecarId();

}  // namespace callmesh::sidecar::cluster
