// The transport of the Sidecar API (and of the transparent proxy, on the same port): plaintext
// without security.tls, else TLS with the sidecar's certificate and key, and, when
// security.tls.ca_file is set, client certificates requested and verified against it
// (required with require_client_certificate). The credentials are built by
// tls::MeshServerCredentials (runtime/common/tls/tls_credentials.h), which re-reads rotated files
// with no restart; this adds the sidecar's start-up rule for its certificate.
//
//   absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
//       SidecarServerCredentials(config.security());
//   // INVALID_ARGUMENT "security.tls.key_file: cannot read \"/etc/x.key\": Permission denied"
//
// Thread-safe (a pure function of the config and the files).
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "callmesh/v1/config.pb.h"

namespace callmesh::sidecar::security {

// The credentials for `security` (insecure when it has no tls). Checks first that each file is
// readable and holds PEM, and that security.tls.cert_file carries the URI SAN
// spiffe://<trust_domain>/sidecar/<name>: INVALID_ARGUMENT naming the key and the file otherwise.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> SidecarServerCredentials(
    const v1::SecurityConfig& security);

// OK if the first certificate of `cert_file` has a URI SAN spiffe://<trust_domain>/sidecar/<name>
// (empty `trust_domain` = tls::kDefaultTrustDomain); else INVALID_ARGUMENT naming the file, the
// SAN it needs and the URI SANs it has.
absl::Status CheckSidecarCertificate(const std::string& cert_file, const std::string& trust_domain);

}  // namespace callmesh::sidecar::security
