// "Did you mean ...?" for mistyped names, with one edit distance and one rule for when a
// candidate is close enough to suggest. Used by the CLI (commands, flags, JSON fields) and the
// config loader (keys), so both suggest the same way.
//
//   std::string hint = ClosestMatch("invok", {"invoke", "calls", "watch"});   // "invoke"
//   std::string none = ClosestMatch("zzzzzz", {"invoke", "calls"});           // ""
//
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace callmesh {

// Optimal string alignment distance between `a` and `b` (bytes, case-sensitive): insertions,
// deletions, substitutions and transpositions of adjacent characters ("nmae" -> "name") each
// count one edit.
int EditDistance(absl::string_view a, absl::string_view b);

// The candidate to suggest for `word`, else "". Comparing without regard to case, it is the
// closest candidate by EditDistance if that distance is at most a third of the word's length,
// clamped to 1..3 (the first such candidate on a tie); else the first candidate that starts with
// `word` when `word` has at least 2 characters ("dead" -> "dead-letters"). An empty word gets no
// suggestion.
std::string ClosestMatch(absl::string_view word, const std::vector<std::string>& candidates);

}  // namespace callmesh
