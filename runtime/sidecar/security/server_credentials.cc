#include "runtime/sidecar/security/server_credentials.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/common/status_macros.h"
#include "runtime/common/tls/mesh_ca.h"
#include "runtime/common/tls/spiffe_id.h"
#include "runtime/common/tls/tls_credentials.h"

namespace callmesh::sidecar::security {

absl::Status CheckSidecarCertificate(const std::string& cert_file,
                                     const std::string& trust_domain) {
  const std::string domain = trust_domain.empty() ? tls::kDefaultTrustDomain : trust_domain;
  const std::string needed = absl::StrCat(tls::TrustDomainId(domain), "/sidecar/<name>");
  absl::StatusOr<std::vector<std::string>> uris = tls::UriSansOfCertificateFile(cert_file);
  if (!uris.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("security.tls.cert_file ", cert_file,
                     ": cannot read its URI SANs: ", uris.status().message()));
  }
  for (const std::string& uri : *uris) {
    absl::StatusOr<tls::MeshIdentity> identity = tls::ParseSpiffeId(uri);
    if (identity.ok() && identity->kind == tls::IdentityKind::kSidecar &&
        identity->trust_domain == domain) {
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("security.tls.cert_file ", cert_file, ": the certificate has no URI SAN ",
                   needed, " (its URI SANs: ", uris->empty() ? "none" : absl::StrJoin(*uris, ", "),
                   "); issue the sidecar's certificate with `callmesh certs`"));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> SidecarServerCredentials(
    const v1::SecurityConfig& security) {
  if (!security.has_tls()) return grpc::InsecureServerCredentials();
  const v1::TlsConfig& config = security.tls();
  const tls::TlsFiles files{
      .ca_file = config.ca_file(), .cert_file = config.cert_file(), .key_file = config.key_file()};
  CALLMESH_RETURN_IF_ERROR(
      tls::ValidateServerTlsFiles(files, config.require_client_certificate(), "security.tls."));
  CALLMESH_RETURN_IF_ERROR(CheckSidecarCertificate(config.cert_file(), security.trust_domain()));
  return tls::MeshServerCredentials(files, config.require_client_certificate());
}

}  // namespace callmesh::sidecar::security
