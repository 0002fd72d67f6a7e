// The names of the gRPC status codes ("UNAVAILABLE" for 14), as they are written in configuration
// (retryable_codes) and shown to people. They are the names of absl::StatusCode and
// grpc::StatusCode, which share the google.rpc.Code numbering.
//
//   absl::StatusOr<int> code = ParseStatusCodeName("unavailable");   // 14
//
// Thread-safety: thread-safe. No dependency beyond Abseil, so the dispatcher and the config loader
// can both use it.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace callmesh {

// Parses a gRPC status code name to its number, in any case ("UNAVAILABLE", "unavailable" -> 14).
// The 17 names are OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND,
// ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED,
// OUT_OF_RANGE, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED.
// Errors: INVALID_ARGUMENT for any other text (numbers included), with a message that lists them.
absl::StatusOr<int> ParseStatusCodeName(absl::string_view name);

}  // namespace callmesh
