#include "runtime/sidecar/security/security_config_check.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/names.h"
#include "runtime/common/quoted.h"

namespace callmesh::sidecar::security {
namespace {

using Maybe = std::optional<SecurityViolation>;

std::optional<std::string> PatternProblem(absl::string_view pattern) {
  if (pattern.empty()) return "must not be empty";
  for (char c : pattern) {
    if (c < 0x21 || c > 0x7e)
      return absl::StrCat("must be printable ASCII without spaces, got ", Quoted(pattern));
  }
  std::string rest(pattern);
  for (size_t at = rest.find("{app}"); at != std::string::npos; at = rest.find("{app}")) {
    rest.erase(at, 5);
  }
  if (rest.find_first_of("{}") != std::string::npos) {
    return absl::StrCat("the only placeholder is {app}, got ", Quoted(pattern));
  }
  return std::nullopt;
}

Maybe CheckPatterns(const google::protobuf::RepeatedPtrField<std::string>& patterns,
                    const std::string& path, bool required) {
  if (required && patterns.empty()) {
    return SecurityViolation{path, "at least one pattern is required (\"*\" for every one)"};
  }
  for (int i = 0; i < patterns.size(); ++i) {
    if (auto problem = PatternProblem(patterns[i])) {
      return SecurityViolation{absl::StrCat(path, "[", i, "]"), *problem};
    }
  }
  return std::nullopt;
}

Maybe CheckTrustDomain(absl::string_view domain) {
  if (domain.empty()) return std::nullopt;
  if (domain.size() > 255) return SecurityViolation{"security.trust_domain", "longer than 255"};
  for (char c : domain) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
      return SecurityViolation{
          "security.trust_domain",
          absl::StrCat("may only contain a-z, 0-9, '.', '_' and '-', got ", Quoted(domain))};
    }
  }
  return std::nullopt;
}

}  // namespace

bool Authenticates(const v1::SecurityConfig& security) {
  return !security.tokens().empty() || !security.tls().ca_file().empty();
}

bool IsLoopbackListen(absl::string_view listen) {
  const size_t colon = listen.rfind(':');
  absl::string_view host = colon == absl::string_view::npos ? listen : listen.substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

std::optional<SecurityViolation> FindSecurityViolation(const v1::SidecarConfig& config) {
  const v1::SecurityConfig& security = config.security();
  const bool has_tls = security.has_tls();
  const bool authenticates = Authenticates(security);
  if (!IsLoopbackListen(config.listen()) && !(has_tls && authenticates) &&
      !security.insecure_development()) {
    return SecurityViolation{
        "listen",
        absl::StrCat(Quoted(config.listen()),
                     " is not a loopback address, so callers must authenticate over TLS: add "
                     "security.tls (cert_file, key_file) and security.tokens or "
                     "security.tls.ca_file, or set security.insecure_development: true for a "
                     "development set-up")};
  }
  if (!config.has_security()) return std::nullopt;
  if (!authenticates && !security.insecure_development()) {
    return SecurityViolation{
        "security",
        "authenticates no one: add tokens or tls.ca_file (or insecure_development: true)"};
  }
  if (auto v = CheckTrustDomain(security.trust_domain())) return v;
  if (has_tls) {
    const v1::TlsConfig& tls = security.tls();
    if (tls.cert_file().empty()) return SecurityViolation{"security.tls.cert_file", "is required"};
    if (tls.key_file().empty()) return SecurityViolation{"security.tls.key_file", "is required"};
    if (tls.require_client_certificate() && tls.ca_file().empty()) {
      return SecurityViolation{"security.tls.require_client_certificate",
                               "needs security.tls.ca_file to verify client certificates against"};
    }
  }
  for (int i = 0; i < security.tokens_size(); ++i) {
    const std::string path = absl::StrCat("security.tokens[", i, "]");
    if (auto problem = ServiceNameProblem(security.tokens(i).app())) {
      return SecurityViolation{path + ".app", *problem};
    }
    if (security.tokens(i).file().empty()) return SecurityViolation{path + ".file", "is required"};
  }
  for (int i = 0; i < security.admins_size(); ++i) {
    if (auto problem = ServiceNameProblem(security.admins(i))) {
      return SecurityViolation{absl::StrCat("security.admins[", i, "]"), *problem};
    }
  }
  for (int i = 0; i < security.registration_size(); ++i) {
    const std::string path = absl::StrCat("security.registration[", i, "]");
    const v1::RegistrationRule& rule = security.registration(i);
    if (auto v = CheckPatterns(rule.apps(), path + ".apps", true)) return v;
    if (auto v = CheckPatterns(rule.services(), path + ".services", true)) return v;
    if (auto v = CheckPatterns(rule.addresses(), path + ".addresses", false)) return v;
  }
  for (int i = 0; i < security.access_size(); ++i) {
    const std::string path = absl::StrCat("security.access[", i, "]");
    const v1::AccessRule& rule = security.access(i);
    if (auto v = CheckPatterns(rule.callers(), path + ".callers", true)) return v;
    if (auto v = CheckPatterns(rule.services(), path + ".services", true)) return v;
    if (auto v = CheckPatterns(rule.methods(), path + ".methods", false)) return v;
  }
  return std::nullopt;
}

}  // namespace callmesh::sidecar::security
