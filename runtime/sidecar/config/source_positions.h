// Key paths into a configuration document ("services[1].retry.jitter",
// "services[0].method_retry[\"pkg.Svc/M\"]") and where each one was written, so that an error
// found after parsing (by validation) can still name the file, line and column of the value.
//
//   SourcePositions positions("sidecar.yaml");
//   positions.Set("services[0].name", {3, 11});
//   positions.Error("services[0].name", "is required")
//   // INVALID_ARGUMENT "sidecar.yaml:3:11: services[0].name: is required"
//
// Thread-safety: a SourcePositions is a plain value; the functions are pure.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace callmesh::sidecar {

// "parent.name" (or "name" at the top level).
std::string FieldPath(absl::string_view parent, absl::string_view name);
// "parent[index]".
std::string IndexPath(absl::string_view parent, int index);
// "parent[\"key\"]", the key C-escaped: an entry of a map with string keys.
std::string StringKeyPath(absl::string_view parent, absl::string_view key);

// A 1-based line and column in a source; 0 when unknown.
struct SourcePosition {
  int line = 0;
  int column = 0;
  bool known() const { return line > 0; }
};

// "<origin>:<line>:<column>: <path>: <problem>", leaving out an empty origin, an unknown
// position and an empty path.
std::string FormatSourceError(absl::string_view origin, SourcePosition position,
                              absl::string_view path, absl::string_view problem);

// The positions of the key paths of one source (a file, or a flag).
class SourcePositions {
 public:
  // `origin` names the source in messages: a file path, or a flag such as "--listen".
  explicit SourcePositions(std::string origin) : origin_(std::move(origin)) {}

  const std::string& origin() const { return origin_; }

  // Records where the value at `path` (or its key, when the value is null) was written.
  void Set(const std::string& path, SourcePosition position) { positions_[path] = position; }

  // Records that the value at `path` now comes from `origin` (a flag that overrides the file), so
  // that an error about it, or about anything under it, names that origin and no line.
  void SetOrigin(const std::string& path, std::string origin) { overrides_[path] = origin; }

  // INVALID_ARGUMENT "<origin>:<line>:<column>: <path>: <problem>" with the position of `path`,
  // else of its closest enclosing key path that was written (a value filled in by a default
  // points at the key that holds it), else with no position.
  absl::Status Error(absl::string_view path, absl::string_view problem) const;

 private:
  std::string origin_;
  std::map<std::string, SourcePosition> positions_;
  std::map<std::string, std::string> overrides_;
};

}  // namespace callmesh::sidecar
