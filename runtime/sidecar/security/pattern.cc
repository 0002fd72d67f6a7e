#include "runtime/sidecar/security/pattern.h"

#include "absl/strings/str_replace.h"

namespace callmesh::sidecar::security {
namespace {

// Glob match of `*` only, iterative with one back-track point (linear in practice, never
// exponential).
bool GlobMatches(absl::string_view pattern, absl::string_view text) {
  size_t p = 0, t = 0;
  size_t star = absl::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace

bool PatternMatches(absl::string_view pattern, absl::string_view text, absl::string_view app) {
  if (pattern.find("{app}") == absl::string_view::npos) return GlobMatches(pattern, text);
  return GlobMatches(absl::StrReplaceAll(pattern, {{"{app}", app}}), text);
}

bool AnyPatternMatches(const std::vector<std::string>& patterns, absl::string_view text,
                       absl::string_view app) {
  for (const std::string& pattern : patterns) {
    if (PatternMatches(pattern, text, app)) return true;
  }
  return false;
}

}  // namespace callmesh::sidecar::security
