// Who is calling the Sidecar API: the mesh identity (an app name) that a caller proves with a
// bearer token (`authorization: Bearer <token>`, security.tokens) and/or a TLS client
// certificate whose URI SAN is `spiffe://<trust_domain>/app/<name>` (verified against
// security.tls.ca_file by the TLS handshake). Both at once must name the same identity.
//
//   Authenticator authenticator(std::move(tokens), "callmesh.local");
//   absl::StatusOr<std::string> identity = authenticator.Authenticate(*context);
//   // UNAUTHENTICATED "no credentials: ..." / "the bearer token is not ..." ;
//   // PERMISSION_DENIED "the bearer token is for \"a\" but the client certificate for \"b\""
//
// Thread-safe.
#pragma once

#include <grpcpp/server_context.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/sidecar/security/token_store.h"

namespace callmesh::sidecar::security {

// What a caller presented, as read from its RPC.
struct PresentedCredentials {
  // The `authorization` metadata, if sent.
  std::optional<std::string> authorization;
  // Whether the TLS peer presented a (verified) client certificate.
  bool has_certificate = false;
  // The URI SANs of that certificate.
  std::vector<std::string> certificate_uris;
};

// The credentials `rpc` carries.
PresentedCredentials CredentialsOf(const grpc::ServerContextBase& rpc);

class Authenticator {
 public:
  // `tokens` may be nullptr: no token authenticates anyone. Certificates name identities in
  // `trust_domain`.
  Authenticator(std::unique_ptr<TokenStore> tokens, std::string trust_domain);

  // The identity of the caller of `rpc`, or UNAUTHENTICATED / PERMISSION_DENIED (see above).
  absl::StatusOr<std::string> Authenticate(const grpc::ServerContextBase& rpc) {
    return Authenticate(CredentialsOf(rpc));
  }
  absl::StatusOr<std::string> Authenticate(const PresentedCredentials& presented);

  // The sidecar (cluster mode: a peer forwarding a call) named by the verified client certificate
  // of `presented`: its URI SAN `spiffe://<trust_domain>/sidecar/<name>`. UNAUTHENTICATED naming
  // what was presented otherwise (no certificate, or one of an app, or of another trust domain).
  absl::StatusOr<std::string> AuthenticateSidecar(const PresentedCredentials& presented) const;

 private:
  // The app named by the certificate's SPIFFE URI SAN; nullopt if it names none in the trust
  // domain; UNAUTHENTICATED if it names two.
  absl::StatusOr<std::optional<std::string>> CertificateIdentity(
      const PresentedCredentials& presented) const;

  const std::unique_ptr<TokenStore> tokens_;
  const std::string trust_domain_;
  const std::string app_prefix_;  // "spiffe://<trust_domain>/app/"
};

}  // namespace callmesh::sidecar::security
