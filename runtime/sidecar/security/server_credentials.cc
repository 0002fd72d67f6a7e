#include "runtime/sidecar/security/server_credentials.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace callmesh::sidecar::security {
namespace {

// OK if `path` can be read and holds a PEM block of the `kind` ("CERTIFICATE", "PRIVATE KEY").
absl::Status CheckPemFile(const std::string& key, const std::string& path, absl::string_view kind) {
  const std::string where = absl::StrCat(key, " ", path, ": ");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(where, "cannot read: ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string pem = text.str();
  if (!absl::StrContains(pem, "-----BEGIN ") || !absl::StrContains(pem, kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "holds no PEM ", kind, " (expected \"-----BEGIN ...", kind, "-----\")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> SidecarServerCredentials(
    const v1::SecurityConfig& security) {
  if (!security.has_tls()) return grpc::InsecureServerCredentials();
  const v1::TlsConfig& tls = security.tls();
  if (absl::Status s = CheckPemFile("security.tls.cert_file", tls.cert_file(), "CERTIFICATE");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckPemFile("security.tls.key_file", tls.key_file(), "PRIVATE KEY");
      !s.ok()) {
    return s;
  }
  if (!tls.ca_file().empty()) {
    if (absl::Status s = CheckPemFile("security.tls.ca_file", tls.ca_file(), "CERTIFICATE");
        !s.ok()) {
      return s;
    }
  }
  const auto reload_seconds = static_cast<unsigned int>(absl::ToInt64Seconds(kTlsReloadEvery));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file(), tls.cert_file(), tls.ca_file(), reload_seconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (tls.ca_file().empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(tls.require_client_certificate()
                                      ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                      : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace callmesh::sidecar::security
