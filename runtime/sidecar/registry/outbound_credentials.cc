#include "runtime/sidecar/registry/outbound_credentials.h"

#include "runtime/common/tls/tls_credentials.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar {

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> OutboundCredentials(
    const v1::SidecarConfig& config, tls::IdentityKind target) {
  const v1::TlsConfig& tls = config.security().tls();
  if (tls.cert_file().empty() && tls.key_file().empty()) {
    return grpc::InsecureChannelCredentials();
  }
  if (tls.ca_file().empty()) {
    // TLS on the Sidecar API with tokens only: nothing to verify targets against.
    if (target != tls::IdentityKind::kApp) return grpc::InsecureChannelCredentials();
    spdlog::warn(
        "security.tls has no ca_file: calls to targets and callback services are plaintext, "
        "without mutual TLS (set security.tls.ca_file to turn it on)");
    return grpc::InsecureChannelCredentials();
  }
  const tls::TlsFiles files{
      .ca_file = tls.ca_file(), .cert_file = tls.cert_file(), .key_file = tls.key_file()};
  if (absl::Status s = tls::ValidateTlsFiles(files, /*require_identity=*/true, "security.tls.");
      !s.ok()) {
    return s;
  }
  const std::string& trust_domain = config.security().trust_domain();
  return tls::MeshChannelCredentials(
      files, {.kind = target,
              .trust_domain = trust_domain.empty() ? tls::kDefaultTrustDomain : trust_domain});
}

}  // namespace callmesh::sidecar
