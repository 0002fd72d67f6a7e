#include "runtime/common/tls/spiffe_id.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/common/names.h"

namespace callmesh::tls {
namespace {

constexpr absl::string_view kScheme = "spiffe://";
constexpr size_t kMaxTrustDomain = 255;

}  // namespace

absl::string_view IdentityKindName(IdentityKind kind) {
  return kind == IdentityKind::kSidecar ? "sidecar" : "app";
}

std::optional<std::string> TrustDomainProblem(absl::string_view trust_domain) {
  if (trust_domain.empty()) return "must not be empty";
  if (trust_domain.size() > kMaxTrustDomain) {
    return absl::StrCat("must be at most ", kMaxTrustDomain, " characters, got ",
                        trust_domain.size());
  }
  for (char c : trust_domain) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) {
      return absl::StrCat("may only contain lower-case letters, digits, '.', '-' and '_', got \"",
                          trust_domain, "\"");
    }
  }
  return std::nullopt;
}

absl::Status ValidateTrustDomain(absl::string_view trust_domain, absl::string_view field) {
  if (std::optional<std::string> problem = TrustDomainProblem(trust_domain)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", *problem));
  }
  return absl::OkStatus();
}

std::string SpiffeId(const MeshIdentity& identity) {
  return absl::StrCat(kScheme, identity.trust_domain, "/", IdentityKindName(identity.kind), "/",
                      identity.name);
}

std::string TrustDomainId(absl::string_view trust_domain) {
  return absl::StrCat(kScheme, trust_domain);
}

absl::Status ValidateIdentity(const MeshIdentity& identity) {
  if (absl::Status s = ValidateTrustDomain(identity.trust_domain, "trust domain"); !s.ok()) {
    return s;
  }
  return ValidateServiceName(identity.name, absl::StrCat(IdentityKindName(identity.kind), " name"));
}

absl::StatusOr<MeshIdentity> ParseSpiffeId(absl::string_view uri) {
  if (!absl::StartsWith(uri, kScheme)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", uri, "\" is not a spiffe:// ID"));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(uri.substr(kScheme.size()), '/');
  if (parts.size() != 3 || (parts[1] != "app" && parts[1] != "sidecar")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", uri,
        "\" is not a mesh identity (spiffe://<trust-domain>/app/<name> or /sidecar/<name>)"));
  }
  MeshIdentity identity{.trust_domain = std::string(parts[0]),
                        .kind = parts[1] == "sidecar" ? IdentityKind::kSidecar : IdentityKind::kApp,
                        .name = std::string(parts[2])};
  if (absl::Status s = ValidateIdentity(identity); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", uri, "\": ", s.message()));
  }
  return identity;
}

absl::StatusOr<std::string> ParseTrustDomainId(absl::string_view uri) {
  if (!absl::StartsWith(uri, kScheme)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", uri, "\" is not a spiffe:// ID"));
  }
  absl::string_view domain = uri.substr(kScheme.size());
  if (absl::Status s = ValidateTrustDomain(domain, "trust domain"); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", uri, "\": ", s.message()));
  }
  return std::string(domain);
}

}  // namespace callmesh::tls
