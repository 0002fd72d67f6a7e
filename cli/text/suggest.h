// "Did you mean ...?" for mistyped names: the closest candidate by edit distance.
//
//   std::string hint = ClosestMatch("invok", {"invoke", "calls", "watch"});   // "invoke"
//
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace callmesh::cli {

// Edit distance between `a` and `b` (ASCII, case-sensitive), counting an adjacent transposition
// as one edit.
int EditDistance(absl::string_view a, absl::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible typo (distance at most
// a third of the word's length, at least 1, or `word` is a prefix of it); else "".
std::string ClosestMatch(absl::string_view word, const std::vector<std::string>& candidates);

}  // namespace callmesh::cli
