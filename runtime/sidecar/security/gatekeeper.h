// What the Sidecar API asks before it acts on a request: who is calling (authentication), what
// the call's `source` is, whether the caller may call a service, register or deregister an
// instance, see a call, or open another completion watcher. One object per sidecar, built from
// SidecarConfig; the RPC handlers (runtime/sidecar/server) call it first thing.
//
// With authentication off (no security.tokens and no security.tls.ca_file: the loopback
// quickstart), every caller is anonymous and everything is allowed as before security existed:
// the source is what the request claims, every call is visible. Only the overall cap on
// registered instances applies.
//
// With authentication on:
//   - no or bad credentials: UNAUTHENTICATED (authenticator.h);
//   - the source of a call is the caller's identity; a request claiming another (`source` in the
//     body or `callmesh-source` metadata) is PERMISSION_DENIED naming both;
//   - calls, registrations: policy.h (PERMISSION_DENIED naming the rule);
//   - calls (Get/Wait/List/Cancel/Watch) and dead letters: visible to their source and admins;
//   - quotas per identity: identity_quotas.h.
//
// Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "callmesh/v1/config.pb.h"
#include "callmesh/v1/sidecar.pb.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/security/authenticator.h"
#include "runtime/sidecar/security/identity_quotas.h"
#include "runtime/sidecar/security/policy.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace callmesh::sidecar::security {

// The caller of one RPC.
struct Caller {
  // The authenticated identity; "" when authentication is off.
  std::string identity;
  bool admin = false;

  bool anonymous() const { return identity.empty(); }
};

class Gatekeeper {
 public:
  // A gatekeeper that authenticates no one and allows everything (no caps).
  static Gatekeeper* Open();

  // The gatekeeper of `config` (complete and valid, as ValidateConfig leaves it): reads the token
  // files (INVALID_ARGUMENT naming an unreadable or empty one). `clock` (not owned) paces the
  // re-reading of token files.
  static absl::StatusOr<std::unique_ptr<Gatekeeper>> Create(const v1::SidecarConfig& config,
                                                            Clock* clock);

  // True when callers must authenticate (security.tokens or security.tls.ca_file set).
  bool authenticating() const { return authenticator_ != nullptr; }

  absl::StatusOr<Caller> Authenticate(const grpc::ServerContextBase& rpc) const;

  // Cluster mode, the peer listener: the sidecar forwarding a call. With mutual TLS configured
  // (security.tls.ca_file) only a client certificate of a sidecar of the trust domain is admitted
  // (its name is returned; UNAUTHENTICATED otherwise); without it every peer is admitted as ""
  // (the configuration allows that only on loopback or with insecure_development).
  absl::StatusOr<std::string> AuthenticateSidecar(const grpc::ServerContextBase& rpc) const;

  // The source of a call made by `caller`: its identity. `claimed` is the request body's
  // `source` ("" = none); the `callmesh-source` metadata of `rpc` is a claim too. PERMISSION_DENIED
  // naming both when a claim differs from the identity. Anonymous: `claimed` unchanged.
  absl::StatusOr<std::string> SourceOf(const Caller& caller, absl::string_view claimed,
                                       const grpc::ServerContextBase& rpc) const;

  // Whether `caller` may call `method` ("/package.Service/Method") of `service`.
  absl::Status CheckCall(const Caller& caller, absl::string_view service,
                         absl::string_view method) const;

  // Before registering `service` at `address`: the policy, then the quotas. True if the instance
  // is new and was counted now (give it back with InstanceGone if the registry refuses it);
  // false for a registration refreshed.
  absl::StatusOr<bool> AdmitInstance(const Caller& caller, absl::string_view service,
                                     absl::string_view address);
  // Before deregistering: the policy, and only the identity that registered the instance or an
  // admin. PERMISSION_DENIED naming the owner otherwise.
  absl::Status CheckDeregister(const Caller& caller, absl::string_view service,
                               absl::string_view address) const;
  // The instance is gone from the registry (deregistered, or its registration failed).
  void InstanceGone(absl::string_view service, absl::string_view address);

  // Whether `caller` may manage the subscriptions of `service` (replay, unsubscribe, list and
  // redrive its event dead letters): admins, anonymous callers, and identities the registration
  // policy gives `service` (Policy::CheckServiceOwner).
  absl::Status CheckActsFor(const Caller& caller, absl::string_view service) const;

  // Whether `caller` may see (get, wait for, cancel, watch, redrive) a call whose source is
  // `source`: its source and admins.
  bool MaySee(const Caller& caller, absl::string_view source) const;

  // The `source` filter of a listing by `caller` that asked for `requested` ("" = every source):
  // admins and anonymous callers get what they asked for; others their own identity, and
  // PERMISSION_DENIED naming both if they asked for another.
  absl::StatusOr<std::string> ListFilter(const Caller& caller, absl::string_view requested) const;

  // A WatchCompletions slot of `caller` (nullptr handle for an anonymous one), given back when
  // the handle is destroyed; RESOURCE_EXHAUSTED past limits.max_watchers_per_identity.
  absl::StatusOr<std::shared_ptr<void>> TakeWatchSlot(const Caller& caller);

 private:
  Gatekeeper(std::unique_ptr<Authenticator> authenticator, v1::SecurityConfig security,
             IdentityQuotas::Limits limits);

  const std::unique_ptr<Authenticator> authenticator_;
  // security.tls.ca_file is set: peers are sidecars proven by their certificates.
  const bool peers_by_certificate_;
  const Policy policy_;
  IdentityQuotas quotas_;
};

}  // namespace callmesh::sidecar::security
