// How an application (the SDK's Mesh and ServiceHost) and the `callmesh` CLI prove who they are to
// their sidecar: a bearer token from a file and/or a client certificate, from flags or the
// environment, in the manner of Dapr's DAPR_API_TOKEN. The one place that builds the channel to
// the sidecar for both.
//
//   CALLMESH_TOKEN_FILE   file holding the token, sent as `authorization: Bearer <token>` on every
//                         call; re-read when the file changes (token_file.h)
//   CALLMESH_TLS_CA       CA bundle of the mesh: turns TLS on; the sidecar must present a
//                         certificate chaining to it with a sidecar identity (spiffe://…/sidecar/…)
//   CALLMESH_TLS_CERT     this app's certificate (spiffe://<td>/app/<name>) and key, for mTLS;
//   CALLMESH_TLS_KEY      both or neither; re-read when they change
//
//   absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
//       CreateSidecarChannel("127.0.0.1:4770", ClientCredentialsFromEnvironment());
//
// A token travels on plaintext too (loopback), as Dapr's does; over a network use TLS.
// Thread-safe: the returned channel may be shared.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/support/channel_arguments.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/common/tls/tls_credentials.h"

namespace callmesh::tls {

inline constexpr char kTokenFileVariable[] = "CALLMESH_TOKEN_FILE";
inline constexpr char kTlsCaVariable[] = "CALLMESH_TLS_CA";
inline constexpr char kTlsCertVariable[] = "CALLMESH_TLS_CERT";
inline constexpr char kTlsKeyVariable[] = "CALLMESH_TLS_KEY";

struct ClientCredentialOptions {
  // Empty = send no token.
  std::string token_file;
  // Empty ca_file = plaintext.
  TlsFiles tls;

  bool empty() const { return token_file.empty() && tls.empty(); }
};

// The options named by the environment variables above (unset or empty = not given). `getenv`
// is injectable for tests and the CLI.
ClientCredentialOptions ClientCredentialsFromEnvironment(
    const std::function<const char*(const char*)>& getenv = nullptr);

// Each field of `flags` that is set, else the one of `environment`.
ClientCredentialOptions MergeCredentials(const ClientCredentialOptions& flags,
                                         const ClientCredentialOptions& environment);

// A channel to the sidecar at `address` with those credentials. INVALID_ARGUMENT naming the file
// (and `origin`, e.g. "CALLMESH_TLS_CA" or "--tls-ca") when a file cannot be read, or when TLS
// files are given without a CA.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateSidecarChannel(
    const std::string& address, const ClientCredentialOptions& options,
    const grpc::ChannelArguments& args = grpc::ChannelArguments());

}  // namespace callmesh::tls
