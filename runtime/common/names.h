// Validation of the names and addresses that cross callmesh's API: mesh service names, gRPC method
// paths, "host:port" addresses. Each error is INVALID_ARGUMENT and names the offending `field`.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace callmesh {

// A mesh service name: 1 to 128 characters of [A-Za-z0-9._-].
// The callback service that receives the completions of `source`'s async calls when they name
// none: "<source>-async-callback".
std::string ConventionCallback(absl::string_view source);

absl::Status ValidateServiceName(absl::string_view name, absl::string_view field);

// The caller-supplied parts of a call's context that travel to the target as metadata: `source`
// (empty, or a mesh service name) and `parent_cid` (empty, or 1 to 128 printable ASCII
// characters). A value gRPC could not send as metadata would otherwise fail every attempt later.
absl::Status ValidateCallContext(absl::string_view source, absl::string_view parent_cid);

// "host:port" with a port from 0 to 65535; IPv6 hosts in brackets ("[::1]:4770").
absl::Status ValidateAddress(absl::string_view address, absl::string_view field);

// Normalizes a gRPC method name "package.Service/Method" (a leading "/" is accepted) to the wire
// path "/package.Service/Method". INVALID_ARGUMENT naming `field` if it is not of that form.
absl::StatusOr<std::string> MethodPath(absl::string_view method, absl::string_view field);

}  // namespace callmesh
