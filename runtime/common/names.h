// The one grammar of the names and addresses that cross callmesh's API: mesh service names, gRPC
// method paths, topics and "host:port" addresses. The config loader, the sidecar's RPCs
// (RegisterService, Invoke, InvokeAsync, Cast), the SDK and the CLI all check them here, so a name
// is accepted or refused the same way wherever it is written.
//
//   if (absl::Status s = ValidateServiceName(request.name(), "name"); !s.ok()) return s;
//   // INVALID_ARGUMENT "name: may only contain letters, digits, '.', '_' and '-', got \"a b\""
//
//   absl::StatusOr<std::string> path = MethodPath("greeter.v1.Greeter/SayHello", "method");
//   // "/greeter.v1.Greeter/SayHello"
//
// Every rule comes in two forms: `...Problem(text)` returns std::nullopt when `text` is valid, else
// the problem as a phrase that follows a field name ("must be host:port, got \"x\""), for callers
// that build their own error (the config loader adds file, line and key path); `Validate...(text,
// field)` returns OK or INVALID_ARGUMENT with the message "<field>: <problem>".
//
// Grammar:
//   service name  1 to 128 characters of [A-Za-z0-9._-].
//   method        "package.Service/Method", a leading '/' accepted: the part before the slash is
//                 one or more identifiers joined by '.' (the package is optional), the part after
//                 it one identifier; an identifier is [A-Za-z_][A-Za-z0-9_]*.
//   topic         as a service name (letters, digits, '.', '_', '-'; 1 to 128 characters).
//   address       "host:port". host: an RFC 1123 host name (dot-separated labels of 1 to 63
//                 letters, digits and '-', not starting or ending with '-'; at most 253
//                 characters; a trailing '.' accepted), a dotted IPv4 address (four numbers 0 to
//                 255), or an IPv6 address in brackets ("[::1]", a zone "%eth0" accepted).
//                 port: decimal, 1 to 65535 to dial; 0 to 65535 to listen (0 = any free port).
//
// Thread-safety: every function is pure and thread-safe.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace callmesh {

// A mesh service name (see the grammar above).
std::optional<std::string> ServiceNameProblem(absl::string_view name);
absl::Status ValidateServiceName(absl::string_view name, absl::string_view field);

// The callback service that receives the completions of `source`'s async calls when they name
// none: "<source>-async-callback".
std::string ConventionCallback(absl::string_view source);

// A gRPC method "package.Service/Method" or "/package.Service/Method".
std::optional<std::string> MethodProblem(absl::string_view method);

// Normalizes a gRPC method (see MethodProblem) to the wire path "/package.Service/Method".
// INVALID_ARGUMENT naming `field` if it is not of that form.
absl::StatusOr<std::string> MethodPath(absl::string_view method, absl::string_view field);

// A pub/sub topic.
std::optional<std::string> TopicProblem(absl::string_view topic);
absl::Status ValidateTopic(absl::string_view topic, absl::string_view field);

// Which ports an address may have: an address to connect to needs a real port; an address to
// listen on may have port 0, which asks the system for a free port.
enum class PortUse {
  kDial,    // 1 to 65535
  kListen,  // 0 to 65535
};

// A "host:port" address (see the grammar above).
std::optional<std::string> AddressProblem(absl::string_view address, PortUse use);

// An address to connect to (port 1 to 65535): a service instance, the sidecar.
absl::Status ValidateAddress(absl::string_view address, absl::string_view field);

// An address to listen on (port 0 to 65535).
absl::Status ValidateListenAddress(absl::string_view address, absl::string_view field);

// The caller-supplied parts of a call's context that travel to the target as metadata: `source`
// (empty, or a mesh service name) and `parent_cid` (empty, or 1 to 128 printable ASCII
// characters). A value gRPC could not send as metadata would otherwise fail every attempt later.
absl::Status ValidateCallContext(absl::string_view source, absl::string_view parent_cid);

}  // namespace callmesh
