#include "runtime/common/tls/tls_credentials.h"

#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/common/status_macros.h"

namespace callmesh::tls {
namespace {

namespace gx = grpc::experimental;

// OK if `path` is set, readable, and holds a PEM block of `kind` ("CERTIFICATE", "PRIVATE KEY").
absl::Status CheckPemFile(const std::string& path, absl::string_view field,
                          absl::string_view kind) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": cannot read \"", path, "\": ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string pem = text.str();
  if (!absl::StrContains(pem, "-----BEGIN ") || !absl::StrContains(pem, kind)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", path, "\" holds no PEM ", kind,
                                                   " (expected \"-----BEGIN ...", kind,
                                                   "-----\")"));
  }
  return absl::OkStatus();
}

bool Allows(const PeerRule& rule, const MeshIdentity& identity) {
  return identity.kind == rule.kind &&
         (rule.trust_domain.empty() || identity.trust_domain == rule.trust_domain);
}

std::string RuleText(const PeerRule& rule) {
  return absl::StrCat(IdentityKindName(rule.kind), " of trust domain ",
                      rule.trust_domain.empty() ? "any" : rule.trust_domain);
}

// Runs before every call's handler: refuses peers whose certificate names no allowed identity.
class PeerIdentityProcessor : public grpc::AuthMetadataProcessor {
 public:
  explicit PeerIdentityProcessor(PeerRule rule) : rule_(std::move(rule)) {}

  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& /*auth_metadata*/, grpc::AuthContext* context,
                       OutputMetadata* /*consumed*/, OutputMetadata* /*response*/) override {
    std::optional<MeshIdentity> peer = PeerIdentity(*context);
    if (peer.has_value() && Allows(rule_, *peer)) return grpc::Status::OK;
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("only a ", RuleText(rule_), " may call this server; peer is ",
                                     peer.has_value() ? SpiffeId(*peer)
                                                      : "not a mesh identity (no certificate "
                                                        "with a callmesh SPIFFE ID)"));
  }

 private:
  const PeerRule rule_;
};

// After gRPC verified the chain: the peer's URI SAN must be a mesh identity that `rule` allows.
class SpiffePeerVerifier : public gx::ExternalCertificateVerifier {
 public:
  explicit SpiffePeerVerifier(PeerRule rule) : rule_(std::move(rule)) {}

  bool Verify(gx::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) override {
    std::vector<std::string> seen;
    for (const grpc::string_ref& uri : request->uri_names()) {
      seen.emplace_back(uri.data(), uri.size());
      absl::StatusOr<MeshIdentity> identity = ParseSpiffeId(seen.back());
      if (identity.ok() && Allows(rule_, *identity)) {
        *sync_status = grpc::Status::OK;
        return true;
      }
    }
    *sync_status = grpc::Status(
        grpc::StatusCode::UNAUTHENTICATED,
        absl::StrCat("peer certificate is not a ", RuleText(rule_),
                     " (URI SANs: ", seen.empty() ? "none" : absl::StrJoin(seen, ", "), ")"));
    return true;
  }

  void Cancel(gx::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  const PeerRule rule_;
};

std::shared_ptr<gx::FileWatcherCertificateProvider> ProviderFor(const TlsFiles& files) {
  return std::make_shared<gx::FileWatcherCertificateProvider>(
      files.key_file, files.cert_file, files.ca_file, kCertificateReloadIntervalSeconds);
}

}  // namespace

absl::Status ValidateTlsFiles(const TlsFiles& files, bool require_identity,
                              absl::string_view prefix) {
  CALLMESH_RETURN_IF_ERROR(
      CheckPemFile(files.ca_file, absl::StrCat(prefix, "ca_file"), "CERTIFICATE"));
  if (files.cert_file.empty() != files.key_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "cert_file and ", prefix, "key_file: give both or neither"));
  }
  if (files.cert_file.empty() && !require_identity) return absl::OkStatus();
  CALLMESH_RETURN_IF_ERROR(
      CheckPemFile(files.cert_file, absl::StrCat(prefix, "cert_file"), "CERTIFICATE"));
  return CheckPemFile(files.key_file, absl::StrCat(prefix, "key_file"), "PRIVATE KEY");
}

absl::Status ValidateServerTlsFiles(const TlsFiles& files, bool require_client_certificate,
                                    absl::string_view prefix) {
  CALLMESH_RETURN_IF_ERROR(
      CheckPemFile(files.cert_file, absl::StrCat(prefix, "cert_file"), "CERTIFICATE"));
  CALLMESH_RETURN_IF_ERROR(
      CheckPemFile(files.key_file, absl::StrCat(prefix, "key_file"), "PRIVATE KEY"));
  if (files.ca_file.empty() && !require_client_certificate) return absl::OkStatus();
  return CheckPemFile(files.ca_file, absl::StrCat(prefix, "ca_file"), "CERTIFICATE");
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MeshChannelCredentials(
    const TlsFiles& files, const PeerRule& peer) {
  CALLMESH_RETURN_IF_ERROR(ValidateTlsFiles(files, /*require_identity=*/false));
  gx::TlsChannelCredentialsOptions options;
  if (files.cert_file.empty()) {
    options.set_certificate_provider(std::make_shared<gx::FileWatcherCertificateProvider>(
        files.ca_file, kCertificateReloadIntervalSeconds));
  } else {
    options.set_certificate_provider(ProviderFor(files));
    options.watch_identity_key_cert_pairs();
  }
  options.watch_root_certs();
  options.set_verify_server_certs(true);
  options.set_check_call_host(false);
  options.set_certificate_verifier(
      gx::ExternalCertificateVerifier::Create<SpiffePeerVerifier>(peer));
  std::shared_ptr<grpc::ChannelCredentials> credentials = gx::TlsCredentials(options);
  if (credentials == nullptr) {
    return absl::InternalError("gRPC refused the TLS channel credentials");
  }
  return credentials;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MeshServerCredentials(
    const TlsFiles& files, bool require_client_certificate, std::optional<PeerRule> only_peers) {
  CALLMESH_RETURN_IF_ERROR(ValidateServerTlsFiles(files, require_client_certificate));
  gx::TlsServerCredentialsOptions options(ProviderFor(files));
  options.watch_identity_key_cert_pairs();
  if (files.ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(require_client_certificate
                                      ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                      : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = gx::TlsServerCredentials(options);
  if (credentials == nullptr) {
    return absl::InternalError("gRPC refused the TLS server credentials");
  }
  if (only_peers.has_value()) {
    credentials->SetAuthMetadataProcessor(
        std::make_shared<PeerIdentityProcessor>(*std::move(only_peers)));
  }
  return credentials;
}

std::optional<MeshIdentity> PeerIdentity(const grpc::AuthContext& context) {
  for (const char* property : {GRPC_PEER_SPIFFE_ID_PROPERTY_NAME, GRPC_PEER_URI_PROPERTY_NAME}) {
    for (const grpc::string_ref& value : context.FindPropertyValues(property)) {
      absl::StatusOr<MeshIdentity> identity =
          ParseSpiffeId(absl::string_view(value.data(), value.size()));
      if (identity.ok()) return *identity;
    }
  }
  return std::nullopt;
}

}  // namespace callmesh::tls
