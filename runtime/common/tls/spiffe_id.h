// Mesh identities as SPIFFE IDs: the URI SAN that a callmesh certificate carries.
//
//   spiffe://<trust_domain>/app/<name>       an application (its mesh name)
//   spiffe://<trust_domain>/sidecar/<name>   a sidecar (callmeshd)
//
//   std::string id = SpiffeId({.trust_domain = "callmesh.local", .kind = IdentityKind::kApp,
//                              .name = "greeter"});   // "spiffe://callmesh.local/app/greeter"
//   absl::StatusOr<MeshIdentity> parsed = ParseSpiffeId(id);
//
// Trust domain grammar (SPIFFE): 1 to 255 characters of [a-z0-9._-]. Names follow the mesh
// service-name grammar (runtime/common/names.h). Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace callmesh::tls {

// The trust domain when the config names none.
inline constexpr char kDefaultTrustDomain[] = "callmesh.local";

enum class IdentityKind { kApp, kSidecar };

// "app" or "sidecar": the path segment of the kind.
absl::string_view IdentityKindName(IdentityKind kind);

struct MeshIdentity {
  std::string trust_domain;
  IdentityKind kind = IdentityKind::kApp;
  std::string name;

  bool operator==(const MeshIdentity& other) const {
    return trust_domain == other.trust_domain && kind == other.kind && name == other.name;
  }
};

// nullopt if `trust_domain` is valid, else the problem ("may only contain ...").
std::optional<std::string> TrustDomainProblem(absl::string_view trust_domain);
// INVALID_ARGUMENT "<field>: <problem>" for a bad trust domain.
absl::Status ValidateTrustDomain(absl::string_view trust_domain, absl::string_view field);

// "spiffe://<trust_domain>/<kind>/<name>". The parts are not validated (see ValidateIdentity).
std::string SpiffeId(const MeshIdentity& identity);
// "spiffe://<trust_domain>": the ID of the trust domain itself (the mesh CA's SAN).
std::string TrustDomainId(absl::string_view trust_domain);

// INVALID_ARGUMENT naming the bad part (trust domain or name) of `identity`.
absl::Status ValidateIdentity(const MeshIdentity& identity);

// Parses a callmesh SPIFFE ID. INVALID_ARGUMENT naming the problem for anything else (another
// scheme, a path that is not /app/<name> or /sidecar/<name>, a bad trust domain or name).
absl::StatusOr<MeshIdentity> ParseSpiffeId(absl::string_view uri);

// The trust domain of "spiffe://<trust_domain>" (the mesh CA's SAN). INVALID_ARGUMENT otherwise.
absl::StatusOr<std::string> ParseTrustDomainId(absl::string_view uri);

}  // namespace callmesh::tls
