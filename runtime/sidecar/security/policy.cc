#include "runtime/sidecar/security/policy.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/common/quoted.h"
#include "runtime/sidecar/security/pattern.h"

namespace callmesh::sidecar::security {
namespace {

// Where an instance registered under the default rule, or a rule naming no addresses, may be.
const std::vector<std::string>& LoopbackAddresses() {
  static const auto* const kLoopback =
      new std::vector<std::string>{"127.0.0.1:*", "[::1]:*", "localhost:*"};
  return *kLoopback;
}

std::vector<std::string> ToVector(const google::protobuf::RepeatedPtrField<std::string>& list) {
  return {list.begin(), list.end()};
}

// The default registration rule: an app owns its own name and `<name>-async-callback`.
bool DefaultRuleGives(absl::string_view identity, absl::string_view service) {
  return service == identity || service == absl::StrCat(identity, "-async-callback");
}

// Whether `rule` names `identity` among its apps and `service` among its services.
bool RuleGives(const v1::RegistrationRule& rule, absl::string_view identity,
               absl::string_view service) {
  return AnyPatternMatches(ToVector(rule.apps()), identity, identity) &&
         AnyPatternMatches(ToVector(rule.services()), service, identity);
}

// Where `rule` lets its instances be: its addresses, or loopback when it names none.
std::vector<std::string> RuleAddresses(const v1::RegistrationRule& rule) {
  return rule.addresses().empty() ? LoopbackAddresses() : ToVector(rule.addresses());
}

}  // namespace

Policy::Policy(v1::SecurityConfig config) : config_(std::move(config)) {}

absl::Status Policy::CheckRegistration(absl::string_view identity, absl::string_view service,
                                       absl::string_view address) const {
  if (config_.registration().empty()) {
    if (!DefaultRuleGives(identity, service)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the default registration rule (no security.registration) lets ", Quoted(identity),
          " register only ", Quoted(identity), " and ",
          Quoted(absl::StrCat(identity, "-async-callback")), ", not ", Quoted(service)));
    }
    if (!AnyPatternMatches(LoopbackAddresses(), address, identity)) {
      return absl::PermissionDeniedError(absl::StrCat(
          "the default registration rule (no security.registration) accepts loopback addresses "
          "only (",
          absl::StrJoin(LoopbackAddresses(), ", "), "), not ", Quoted(address)));
    }
    return absl::OkStatus();
  }
  std::optional<int> wrong_address;
  for (int i = 0; i < config_.registration_size(); ++i) {
    const v1::RegistrationRule& rule = config_.registration(i);
    if (!RuleGives(rule, identity, service)) continue;
    if (AnyPatternMatches(RuleAddresses(rule), address, identity)) return absl::OkStatus();
    if (!wrong_address.has_value()) wrong_address = i;
  }
  if (wrong_address.has_value()) {
    return absl::PermissionDeniedError(
        absl::StrCat("security.registration[", *wrong_address, "] lets ", Quoted(identity),
                     " register ", Quoted(service), " only at ",
                     absl::StrJoin(RuleAddresses(config_.registration(*wrong_address)), ", "),
                     ", not at ", Quoted(address)));
  }
  return absl::PermissionDeniedError(absl::StrCat("no rule in security.registration lets ",
                                                  Quoted(identity), " register ", Quoted(service)));
}

absl::Status Policy::CheckServiceOwner(absl::string_view identity,
                                       absl::string_view service) const {
  if (config_.registration().empty()) {
    if (DefaultRuleGives(identity, service)) return absl::OkStatus();
    return absl::PermissionDeniedError(
        absl::StrCat("the default registration rule (no security.registration) gives ",
                     Quoted(identity), " only ", Quoted(identity), " and ",
                     Quoted(absl::StrCat(identity, "-async-callback")), ", not ", Quoted(service)));
  }
  for (const v1::RegistrationRule& rule : config_.registration()) {
    if (RuleGives(rule, identity, service)) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("no rule in security.registration gives ",
                                                  Quoted(identity), " ", Quoted(service)));
}

absl::Status Policy::CheckCall(absl::string_view identity, absl::string_view service,
                               absl::string_view method) const {
  if (config_.access().empty()) return absl::OkStatus();
  if (!method.empty() && method.front() == '/') method.remove_prefix(1);
  for (int i = 0; i < config_.access_size(); ++i) {
    const v1::AccessRule& rule = config_.access(i);
    if (!AnyPatternMatches(ToVector(rule.callers()), identity, identity) ||
        !AnyPatternMatches(ToVector(rule.services()), service, identity) ||
        (!rule.methods().empty() &&
         !AnyPatternMatches(ToVector(rule.methods()), method, identity))) {
      continue;
    }
    if (rule.action() == v1::AccessRule::ALLOW) return absl::OkStatus();
    return absl::PermissionDeniedError(absl::StrCat("security.access[", i, "] denies ",
                                                    Quoted(identity), " calling ", Quoted(method),
                                                    " of ", Quoted(service)));
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "no rule in security.access allows ", Quoted(identity), " to call ", Quoted(method), " of ",
      Quoted(service), " (a policy with rules denies what it does not allow)"));
}

bool Policy::IsAdmin(absl::string_view identity) const {
  return std::find(config_.admins().begin(), config_.admins().end(), identity) !=
         config_.admins().end();
}

}  // namespace callmesh::sidecar::security
