#include "runtime/common/status_code_names.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/common/quoted.h"

namespace callmesh {
namespace {

// The highest code of google.rpc.Code (UNAUTHENTICATED).
constexpr int kLastCode = 16;

std::string NameOf(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

}  // namespace

absl::StatusOr<int> ParseStatusCodeName(absl::string_view name) {
  std::vector<std::string> names;
  for (int code = 0; code <= kLastCode; ++code) {
    names.push_back(NameOf(code));
    if (absl::EqualsIgnoreCase(names.back(), name)) return code;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown gRPC status code ", Quoted(name),
                                                 "; expected one of ", absl::StrJoin(names, ", ")));
}

}  // namespace callmesh
