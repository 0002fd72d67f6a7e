// How the sidecar dials targets and callback services (every channel the registry makes: the
// invoker's calls, the proxy, callback deliveries, health probes).
//
//   absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds = OutboundCredentials(config);
//
// Without `security.tls.cert_file`: plaintext. With it but without `ca_file` (TLS on the Sidecar
// API, callers authenticated by tokens): plaintext too, and a warning at start. With both: mTLS —
// the sidecar presents its own certificate (`security.tls.cert_file` / `key_file`,
// spiffe://<td>/sidecar/<name>) and accepts a target only if its certificate chains to
// `security.tls.ca_file` and carries an app identity of the trust domain (`security.trust_domain`,
// default callmesh.local). The files are re-read when they change
// (runtime/common/tls/tls_credentials.h). INVALID_ARGUMENT naming the `security.tls.*` field of a
// file that is missing or unreadable.
#pragma once

#include <grpcpp/security/credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "callmesh/v1/config.pb.h"
#include "runtime/common/tls/spiffe_id.h"

namespace callmesh::sidecar {

//
// Cluster mode dials other sidecars' peer listeners with the same files, expecting `target` =
// IdentityKind::kSidecar: the peer must prove a sidecar identity of the trust domain.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> OutboundCredentials(
    const v1::SidecarConfig& config, tls::IdentityKind target = tls::IdentityKind::kApp);

}  // namespace callmesh::sidecar
