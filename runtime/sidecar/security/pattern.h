// The one pattern language of the security policy (runtime/sidecar/security/policy.h): a pattern
// matches a whole string; `*` matches any run of characters (also none); `{app}` stands for the
// identity the rule is evaluated for. No other character is special.
//
//   PatternMatches("{app}-*", "orders-async-callback", "orders")  // true
//   PatternMatches("127.0.0.1:*", "127.0.0.1:50051", "orders")     // true
//
// Thread-safe (pure functions).
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace callmesh::sidecar::security {

// True if `pattern`, with every `{app}` replaced by `app`, matches all of `text`.
bool PatternMatches(absl::string_view pattern, absl::string_view text, absl::string_view app);

// True if any of `patterns` matches `text` (false for an empty list).
bool AnyPatternMatches(const std::vector<std::string>& patterns, absl::string_view text,
                       absl::string_view app);

}  // namespace callmesh::sidecar::security
