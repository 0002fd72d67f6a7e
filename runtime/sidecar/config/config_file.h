// Reading of a configuration file into memory, with errors that name the file.
//
//   absl::StatusOr<std::string> text = ReadConfigFile("/etc/callmesh/sidecar.yaml");
//
// Thread-safety: thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace callmesh::sidecar {

// The largest configuration file read: 16 MiB.
inline constexpr size_t kMaxConfigFileBytes = 16 << 20;

// The contents of the file at `path`. Errors: the status code matching errno (NOT_FOUND for a
// missing file, PERMISSION_DENIED, FAILED_PRECONDITION for a directory, ...) with a message
// naming `path` and the errno text; INVALID_ARGUMENT for a file larger than kMaxConfigFileBytes.
absl::StatusOr<std::string> ReadConfigFile(const std::string& path);

}  // namespace callmesh::sidecar
