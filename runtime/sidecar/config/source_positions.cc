#include "runtime/sidecar/config/source_positions.h"

#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace callmesh::sidecar {
namespace {

// The ends of the prefixes of `path` that are key paths themselves (cut at '.' or '[' outside
// quoted map keys), longest first, `path` included.
std::vector<size_t> PrefixEnds(absl::string_view path) {
  std::vector<size_t> ends;
  bool quoted = false;
  for (size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '.' || c == '[') {
      ends.push_back(i);
    }
  }
  ends.push_back(path.size());
  return {ends.rbegin(), ends.rend()};
}

}  // namespace

std::string FieldPath(absl::string_view parent, absl::string_view name) {
  return parent.empty() ? std::string(name) : absl::StrCat(parent, ".", name);
}

std::string IndexPath(absl::string_view parent, int index) {
  return absl::StrCat(parent, "[", index, "]");
}

std::string StringKeyPath(absl::string_view parent, absl::string_view key) {
  return absl::StrCat(parent, "[\"", absl::CEscape(key), "\"]");
}

std::string FormatSourceError(absl::string_view origin, SourcePosition position,
                              absl::string_view path, absl::string_view problem) {
  std::string out(origin);
  if (position.known()) absl::StrAppend(&out, ":", position.line, ":", position.column);
  if (!out.empty()) absl::StrAppend(&out, ": ");
  if (!path.empty()) absl::StrAppend(&out, path, ": ");
  absl::StrAppend(&out, problem);
  return out;
}

absl::Status SourcePositions::Error(absl::string_view path, absl::string_view problem) const {
  for (size_t end : PrefixEnds(path)) {
    const std::string prefix(path.substr(0, end));
    if (auto flag = overrides_.find(prefix); flag != overrides_.end()) {
      return absl::InvalidArgumentError(FormatSourceError(flag->second, {}, path, problem));
    }
    if (auto found = positions_.find(prefix); found != positions_.end() && found->second.known()) {
      return absl::InvalidArgumentError(FormatSourceError(origin_, found->second, path, problem));
    }
  }
  return absl::InvalidArgumentError(FormatSourceError(origin_, {}, path, problem));
}

}  // namespace callmesh::sidecar
