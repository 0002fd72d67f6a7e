// The transport of the Sidecar API (and of the transparent proxy, on the same port): plaintext
// without security.tls, else TLS with the sidecar's certificate and key, and, when
// security.tls.ca_file is set, client certificates requested and verified against it
// (required with require_client_certificate). The files are watched and re-read when they
// change (gRPC's FileWatcherCertificateProvider, every `reload_every`): rotating a certificate
// or a key is replacing its files, with no restart; connections already open keep theirs.
//
//   absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
//       SidecarServerCredentials(config.security());
//   // INVALID_ARGUMENT "security.tls.key_file /etc/x.key: cannot read: Permission denied"
//
// Thread-safe (a pure function of the config and the files).
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "callmesh/v1/config.pb.h"

namespace callmesh::sidecar::security {

// How often the TLS files are looked at for a rotation.
inline constexpr absl::Duration kTlsReloadEvery = absl::Seconds(1);

// The credentials for `security` (insecure when it has no tls). Checks first that each file is
// readable and holds PEM: INVALID_ARGUMENT naming the key and the file otherwise.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> SidecarServerCredentials(
    const v1::SecurityConfig& security);

}  // namespace callmesh::sidecar::security
