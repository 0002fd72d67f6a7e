// The one place that turns PEM files into gRPC credentials, for the sidecar (its Sidecar API
// server and its outbound mTLS to targets and callback services), the SDK (Mesh, ServiceHost) and
// the CLI.
//
//   TlsFiles files{.ca_file = "certs/ca.crt", .cert_file = "certs/sidecar-a.crt",
//                  .key_file = "certs/sidecar-a.key"};
//   // The sidecar dialing targets: presents its certificate, accepts only peers that chain to
//   // the CA and carry an app identity of the trust domain.
//   absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
//       MeshChannelCredentials(files, {.kind = IdentityKind::kApp,
//                                      .trust_domain = "callmesh.local"});
//
// Files are read by gRPC's FileWatcherCertificateProvider, which re-reads them every
// `kCertificateReloadInterval`: replacing a certificate and key (rename both into place; the
// provider keeps the old pair while the two do not match) rotates them without a restart. New
// connections use the new pair; established connections keep theirs.
//
// Peers are verified against `ca_file` (chain and validity) and then by their URI SAN: the mesh
// addresses peers by host:port, not by a host name in their certificate, so the host-name check
// is replaced by a check of the SPIFFE identity (spiffe_id.h).
//
// Errors (INVALID_ARGUMENT) name the file that is missing or unreadable, and the field
// ("ca_file") it came from. Thread-safe; credentials may be shared by any number of channels.
#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/common/tls/spiffe_id.h"

namespace callmesh::tls {

// How often certificate files are checked for changes.
inline constexpr unsigned int kCertificateReloadIntervalSeconds = 1;

struct TlsFiles {
  // CA bundle that peers must chain to. Required, except by a server that requires no client
  // certificate (ValidateServerTlsFiles).
  std::string ca_file;
  // This side's certificate chain and private key. Both or neither (a client without them is a
  // one-way TLS client that authenticates otherwise, e.g. with a token).
  std::string cert_file;
  std::string key_file;

  bool empty() const { return ca_file.empty() && cert_file.empty() && key_file.empty(); }
};

// Which identities a peer may have.
struct PeerRule {
  IdentityKind kind = IdentityKind::kApp;
  // Empty = any trust domain (the CA alone says which mesh the peer belongs to).
  std::string trust_domain;
};

// INVALID_ARGUMENT if a required file is missing, unreadable or holds no PEM block of its kind
// (CERTIFICATE, PRIVATE KEY), or only one of cert and key is set; `prefix` is put before the field
// names ("security.tls." gives "security.tls.ca_file").
absl::Status ValidateTlsFiles(const TlsFiles& files, bool require_identity,
                              absl::string_view prefix = "");

// The same for a server: cert_file and key_file are required; ca_file only with
// `require_client_certificate` (a server without a CA requests no client certificates and
// authenticates its callers otherwise, e.g. with tokens).
absl::Status ValidateServerTlsFiles(const TlsFiles& files, bool require_client_certificate,
                                    absl::string_view prefix = "");

// Client credentials: verify the server against `files.ca_file` and `peer`, present
// `files.cert_file` when set.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MeshChannelCredentials(
    const TlsFiles& files, const PeerRule& peer);

// Server credentials presenting `files.cert_file`. With `require_client_certificate`, a client
// that presents no certificate chaining to `files.ca_file` fails the handshake; otherwise a
// certificate is requested and, if presented, verified; without `files.ca_file` (allowed only
// when no client certificate is required) none is requested. With `only_peers`, every call from a
// peer whose certificate is not an identity that rule allows is refused with PERMISSION_DENIED
// (naming the peer) before any handler runs (an AuthMetadataProcessor).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MeshServerCredentials(
    const TlsFiles& files, bool require_client_certificate,
    std::optional<PeerRule> only_peers = std::nullopt);

// The mesh identity of the peer of a server call, from its verified certificate's URI SAN;
// nullopt for a peer without a certificate or without a callmesh SPIFFE ID.
std::optional<MeshIdentity> PeerIdentity(const grpc::AuthContext& context);

}  // namespace callmesh::tls
