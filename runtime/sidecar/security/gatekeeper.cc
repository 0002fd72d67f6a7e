#include "runtime/sidecar/security/gatekeeper.h"

#include <grpcpp/server_context.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/common/metadata.h"
#include "runtime/common/quoted.h"
#include "runtime/sidecar/security/security_config_check.h"

namespace callmesh::sidecar::security {

Gatekeeper* Gatekeeper::Open() {
  static Gatekeeper* const kOpen = new Gatekeeper(nullptr, v1::SecurityConfig(), {});
  return kOpen;
}

absl::StatusOr<std::unique_ptr<Gatekeeper>> Gatekeeper::Create(const v1::SidecarConfig& config,
                                                               Clock* clock) {
  const v1::SecurityConfig& security = config.security();
  const v1::LimitsConfig& limits = config.limits();
  IdentityQuotas::Limits quotas;
  if (limits.max_registered_instances() > 0) {
    quotas.max_registered_instances = limits.max_registered_instances();
  }
  std::unique_ptr<Authenticator> authenticator;
  if (Authenticates(security)) {
    std::unique_ptr<TokenStore> tokens;
    if (!security.tokens().empty()) {
      absl::StatusOr<std::unique_ptr<TokenStore>> loaded =
          TokenStore::Load(security.tokens(), clock);
      if (!loaded.ok()) return loaded.status();
      tokens = *std::move(loaded);
    }
    authenticator = std::make_unique<Authenticator>(
        std::move(tokens),
        security.trust_domain().empty() ? "callmesh.local" : security.trust_domain());
    if (limits.max_instances_per_identity() > 0) {
      quotas.max_instances_per_identity = limits.max_instances_per_identity();
    }
    quotas.max_watchers_per_identity = limits.max_watchers_per_identity() > 0
                                           ? limits.max_watchers_per_identity()
                                           : std::max<uint32_t>(1, limits.max_watchers() / 4);
  }
  return std::unique_ptr<Gatekeeper>(new Gatekeeper(std::move(authenticator), security, quotas));
}

Gatekeeper::Gatekeeper(std::unique_ptr<Authenticator> authenticator, v1::SecurityConfig security,
                       IdentityQuotas::Limits limits)
    : authenticator_(std::move(authenticator)),
      peers_by_certificate_(authenticator_ != nullptr && !security.tls().ca_file().empty()),
      policy_(std::move(security)),
      quotas_(limits) {}

absl::StatusOr<std::string> Gatekeeper::AuthenticateSidecar(
    const grpc::ServerContextBase& rpc) const {
  if (!peers_by_certificate_) return std::string();
  return authenticator_->AuthenticateSidecar(CredentialsOf(rpc));
}

absl::StatusOr<Caller> Gatekeeper::Authenticate(const grpc::ServerContextBase& rpc) const {
  if (authenticator_ == nullptr) return Caller{};
  absl::StatusOr<std::string> identity = authenticator_->Authenticate(rpc);
  if (!identity.ok()) return identity.status();
  Caller caller;
  caller.admin = policy_.IsAdmin(*identity);
  caller.identity = *std::move(identity);
  return caller;
}

absl::StatusOr<std::string> Gatekeeper::SourceOf(const Caller& caller, absl::string_view claimed,
                                                 const grpc::ServerContextBase& rpc) const {
  if (caller.anonymous()) return std::string(claimed);
  const auto conflict = [&caller](absl::string_view claim, absl::string_view where) {
    return absl::PermissionDeniedError(absl::StrCat(
        where, " claims source ", Quoted(claim), " but the caller is authenticated as ",
        Quoted(caller.identity), "; the source of a call is its caller's identity"));
  };
  if (!claimed.empty() && claimed != caller.identity) return conflict(claimed, "the request");
  const auto& metadata = rpc.client_metadata();
  for (auto [it, end] = metadata.equal_range(kSourceMetadata); it != end; ++it) {
    const absl::string_view claim(it->second.data(), it->second.size());
    if (claim != caller.identity) return conflict(claim, "the callmesh-source metadata");
  }
  return caller.identity;
}

absl::Status Gatekeeper::CheckCall(const Caller& caller, absl::string_view service,
                                   absl::string_view method) const {
  if (caller.anonymous()) return absl::OkStatus();
  return policy_.CheckCall(caller.identity, service, method);
}

absl::StatusOr<bool> Gatekeeper::AdmitInstance(const Caller& caller, absl::string_view service,
                                               absl::string_view address) {
  if (!caller.anonymous()) {
    if (absl::Status s = policy_.CheckRegistration(caller.identity, service, address); !s.ok()) {
      return s;
    }
  }
  return quotas_.ReserveInstance(caller.identity, service, address);
}

absl::Status Gatekeeper::CheckActsFor(const Caller& caller, absl::string_view service) const {
  if (caller.anonymous() || caller.admin) return absl::OkStatus();
  return policy_.CheckServiceOwner(caller.identity, service);
}

absl::Status Gatekeeper::CheckDeregister(const Caller& caller, absl::string_view service,
                                         absl::string_view address) const {
  if (caller.anonymous() || caller.admin) return absl::OkStatus();
  if (absl::Status s = policy_.CheckRegistration(caller.identity, service, address); !s.ok()) {
    return s;
  }
  std::optional<std::string> owner = quotas_.OwnerOf(service, address);
  if (owner.has_value() && *owner != caller.identity) {
    return absl::PermissionDeniedError(
        absl::StrCat("instance ", Quoted(address), " of ", Quoted(service), " was registered by ",
                     Quoted(*owner), "; only it and security.admins may deregister it, not ",
                     Quoted(caller.identity)));
  }
  return absl::OkStatus();
}

void Gatekeeper::InstanceGone(absl::string_view service, absl::string_view address) {
  quotas_.ReleaseInstance(service, address);
}

bool Gatekeeper::MaySee(const Caller& caller, absl::string_view source) const {
  return caller.anonymous() || caller.admin || caller.identity == source;
}

absl::StatusOr<std::string> Gatekeeper::ListFilter(const Caller& caller,
                                                   absl::string_view requested) const {
  if (caller.anonymous() || caller.admin) return std::string(requested);
  if (!requested.empty() && requested != caller.identity) {
    return absl::PermissionDeniedError(
        absl::StrCat(Quoted(caller.identity), " asked for the calls of ", Quoted(requested),
                     "; only security.admins may see other identities' calls"));
  }
  return caller.identity;
}

absl::StatusOr<std::shared_ptr<void>> Gatekeeper::TakeWatchSlot(const Caller& caller) {
  if (caller.anonymous()) return std::shared_ptr<void>();
  return quotas_.TakeWatchSlot(caller.identity);
}

}  // namespace callmesh::sidecar::security
