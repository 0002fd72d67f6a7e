#include "runtime/sidecar/security/authenticator.h"

#include <grpcpp/security/auth_context.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/common/quoted.h"
#include "runtime/common/tls/spiffe_id.h"

namespace callmesh::sidecar::security {
namespace {

constexpr absl::string_view kBearer = "bearer ";

}  // namespace

PresentedCredentials CredentialsOf(const grpc::ServerContextBase& rpc) {
  PresentedCredentials presented;
  const auto& metadata = rpc.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    presented.authorization = std::string(it->second.data(), it->second.size());
  }
  std::shared_ptr<const grpc::AuthContext> auth = rpc.auth_context();
  if (auth != nullptr) {
    presented.has_certificate = !auth->FindPropertyValues("x509_pem_cert").empty();
    for (const grpc::string_ref& uri : auth->FindPropertyValues("peer_uri")) {
      presented.certificate_uris.emplace_back(uri.data(), uri.size());
    }
  }
  return presented;
}

Authenticator::Authenticator(std::unique_ptr<TokenStore> tokens, std::string trust_domain)
    : tokens_(std::move(tokens)),
      trust_domain_(std::move(trust_domain)),
      app_prefix_(absl::StrCat(tls::TrustDomainId(trust_domain_), "/app/")) {}

absl::StatusOr<std::optional<std::string>> Authenticator::CertificateIdentity(
    const PresentedCredentials& presented) const {
  std::optional<std::string> app;
  for (const std::string& uri : presented.certificate_uris) {
    absl::StatusOr<tls::MeshIdentity> identity = tls::ParseSpiffeId(uri);
    if (!identity.ok()) {
      if (!absl::StartsWith(uri, app_prefix_)) continue;  // not an app of this mesh
      return absl::UnauthenticatedError(
          absl::StrCat("client certificate URI SAN ", Quoted(uri),
                       " names no valid app: ", identity.status().message()));
    }
    if (identity->kind != tls::IdentityKind::kApp || identity->trust_domain != trust_domain_) {
      continue;
    }
    const std::string& name = identity->name;
    if (app.has_value() && *app != name) {
      return absl::UnauthenticatedError(
          absl::StrCat("client certificate names two apps, ", Quoted(*app), " and ", Quoted(name)));
    }
    app = name;
  }
  return app;
}

absl::StatusOr<std::string> Authenticator::AuthenticateSidecar(
    const PresentedCredentials& presented) const {
  if (!presented.has_certificate) {
    return absl::UnauthenticatedError(
        "the peer listener admits only sidecars, which present a client certificate");
  }
  for (const std::string& uri : presented.certificate_uris) {
    absl::StatusOr<tls::MeshIdentity> identity = tls::ParseSpiffeId(uri);
    if (identity.ok() && identity->kind == tls::IdentityKind::kSidecar &&
        identity->trust_domain == trust_domain_) {
      return identity->name;
    }
  }
  return absl::UnauthenticatedError(absl::StrCat(
      "the peer listener admits only sidecars: the client certificate needs a URI SAN ",
      tls::TrustDomainId(trust_domain_), "/sidecar/<name> (its URIs: ",
      presented.certificate_uris.empty() ? "none" : absl::StrJoin(presented.certificate_uris, ", "),
      ")"));
}

absl::StatusOr<std::string> Authenticator::Authenticate(const PresentedCredentials& presented) {
  std::optional<std::string> by_token;
  if (presented.authorization.has_value()) {
    const std::string& header = *presented.authorization;
    if (header.size() <= kBearer.size() ||
        !absl::EqualsIgnoreCase(header.substr(0, kBearer.size()), kBearer)) {
      return absl::UnauthenticatedError("authorization metadata: expected \"Bearer <token>\"");
    }
    const absl::string_view token =
        absl::StripAsciiWhitespace(absl::string_view(header).substr(kBearer.size()));
    if (tokens_ != nullptr) by_token = tokens_->Identify(token);
    if (!by_token.has_value()) {
      return absl::UnauthenticatedError(
          "the bearer token is not one of security.tokens (wrong, or replaced by a rotation)");
    }
  }
  absl::StatusOr<std::optional<std::string>> by_certificate = CertificateIdentity(presented);
  if (!by_certificate.ok()) return by_certificate.status();
  if (by_token.has_value() && by_certificate->has_value() && *by_token != **by_certificate) {
    return absl::PermissionDeniedError(absl::StrCat("the bearer token is for ", Quoted(*by_token),
                                                    " but the client certificate for ",
                                                    Quoted(**by_certificate)));
  }
  if (by_token.has_value()) return *by_token;
  if (by_certificate->has_value()) return **by_certificate;
  if (presented.has_certificate) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the client certificate names no identity: it needs a URI SAN ", app_prefix_,
        "<name> (its URIs: ",
        presented.certificate_uris.empty() ? "none"
                                           : absl::StrJoin(presented.certificate_uris, ", "),
        ")"));
  }
  return absl::UnauthenticatedError(absl::StrCat(
      "no credentials: send the metadata \"authorization: Bearer <token>\" (security.tokens) or "
      "a client certificate with the URI SAN ",
      app_prefix_, "<name>"));
}

}  // namespace callmesh::sidecar::security
