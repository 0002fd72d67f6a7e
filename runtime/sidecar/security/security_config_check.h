// The rules of SidecarConfig.security (and of a `listen` address that needs it), checked with
// the rest of the config by ValidateConfig (runtime/sidecar/config/config_validation.h), which
// places the error at its file, line and key.
//
//   if (auto v = FindSecurityViolation(config)) return Violation{v->path, v->problem};
//
// Rules:
//   - a `listen` host other than loopback (127.0.0.0/8, ::1, localhost) needs security.tls
//     (cert_file, key_file) and authentication (security.tokens or security.tls.ca_file), unless
//     security.insecure_development is true;
//   - a security block authenticates: it needs security.tokens or security.tls.ca_file, unless
//     insecure_development is true;
//   - trust_domain: 1 to 255 of [a-z0-9._-] (SPIFFE), or empty for "callmesh.local";
//   - tls: cert_file and key_file both set; require_client_certificate needs ca_file;
//   - tokens[i]: app a mesh service name, file set; admins[i]: mesh service names;
//   - registration[i] and access[i]: at least one identity and one service pattern; every
//     pattern non-empty, printable ASCII, with no `{` other than in `{app}`.
//
// Thread-safe (pure).
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "callmesh/v1/config.pb.h"

namespace callmesh::sidecar::security {

struct SecurityViolation {
  std::string path;     // e.g. "security.access[1].services[0]"
  std::string problem;  // e.g. "must not be empty"
};

std::optional<SecurityViolation> FindSecurityViolation(const v1::SidecarConfig& config);

// True when `security` makes callers authenticate: it names tokens or a client CA.
bool Authenticates(const v1::SecurityConfig& security);

// True for a listen host on loopback: 127.0.0.0/8, ::1 or localhost.
bool IsLoopbackListen(absl::string_view listen);

}  // namespace callmesh::sidecar::security
