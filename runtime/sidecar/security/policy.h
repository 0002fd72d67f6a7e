// The access policy of the Sidecar API, from SecurityConfig: who may register which service
// names from which addresses, who may call which services and methods, who is an admin. Every
// refusal is PERMISSION_DENIED naming the rule that refused (`security.access[2]`, or the
// default rule), so an operator can find it in the config.
//
//   Policy policy(config.security());
//   if (absl::Status s = policy.CheckCall("orders", "greeter", "helloworld.Greeter/SayHello");
//       !s.ok()) return s;  // "security.access[1] denies orders calling greeter ..."
//
// Patterns: runtime/sidecar/security/pattern.h. Thread-safe: immutable after construction.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "callmesh/v1/config.pb.h"

namespace callmesh::sidecar::security {

class Policy {
 public:
  explicit Policy(v1::SecurityConfig config);

  // Whether `identity` may register (or deregister) an instance of `service` at `address`.
  // Rules: security.registration; none = the default rule (own name and
  // `<name>-async-callback`, loopback addresses only).
  absl::Status CheckRegistration(absl::string_view identity, absl::string_view service,
                                 absl::string_view address) const;

  // Whether `identity` may register `service` from some address: the name part of
  // CheckRegistration. It decides who may manage what belongs to a service but is no instance
  // (its subscriptions: replay, unsubscribe, redrive of its event dead letters).
  absl::Status CheckServiceOwner(absl::string_view identity, absl::string_view service) const;

  // Whether `identity` may call `method` ("package.Service/Method", a leading '/' is ignored) of
  // `service`. The first matching rule of security.access decides; no rule matching = refused;
  // no rules at all = allowed.
  absl::Status CheckCall(absl::string_view identity, absl::string_view service,
                         absl::string_view method) const;

  // Named in security.admins.
  bool IsAdmin(absl::string_view identity) const;

 private:
  const v1::SecurityConfig config_;
};

}  // namespace callmesh::sidecar::security
